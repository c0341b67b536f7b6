"""Adjusting the balance in a real browser, in English and French: the form, the
confirmation step (a debit below zero needs the checkbox), the transaction in Transactions
with who made it, and the export buttons. No serious accessibility violation.
Screenshots: var/screenshots/desktop-{en,fr}-adjust-balance{,-confirm,-done}.png."""

from decimal import Decimal

import pytest

from tests.e2e.test_pages import GLOBAL_ADMIN, switch_language

expect = pytest.importorskip("playwright.sync_api", reason="needs Playwright").expect

CC = "/billing/communications-credits/"


def test_a_billing_admin_adjusts_the_balance_in_english_and_french(e2e_app, open_session):
    from credits.models import CreditAccount, LedgerEntry

    session = open_session(GLOBAL_ADMIN, csp=False, name="adjust")
    page = session.page
    with e2e_app.serial.turn():
        start = CreditAccount.objects.get(organization=e2e_app.org).balance
    steps = {"en": ("credit", "25.50", "INC-E2E-1", "Goodwill for the outage"),
             "fr": ("debit", str(start + Decimal("100")), "INC-E2E-2", "Correction")}
    for language, (direction, amount, reference, reason) in steps.items():
        if language == "fr":
            switch_language(session, "fr")
        session.go(CC + "transactions/")
        page.get_by_test_id("adjust-balance").click()
        page.locator(f"input[name=direction][value={direction}]").check()
        page.locator("#id_amount").fill(amount)
        page.locator("#id_reason").fill(reason)
        page.locator("#id_reference").fill(reference)
        assert session.axe() == []
        session.shot(f"desktop-{language}-adjust-balance")
        page.locator("button.btn--primary[type=submit]").click()  # Next
        expect(page.get_by_test_id("confirm-amount")).to_be_visible()
        if direction == "debit":
            expect(page.get_by_test_id("adjust-below-zero")).to_be_visible()
            page.locator("input[name=confirm_below_zero]").check()
        assert session.axe() == []
        session.shot(f"desktop-{language}-adjust-balance-confirm")
        page.locator("button.btn--primary[type=submit]").click()  # Confirm
        page.wait_for_url(e2e_app.url + CC + "transactions/")
        row = page.locator("table tbody tr").first
        expect(row).to_contain_text(f"{reason} (ref. {reference})")
        expect(row).to_contain_text(GLOBAL_ADMIN)
        session.shot(f"desktop-{language}-adjust-balance-done")
    with e2e_app.serial.turn():
        entries = LedgerEntry.objects.filter(organization=e2e_app.org, kind="adjustment",
                                             idempotency_key__startswith="adjustment:INC-E2E")
        assert sorted(e.amount for e in entries) == [-(start + 100), Decimal("25.50")]
        assert {e.actor_label for e in entries} == {GLOBAL_ADMIN}
        debit = entries.get(amount__lt=0)
        assert debit.balance_after == Decimal("25.50") - 100  # below zero, as confirmed
        # The demo has auto-recharge on: the debit's crossing of the trigger refills it.
        total = sum(LedgerEntry.objects.filter(organization=e2e_app.org)
                    .values_list("amount", flat=True))
        assert CreditAccount.objects.get(organization=e2e_app.org).balance == total
    assert session.console_errors == [], session.console_errors
