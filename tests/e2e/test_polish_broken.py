"""Issue 19, "Broken": the API docs render under the app's CSP, and the PSTN usage report's
From/To fields, address and data agree after a preset range is chosen."""

from datetime import timedelta

import pytest
from django.utils import timezone

expect = pytest.importorskip("playwright.sync_api", reason="needs Playwright").expect

GLOBAL_ADMIN = "megan.bowen@contoso.com"


def test_api_docs_render_under_the_content_security_policy(e2e_app, open_session):
    session = open_session(GLOBAL_ADMIN, name="apidocs")
    session.go("/api/v1/docs")
    expect(session.page.locator(".swagger-ui .info .title")).to_contain_text(
        "Credits Center API")
    expect(session.page.locator(".opblock").first).to_be_visible()
    blocked = [e for e in session.console_errors if "Content Security Policy" in e]
    assert not blocked, blocked
    session.shot("issue19-apidocs")


def test_report_dates_follow_the_chosen_range(e2e_app, open_session):
    session = open_session(GLOBAL_ADMIN, name="range")
    page = session.page
    today = timezone.now().date()
    session.go("/reports/pstn-usage/")
    expect(page.locator("#f-from")).to_have_value((today - timedelta(days=27)).isoformat())
    with page.expect_response(lambda r: "range=7" in r.url):
        page.get_by_label("Last 7 days").check()
    seven = (today - timedelta(days=6)).isoformat()
    expect(page.locator("#f-from")).to_have_value(seven)
    expect(page.locator("#f-to")).to_have_value(today.isoformat())
    expect(page).to_have_url(e2e_app.url + "/reports/pstn-usage/?range=7")
    # "Custom" starts from the dates shown, and the address says them.
    with page.expect_response(lambda r: "range=custom" in r.url):
        page.get_by_label("Custom").check()
    expect(page).to_have_url(
        f"{e2e_app.url}/reports/pstn-usage/?range=custom&from={seven}&to={today.isoformat()}")
    # Typing a date chooses "Custom".
    later = (today - timedelta(days=3)).isoformat()
    with page.expect_response(lambda r: "range=28" in r.url):
        page.get_by_label("Last 28 days").check()
    expect(page).to_have_url(e2e_app.url + "/reports/pstn-usage/?range=28")
    with page.expect_response(lambda r: f"from={later}" in r.url):
        page.locator("#f-from").fill(later)
        page.locator("#f-from").dispatch_event("change")
    expect(page.get_by_label("Custom")).to_be_checked()
    expect(page).to_have_url(
        f"{e2e_app.url}/reports/pstn-usage/?range=custom&from={later}&to={today.isoformat()}")
    session.shot("issue19-report-range")
