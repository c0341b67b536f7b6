"""Every main page in a real browser: no serious or critical axe-core violation, reachable
by keyboard with a visible focus, readable on a phone (390 px), in English and French."""

import re

import pytest

from tests.e2e.conftest import MOBILE
from tests.e2e.pages import MAIN_PAGES

expect = pytest.importorskip("playwright.sync_api", reason="needs Playwright").expect

GLOBAL_ADMIN = "megan.bowen@contoso.com"


def switch_language(session, code):
    page = session.page
    page.locator(".person-menu summary").click()
    page.locator("#lang-select").select_option(code)
    page.locator(".person-menu__lang button").click()
    expect(page.locator("html")).to_have_attribute("lang", code)


def test_main_pages_have_no_serious_accessibility_violations(e2e_app, open_session):
    megan = open_session(GLOBAL_ADMIN, csp=False, name="axe")
    found = {}
    for language in ("en", "fr"):
        if language == "fr":
            switch_language(megan, "fr")
        for _name, path in MAIN_PAGES:
            megan.go(path)
            for violation in megan.axe():
                found.setdefault(f"{language} {path}", []).append(violation)
        # Pages in their error state: the summary and the errors tied to the fields.
        megan.go("/billing/communications-credits/add-funds/")
        megan.page.locator("#id_amount").fill("12.5")
        megan.page.locator("form:has(#id_amount) button[type=submit]").first.click()
        expect(megan.page.locator("#id_amount")).to_have_attribute("aria-invalid", "true")
        for violation in megan.axe():
            found.setdefault(f"{language} add-funds with errors", []).append(violation)
        megan.go("/billing/communications-credits/payment-methods/")
        megan.page.locator("#id_number").fill("4242424242424241")
        megan.page.locator("form:has(#id_number) button[type=submit]").first.click()
        expect(megan.page.locator("#id_number")).to_have_attribute("aria-invalid", "true")
        for violation in megan.axe():
            found.setdefault(f"{language} payment-methods with errors", []).append(violation)
    assert found == {}


def _focus_info(page):
    return page.evaluate("""() => {
        const el = document.activeElement;
        if (!el || el === document.body) return null;
        const s = getComputedStyle(el);
        const r = el.getBoundingClientRect();
        return {
            key: el.dataset.e2eKey || ('unlisted ' + el.outerHTML.slice(0, 80)),
            tag: el.tagName,
            href: el.getAttribute('href') || '',
            outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2,
            shadow: s.boxShadow !== 'none',
            visible: r.width > 0 && r.height > 0,
        };
    }""")


def _focusable_keys(page):
    """The controls a keyboard user must reach: shown, enabled, not inside a closed
    <details> (its summary counts). Each is tagged with a key the focus walk reports. A
    group of radio buttons is one stop, as browsers make it (the arrows move inside it):
    its buttons share one key."""
    return set(page.evaluate("""() => Array.from(document.querySelectorAll(
            'a[href], button, input:not([type=hidden]), select, textarea, summary'))
        .filter(el => !el.disabled && el.getClientRects().length > 0
                      && getComputedStyle(el).visibility !== 'hidden'
                      && !(el.closest('details:not([open])')
                           && el !== el.closest('details').querySelector('summary')))
        .map((el, i) => {
            el.dataset.e2eKey = (el.type === 'radio' && el.name)
                ? 'radio group ' + el.name
                : (el.id || el.tagName) + '#' + i
                  + ' ' + (el.getAttribute('href') || el.name || '')
                  + ' ' + el.textContent.trim().slice(0, 30);
            return el.dataset.e2eKey;
        })"""))


def test_every_control_is_reached_by_keyboard_with_a_visible_focus(e2e_app, open_session):
    megan = open_session(GLOBAL_ADMIN, name="keyboard")
    page = megan.page
    for path in ("/", "/billing/communications-credits/add-funds/",
                 "/billing/communications-credits/auto-recharge/",
                 "/billing/communications-credits/payment-methods/",
                 "/reports/pstn-usage/import/", "/settings/api-tokens/",
                 "/notifications/"):
        megan.go(path)
        expected = _focusable_keys(page)
        reached = set()
        page.keyboard.press("Tab")
        first = _focus_info(page)
        assert first and first["tag"] == "A" and first["href"] == "#main", first  # skip link
        for _ in range(len(expected) + 10):
            info = _focus_info(page)
            if info is None:
                break
            assert info["visible"], (path, info)
            assert info["outline"] or info["shadow"], f"no visible focus on {info} ({path})"
            if info["key"] in reached:
                break
            reached.add(info["key"])
            page.keyboard.press("Tab")
        missing = expected - reached
        assert not missing, f"{path}: not reached by Tab: {sorted(missing)}"
    # The person menu opens from the keyboard and its controls are reachable.
    megan.go("/")
    page.locator(".person-menu summary").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#lang-select")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.locator("#lang-select")).to_be_focused()
    no_errors = megan.console_errors
    assert no_errors == [], no_errors


def _overflowing(page):
    """The outermost elements wider than the screen (tables scroll inside their wrap)."""
    return page.evaluate("""(limit) => Array.from(document.querySelectorAll('body *'))
        .filter(e => e.getBoundingClientRect().right > limit + 1
                     && !e.closest('.table-wrap, details:not([open])'))
        .slice(0, 6).map(e => e.tagName.toLowerCase() + '.' + e.className + ' '
                              + Math.round(e.getBoundingClientRect().right))""",
                         MOBILE["width"])


def test_main_pages_fit_a_phone_screen_in_both_languages(e2e_app, open_session):
    phone = open_session(GLOBAL_ADMIN, viewport=MOBILE, name="mobile")
    page = phone.page
    toggle = page.locator("[data-toggle-nav]")
    for language in ("en", "fr"):
        if language == "fr":
            phone.go("/")
            switch_language(phone, "fr")
        for name, path in MAIN_PAGES:
            phone.go(path)
            expect(page.locator("#leftnav")).to_be_hidden()
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= MOBILE["width"], (
                f"{path} scrolls sideways at 390 px ({width}px): {_overflowing(page)}")
            phone.shot(f"mobile-{language}-{name}")
        phone.go("/")
        expect(toggle).to_have_attribute("aria-expanded", "false")
        toggle.click()
        expect(page.locator("#leftnav")).to_be_visible()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        phone.shot(f"mobile-{language}-nav-open", full_page=False)
        page.locator("#leftnav li li a").first.click()
        expect(page.locator("#leftnav")).to_be_hidden()
    assert phone.console_errors == [], phone.console_errors


def test_the_left_navigation_collapses_and_remembers_it(e2e_app, open_session):
    megan = open_session(GLOBAL_ADMIN, name="collapse")
    page = megan.page
    toggle = page.locator("[data-toggle-nav]")
    expect(page.locator("#leftnav")).to_be_visible()
    nav = page.locator("#leftnav")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    # Collapsed to icons: the sections stay one click away, their names hidden.
    expect(nav.get_by_role("link", name="Active users")).to_be_hidden()
    rail = nav.get_by_role("link", name="Billing", exact=True)
    expect(rail).to_be_visible()
    assert nav.bounding_box()["width"] <= 60
    megan.shot("nav-collapsed", full_page=False)
    rail.click()
    page.wait_for_url(re.compile("/billing/communications-credits/"))
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(rail).to_have_attribute("aria-current", "true")
    toggle.click()
    expect(nav.get_by_role("link", name="Home", exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="Your products")).to_have_attribute(
        "aria-current", "page")
    megan.shot("nav-expanded", full_page=False)
    assert megan.console_errors == [], megan.console_errors
