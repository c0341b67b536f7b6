"""Reports > Reconciliation in a real browser, on the demo organization: reached from the
navigation and from the PSTN usage report, its groupings, in English and French, with
screenshots (var/screenshots/reconciliation-*.png), and no serious accessibility
violation."""

import pytest

from tests.e2e.conftest import MOBILE
from tests.e2e.test_pages import GLOBAL_ADMIN, switch_language

expect = pytest.importorskip("playwright.sync_api", reason="needs Playwright").expect


def test_the_reconciliation_view_in_both_languages(e2e_app, open_session):
    megan = open_session(GLOBAL_ADMIN, csp=False, name="reconciliation")
    page = megan.page
    megan.go("/reports/pstn-usage/")
    page.locator('[data-link="reconciliation"]').click()
    expect(page.locator("h1")).to_have_text("Reconciliation")
    expect(page.locator('[data-tile="rated"]')).not_to_be_empty()
    # The demo's Microsoft charges differ from the deck for a few destinations only
    # (usage.demo.MICROSOFT_LIST_PRICE): the list shows each such call, up to 50.
    expect(page.locator('table[data-table="top"] tbody tr')).to_have_count(
        _differing_calls(e2e_app, page.url))
    assert megan.axe() == []
    megan.shot("reconciliation-en-by-day")
    page.get_by_role("link", name="By user").click()
    expect(page.locator("#groups-heading")).to_have_text("By user")
    megan.shot("reconciliation-en-by-user")
    switch_language(megan, "fr")
    megan.go("/reports/reconciliation/?group=destination")
    expect(page.locator("h1")).to_have_text("Rapprochement")
    expect(page.locator("#groups-heading")).to_have_text("Par destination")
    assert megan.axe() == []
    megan.shot("reconciliation-fr-by-destination")
    assert megan.console_errors == [], megan.console_errors


def _differing_calls(e2e_app, url):
    """The calls of the page's range whose charge differs from Microsoft's (reported in
    the organization's currency), at most the list's 50, read from the call records."""
    from urllib.parse import parse_qs, urlsplit

    from django.utils import timezone

    from usage.models import CallRecord
    from usage.reconciliation import TOP_LIMIT
    from usage.report import filters_from_query

    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    filters, _errors = filters_from_query(query, today=timezone.now().date())
    org = e2e_app.org
    with e2e_app.serial.turn():
        calls = CallRecord.objects.filter(
            organization=org, currency=org.currency, reported_charge__isnull=False,
            start_at__date__gte=filters.start, start_at__date__lte=filters.end)
        differing = sum(1 for c in calls.only("charge", "reported_charge")
                        if c.charge != c.reported_charge)
    assert differing > 0, "the demo has no call whose charge differs from Microsoft's"
    return min(differing, TOP_LIMIT)


def test_the_reconciliation_view_fits_a_phone_screen(e2e_app, open_session):
    phone = open_session(GLOBAL_ADMIN, viewport=MOBILE, name="reconciliation-mobile")
    for group in ("day", "user", "destination"):
        phone.go(f"/reports/reconciliation/?group={group}")
        width = phone.page.evaluate("document.documentElement.scrollWidth")
        assert width <= MOBILE["width"], (group, width)
    phone.shot("reconciliation-mobile-en")
