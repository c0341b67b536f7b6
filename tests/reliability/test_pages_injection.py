"""Markup in any name or imported field is shown as text on every page, and every page
keeps to the Content Security Policy: no inline script, no style attribute, no on* handler.

The data (tests/reliability/world.py) puts `<script>` and `<img onerror>` in display names,
UPNs, call destinations, rate deck labels, API token names, card holders, export file
names and notification payloads; every GET page the project routes is fetched as a Global
Administrator, also with the markup in its query string and as an htmx partial."""

from html.parser import HTMLParser

import pytest

from .test_permission_matrix import EXPECT, NO_GET, PUBLIC
from .world import RAW_MARKERS, XSS, build_world, url_of

pytestmark = pytest.mark.django_db



class _Tags(HTMLParser):
    """What the Content Security Policy would block: inline scripts, style attributes,
    on* handlers, javascript: URLs and <style> blocks (attributes, not text)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found = []

    def handle_starttag(self, tag, attrs):
        names = {name.lower(): value or "" for name, value in attrs}
        if tag == "script" and "src" not in names:
            self.found.append(f"inline script <script {attrs}>")
        if tag == "style":
            self.found.append("<style> block")
        for name, value in names.items():
            if name == "style":
                self.found.append(f"style attribute on <{tag}>")
            elif name.startswith("on"):
                self.found.append(f"{name} handler on <{tag}>")
            elif name in ("href", "src", "action", "formaction") and \
                    value.strip().lower().startswith("javascript:"):
                self.found.append(f"javascript: URL on <{tag}>")


# Query parameters pages read back into links, filters and search boxes.
REFLECTED = {"q": XSS, "user": XSS, "page": XSS, "sort": XSS, "event": XSS, "month": XSS,
             "range": XSS, "start": XSS, "end": XSS, "direction": XSS, "number_type": XSS,
             "next": XSS, "license": XSS, "role": XSS, "after": XSS, "callType": XSS}


# Files, not pages: no browser renders them, so they are checked for their headers below.
DOWNLOADS = ("settings_rates_download", "reports_download", "billing_transactions_export",
             "reports_reconciliation_export", "settings_audit_export",
             "users_import_results_csv")


def _pages(world):
    for name, rules in EXPECT.items():
        if rules["GET"] not in (NO_GET,) and name not in DOWNLOADS + ("healthz",):
            yield name, url_of(name, world)


@pytest.fixture
def world(org, admin_person):
    return build_world(org, admin_person)


def _problems(html: str) -> list[str]:
    found = []
    for marker in RAW_MARKERS:
        if marker in html:
            at = html.index(marker)
            found.append(f"unescaped {html[max(0, at - 80):at + 40]!r}")
    parser = _Tags()
    parser.feed(html)
    return found + parser.found


def test_every_page_escapes_markup_and_keeps_to_the_csp(admin_client, world, reliability):
    problems, fetched = {}, 0
    for name, url in _pages(world):
        for params, headers in (({}, {}), (REFLECTED, {}), ({}, {"HTTP_HX_REQUEST": "true"})):
            response = admin_client.get(url, params, **headers)
            fetched += 1
            assert response.status_code in (200, 302), (name, params, response.status_code)
            if response.status_code != 200:
                continue
            assert "script-src 'self'" in response["Content-Security-Policy"], name
            if not response["Content-Type"].startswith("text/html"):
                # A download (the invoice PDF) holds no markup a browser would run.
                assert response["Content-Type"] == "application/pdf", name
                continue
            found = _problems(response.content.decode())
            if found:
                problems[(name, bool(params), bool(headers))] = found
    reliability.fuzz(fetched)
    assert problems == {}


def test_every_page_shows_the_markup_as_text_somewhere(admin_client, world):
    """The escaping test above is not passing on pages that simply hide the names."""
    escaped = "&lt;script&gt;alert(&quot;xss&quot;)&lt;/script&gt;"
    pages = {name: admin_client.get(url) for name, url in _pages(world)}
    shown = [name for name, response in pages.items()
             if response["Content-Type"].startswith("text/html")
             and escaped in response.content.decode()]
    for must in ("users", "person_licenses", "reports_pstn_usage", "settings_rates",
                 "settings_api_tokens", "billing_payment_methods", "notification_detail",
                 "reports_downloads"):
        assert must in shown, (must, shown)


def test_public_pages_keep_to_the_csp_too(client, world):
    for name, rules in EXPECT.items():
        if rules["GET"] == PUBLIC and name != "healthz":
            html = client.get(url_of(name, world), REFLECTED).content.decode()
            assert _problems(html) == [], name


def test_exports_and_downloads_carry_the_policy_and_no_sniffing(admin_client, world):
    for name in DOWNLOADS:
        response = admin_client.get(url_of(name, world))
        assert response.status_code == 200, name
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Disposition"].startswith("attachment"), name
