"""Issue 19 in a real browser: the PSTN table fits a 1366 px screen with Charge in view and
keeps its first column when it scrolls; a name filters the report; Users has "Select all",
live filters and cards on a phone; the Notifications grid is not cut and its buttons line
up; removing a card asks first; no page of these scrolls sideways at 390 px; axe is clean."""

import re

import pytest

from tests.e2e.conftest import MOBILE

expect = pytest.importorskip("playwright.sync_api", reason="needs Playwright").expect

MEGAN = "megan.bowen@contoso.com"
LAPTOP = {"width": 1366, "height": 768}
PAGES = ["/", "/users/", "/reports/pstn-usage/", "/settings/notifications/",
         "/billing/licenses/", "/billing/communications-credits/payment-methods/",
         "/settings/audit/", "/reports/downloads/"]


def test_pstn_table_fits_1366_with_charge_and_a_sticky_first_column(e2e_app, open_session):
    megan = open_session(MEGAN, viewport=LAPTOP)
    megan.go("/reports/pstn-usage/")
    page = megan.page
    wrap = page.locator(".report-table .table-wrap")
    fits = wrap.evaluate("w => w.scrollWidth <= w.clientWidth + 1")
    charge = page.locator(".table--calls thead th", has_text=re.compile("^Charge")).first
    box = charge.bounding_box()
    assert fits and box and box["x"] + box["width"] <= LAPTOP["width"]
    position = page.locator(".table--calls tbody td").first.evaluate(
        "td => getComputedStyle(td).position")
    assert position == "sticky"
    megan.shot("19-pstn-1366")

    # A name narrows the report to that person; their licenses are one click further.
    name = page.locator(".top-lists a[data-filter-user]").first
    who = name.inner_text()
    name.click()
    expect(page.locator("[data-person-focus]")).to_contain_text(who)
    expect(page.locator("#f-user")).not_to_have_value("")
    page.locator("[data-person-focus] a[data-link=person-licenses]").click()
    expect(page.locator("h1")).to_have_text(who)


def test_users_select_all_live_filter_and_phone_cards(e2e_app, open_session):
    megan = open_session(MEGAN)
    megan.go("/users/")
    page = megan.page
    rows = page.locator("input[name=people]")
    assert rows.count() > 3
    page.locator("#select-all").check()
    assert all(rows.nth(i).is_checked() for i in range(rows.count()))
    rows.first.uncheck()
    assert page.locator("#select-all").evaluate("b => b.indeterminate")
    search = page.locator("#id_q")
    assert search.evaluate("i => i.scrollWidth <= i.clientWidth")  # the hint is not cut
    search.fill("Megan")  # no button pressed: the list follows the typing
    expect(page.locator("#users-list tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=Megan"))

    phone = open_session(MEGAN, viewport=MOBILE, name="phone")
    phone.go("/users/")
    first = phone.page.locator("#users-list tbody tr").first
    height = first.bounding_box()["height"]
    assert height < 200, height  # a table row here was about 300 px, mostly empty
    assert phone.page.evaluate("document.documentElement.scrollWidth") <= MOBILE["width"]
    phone.shot("19-users-390")


@pytest.mark.parametrize("path, first_label", [("/settings/audit/", "Who"),
                                               ("/billing/communications-credits/transactions/",
                                                "Type")])
def test_logs_read_as_a_list_on_a_phone(e2e_app, open_session, path, first_label):
    phone = open_session(MEGAN, viewport=MOBILE, name="phone")
    phone.go(path)
    page = phone.page
    entry = page.locator(".table--stack tbody tr").first
    # Each entry stacks its cells: the date on one line, then "Who: ...", "Action: ...".
    date = entry.locator("td").first
    assert date.bounding_box()["height"] < 30  # its own line, not four wrapped ones
    label = entry.locator("td[data-label]").first.evaluate(
        "td => getComputedStyle(td, '::before').content")
    assert label.strip('"').startswith(first_label)
    assert page.evaluate("document.documentElement.scrollWidth") <= MOBILE["width"]
    phone.shot("19-" + path.strip("/").split("/")[-1] + "-390")


def test_notification_grid_is_not_cut_and_buttons_line_up(e2e_app, open_session):
    megan = open_session(MEGAN, viewport={"width": 1440, "height": 900})
    megan.go("/settings/notifications/")
    page = megan.page
    cut = page.locator(".table--matrix thead th").evaluate_all(
        "ths => ths.filter(th => th.scrollWidth > th.clientWidth + 1).map(th => th.textContent)")
    assert cut == []
    row = page.locator("[data-actions=routing] .btn")
    tops = {round(row.nth(i).bounding_box()["y"]) for i in range(row.count())}
    heights = {round(row.nth(i).bounding_box()["height"]) for i in range(row.count())}
    assert row.count() == 2 and len(tops) == 1 and len(heights) == 1


def test_removing_a_card_asks_first(e2e_app, open_session):
    megan = open_session(MEGAN)
    megan.go("/billing/communications-credits/payment-methods/")
    page = megan.page
    before = page.locator("tbody tr").count()
    assert before >= 1
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.locator("tbody tr").first.get_by_role("button", name=re.compile("^Remove")).click()
    assert asked and asked[0].startswith("Remove ")
    assert page.locator("tbody tr").count() == before


@pytest.mark.parametrize("language", ["en", "fr"])
def test_no_sideways_scroll_on_a_phone_and_axe_is_clean(e2e_app, open_session, language):
    phone = open_session(MEGAN, viewport=MOBILE, language=language, csp=False, name="p")
    wide, found = {}, {}
    for path in PAGES:
        phone.go(path)
        width = phone.page.evaluate("document.documentElement.scrollWidth")
        if width > MOBILE["width"]:
            wide[path] = width
        violations = phone.axe()
        if violations:
            found[path] = violations
    assert wide == {} and found == {}
