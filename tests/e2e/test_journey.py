"""A new billing administrator's first session, in a real browser against the real app
(live server, Celery worker), then the key screens again in French.

Each test starts from the demo organization of `seed_demo` (tests/e2e/conftest.py).
"""

import csv
import io
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

expect = pytest.importorskip("playwright.sync_api", reason="needs Playwright").expect

BILLING_ADMIN = "alex.wilber@contoso.com"
LICENSE_ADMIN = "adele.vance@contoso.com"
GLOBAL_ADMIN = "megan.bowen@contoso.com"
NEW_CREDITS_USER = "Isaiah Langer"

# Microsoft's PSTN usage export columns (domain/pstn-export-columns.csv), in order.
EXPORT_COLUMNS = [
    "UsageId", "Call ID", "Conference ID", "User Location", "AAD ObjectId", "UPN",
    "User Display Name", "Caller ID", "Call Type", "Number Type", "Domestic/International",
    "Destination Dialed", "Destination Number", "Start Time", "End Time", "Duration Seconds",
    "Connection Fee", "Charge", "Currency", "Capability",
]


def sample_pstn_csv(day: datetime) -> bytes:
    """A small file in the shape of Microsoft's export: Isaiah's international calls
    (credits pay them now that he holds the license), a domestic one (his plan's pool)
    and Microsoft's documented sample row's call (Richard Malk, inbound, free)."""
    def row(upn, name, call_type, context, destination, number, start, seconds,
            capability):
        end = start + timedelta(seconds=seconds)
        return [str(uuid.uuid4()), f"{uuid.uuid4()}@10.0.0.1", "", "US", str(uuid.uuid4()),
                upn, name, "+14255550123", call_type, "Subscriber", context, destination,
                number, start.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                end.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), str(seconds), "0.00", "0.00", "USD",
                capability]

    rows = [
        row("isaiah.langer@contoso.com", NEW_CREDITS_USER, "user_out", "International",
            "United Kingdom", "+442071234567", day.replace(hour=9), 600, "MCOPSTN1"),
        row("isaiah.langer@contoso.com", NEW_CREDITS_USER, "user_out", "International",
            "France", "+33142685300", day.replace(hour=11), 300, "MCOPSTN1"),
        row("isaiah.langer@contoso.com", NEW_CREDITS_USER, "user_out", "Domestic",
            "United States", "+12125550123", day.replace(hour=14), 120, "MCOPSTN1"),
        row("richard.malk@contoso.com", "Richard Malk", "user_in", "", "United States",
            "+14255550100", day.replace(hour=16), 219, "MCOPSTNU"),
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8-sig")


def label(text):
    """A field's label, with or without the required-field star after it."""
    return re.compile(r"^\s*" + re.escape(text) + r"( \*)?\s*$")


def choose(select, text):
    """Select the option whose text contains `text`."""
    select.select_option(select.locator("option", has_text=text).first.get_attribute("value"))


def wait_until(check, *, timeout=30.0, step=0.25, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


def no_console_errors(session):
    assert session.console_errors == [], session.console_errors


def test_a_new_billing_admin_funds_assigns_imports_reports_and_exports(
        e2e_app, open_session, tmp_path):
    from django.core import mail

    from credits.models import CreditAccount, LedgerEntry

    # 1. Sign in as the demo billing administrator.
    alex = open_session(None, name="alex")
    page = alex.page
    alex.go("/accounts/login/")
    alex.shot("01-sign-in")
    alex.sign_in(BILLING_ADMIN)
    expect(page.locator("h1")).to_have_text("Contoso")
    expect(page.locator(".topbar__org")).to_have_text("Contoso")
    alex.shot("01-home")

    # 2. Add a card: a declined test card shows its reason, a good one is saved.
    alex.go("/billing/communications-credits/payment-methods/")
    page.get_by_label(label("Card number")).fill("4000 0000 0000 0002")
    page.get_by_label(label("Expiry month")).select_option("12")
    page.get_by_label(label("Expiry year")).select_option(index=2)
    page.get_by_label(label("Security code (CVC)")).fill("123")
    page.get_by_label(label("Name on card")).fill("Alex Wilber")
    page.get_by_role("button", name="Add card").click()
    number = page.get_by_label(label("Card number"))
    expect(number).to_have_attribute("aria-invalid", "true")
    error_id = number.get_attribute("aria-describedby").split()
    error = page.locator(".field__error").first
    assert error.get_attribute("id") in error_id
    expect(error).to_contain_text(re.compile("declined", re.I))
    expect(page.get_by_role("alert")).to_contain_text(re.compile("declined", re.I))
    alex.shot("02-card-declined")

    page.get_by_label(label("Card number")).fill("5555 5555 5555 4444")
    page.get_by_label(label("Security code (CVC)")).fill("123")
    page.get_by_role("button", name="Add card").click()
    expect(page.get_by_role("status")).to_contain_text("4444")
    expect(page.locator("table")).to_contain_text("4444")
    alex.shot("02-card-added")

    # 3. Add funds (two steps: order, then confirm), then set auto-recharge.
    with e2e_app.serial.turn():
        before = CreditAccount.objects.get(organization=e2e_app.org).balance
    alex.go("/billing/communications-credits/add-funds/")
    page.get_by_label(label("Amount")).fill("150")
    choose(page.get_by_label(label("Payment method")), "4444")
    alex.shot("03-add-funds")
    page.get_by_role("button", name="Next").click()
    expect(page.locator("h1")).to_have_text("Confirm your order")
    expect(page.get_by_test_id("confirm-amount")).to_have_text("$150.00")
    alex.shot("03-add-funds-confirm")
    page.get_by_role("button", name="Place order").click()
    # The receipt opens, with the new balance.
    expect(page.locator("h1")).to_contain_text("Invoice")
    expect(page.get_by_role("status")).to_contain_text("$150.00 was added")
    expect(page.locator("main dl")).to_contain_text(f"${before + 150:,.2f}")
    alex.shot("03-invoice")

    # Keep at least 1,000 in the account: below it, the worker recharges by 500s.
    alex.go("/billing/communications-credits/auto-recharge/")
    saved_at = datetime.now(UTC)
    page.get_by_label(label("Turn on auto-recharge")).check()
    page.get_by_label(label("Add this amount")).fill("500")
    page.get_by_label(label("When balance is below")).fill("1000")
    choose(page.get_by_label(label("Payment method")), "4444")
    page.get_by_role("button", name="Save").click()
    # Below the new trigger, saving charges at once: the amount and the card come first.
    if page.get_by_test_id("charge-now").count():
        alex.shot("03-auto-recharge-confirm")
        page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status").first).to_be_visible()
    alex.shot("03-auto-recharge")
    # The real worker charges the card (the smallest multiple of 500 that lifts the
    # balance to 1,000) and credits the ledger.
    recharge = wait_until(lambda: _new_recharge(e2e_app, since=saved_at),
                          what="the auto-recharge")
    assert recharge.amount % 500 == 0 and recharge.balance_after >= 1000
    alex.go("/billing/communications-credits/")
    with e2e_app.serial.turn():
        balance = CreditAccount.objects.get(organization=e2e_app.org).balance
    assert balance >= Decimal(1000)
    expect(page.get_by_test_id("balance")).to_have_text(f"${balance:,.2f}")
    expect(page.locator("#last-title + p, section[aria-labelledby=last-title]")
           .first).to_contain_text("$")
    alex.shot("03-overview-after-recharge")

    # 4. The license administrator assigns Communications Credits to a person.
    adele = open_session(LICENSE_ADMIN, name="adele")
    adele.go("/users/?q=Isaiah")
    adele.page.get_by_role("link", name=NEW_CREDITS_USER).click()
    expect(adele.page.locator("h1")).to_have_text(NEW_CREDITS_USER)
    adele.page.get_by_role("checkbox", name=re.compile("^Communications Credits")).check()
    adele.page.get_by_role("button", name="Save changes").click()
    adele.go("/users/?q=Isaiah")
    expect(adele.page.locator("table")).to_contain_text("Communications Credits")
    adele.shot("04-license-assigned")
    no_console_errors(adele)

    # 5. Import Microsoft's PSTN export through the upload form.
    yesterday = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0,
                                                                microsecond=0)
    sample = tmp_path / "PSTN.calls.sample.csv"
    sample.write_bytes(sample_pstn_csv(yesterday))
    alex.go("/reports/pstn-usage/import/")
    page.get_by_label(label("PSTN calls file")).set_input_files(str(sample))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("status").first).to_contain_text("Imported 4, duplicates 0, "
                                                             "rejected 0")
    alex.shot("05-import")

    # 6. The PSTN usage report, filtered to the person and to international calls.
    alex.go("/reports/pstn-usage/")
    expect(page.locator("h1")).to_have_text("PSTN usage")
    alex.shot("06-report")
    filters = page.locator("form.report-filters")
    filters.get_by_label(label("User")).fill("isaiah")
    filters.get_by_label(label("Domestic/international")).select_option("international")
    filters.get_by_role("button", name="Apply").click()
    # The form also asks on every change: the typed name and the chosen scope each sent a
    # request. Wait for the answer with both, and for none in flight (htmx marks the body
    # while it waits), or a late answer could replace the page under the next click.
    page.wait_for_url(re.compile(r"(?=.*user=isaiah)(?=.*context=international)"))
    expect(page.locator("#report-body")).not_to_have_class(re.compile(r"htmx-request"))
    calls = page.locator("#calls-heading ~ .table-wrap tbody tr")
    expect(calls.first).to_be_visible()
    expect(page.locator("[data-tile=calls]")).not_to_have_text("0")
    for i in range(calls.count()):
        expect(calls.nth(i)).to_contain_text(NEW_CREDITS_USER)
    # The number dialed is not a default column (they fit a laptop screen): "Choose
    # columns" adds it, and the filters stay.
    page.locator(".column-chooser summary").click()
    page.locator(".column-chooser__panel").get_by_label("Destination number").check()
    page.locator(".column-chooser__panel").get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"user=isaiah"))
    expect(page.locator("#report-body")).to_contain_text("+4420712345")
    alex.shot("06-report-filtered")

    # 7. Export to Excel, wait on Downloads, download the workbook, read it.
    page.get_by_role("button", name="Export to Excel").click()
    page.wait_for_url(re.compile("/reports/downloads/"))
    alex.shot("07-downloads-waiting")
    link = page.locator("#downloads a[download]").first
    expect(link).to_be_visible(timeout=30_000)
    alex.shot("07-downloads-ready")
    with page.expect_download() as info:
        link.click()
    workbook_path = tmp_path / info.value.suggested_filename
    info.value.save_as(workbook_path)
    assert workbook_path.suffix == ".xlsx"
    _check_workbook(workbook_path)

    # 8. The recharge e-mail was sent, and its notification is in the message center.
    wait_until(lambda: any("recharge" in m.subject.lower() for m in mail.outbox),
               what="the recharge e-mail")
    alex.go("/")
    badge = page.locator(".topbar .badge")
    expect(badge).to_be_visible()
    alex.go("/notifications/")
    row = page.locator("tbody tr", has_text=re.compile("recharge", re.I)).first
    expect(row).to_be_visible()
    alex.shot("08-message-center")
    row.get_by_role("link").click()
    expect(page.locator("h1")).to_contain_text(re.compile("recharge", re.I))
    expect(page.locator("main")).to_contain_text(f"${recharge.amount:,.2f}")
    alex.shot("08-notification")
    no_console_errors(alex)

    with e2e_app.serial.turn():
        # One automatic recharge, whatever the demo's history holds (its past recharges
        # follow its calls: credits.demo_billing.recharge_if_crossed).
        assert LedgerEntry.objects.filter(organization=e2e_app.org, kind="auto_recharge",
                                          created_at__gte=saved_at).count() == 1


def _new_recharge(e2e_app, *, since):
    from credits.models import LedgerEntry

    with e2e_app.serial.turn():
        return LedgerEntry.objects.filter(organization=e2e_app.org, kind="auto_recharge",
                                          created_at__gte=since).first()


def _check_workbook(path):
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True)
    sheets = book.sheetnames
    assert {"Summary", "Usage", "Parameters"} <= set(sheets), sheets
    calls = book["Usage"]
    rows = list(calls.iter_rows(values_only=True))
    header, data = rows[0], rows[1:]
    assert "UPN" in header or "User Display Name" in header, header
    assert len(data) >= 2
    upn = header.index("UPN") if "UPN" in header else header.index("User Display Name")
    assert all("isaiah" in str(r[upn]).lower() for r in data)
    start = header.index("Start Time")
    assert all(isinstance(r[start], datetime) for r in data)
    book.close()


def test_the_key_screens_in_french(e2e_app, open_session):
    alex = open_session(BILLING_ADMIN, name="alex-fr")
    page = alex.page
    # 9. Switch to French from the person menu.
    page.locator(".person-menu summary").click()
    page.get_by_label(label("Language")).select_option("fr")
    page.locator(".person-menu__lang button").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    alex.shot("09-fr-home")

    alex.go("/billing/communications-credits/")
    balance = page.get_by_test_id("balance").inner_text()
    # Babel's French format: narrow no-break space between thousands, comma, "$US".
    assert re.fullmatch(r"\d{1,3}([\u202f\u00a0 ]\d{3})*,\d{2}\u00a0\$US", balance), balance
    alex.shot("09-fr-credits")

    alex.go("/billing/communications-credits/add-funds/")
    alex.shot("09-fr-add-funds")
    page.get_by_label(label("Montant")).fill("10")
    page.locator("form:has(#id_amount) button[type=submit]").click()
    amount = page.locator("#id_amount")
    expect(amount).to_have_attribute("aria-invalid", "true")
    assert "id_amount_error" in amount.get_attribute("aria-describedby")
    alex.shot("09-fr-add-funds-error")

    alex.go("/reports/pstn-usage/")
    alex.shot("09-fr-report")
    alex.go("/reports/downloads/")
    alex.shot("09-fr-downloads")
    alex.go("/notifications/")
    alex.shot("09-fr-message-center")
    alex.go("/billing/bills/")
    alex.shot("09-fr-bills")
    no_console_errors(alex)

    megan = open_session(GLOBAL_ADMIN, name="megan-fr")
    megan.page.locator(".person-menu summary").click()
    megan.page.get_by_label(label("Language")).select_option("fr")
    megan.page.locator(".person-menu__lang button").click()
    megan.go("/users/")
    # Usage locations are country names in the reader's language.
    expect(megan.page.locator("table")).to_contain_text("Royaume-Uni")
    megan.shot("09-fr-users")
    megan.go("/reports/minute-pools/")
    megan.shot("09-fr-minute-pools")
    megan.go("/settings/")
    expect(megan.page.locator("main")).to_contain_text("États-Unis")
    megan.shot("09-fr-settings")
