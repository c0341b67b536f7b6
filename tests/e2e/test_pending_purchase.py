"""A purchase the gateway does not confirm (test card 4000 0000 0000 6975), in a real browser
on a phone, in English and French: the page says not to pay again and offers no new order,
also when the person comes back to it later.
Screenshots: var/screenshots/mobile-{en,fr}-add-funds-pending.png."""

import pytest

from tests.e2e.conftest import MOBILE
from tests.e2e.test_pages import GLOBAL_ADMIN, switch_language

expect = pytest.importorskip("playwright.sync_api", reason="needs Playwright").expect

TEXT = {
    "en": "We could not confirm this payment yet. Do not pay again: we will finish it and "
          "tell you.",
    "fr": "Nous n'avons pas encore pu confirmer ce paiement. Ne payez pas une deuxième fois : "
          "nous allons le finaliser et vous tenir informé.",
}


def test_a_pending_purchase_on_a_phone_in_english_and_french(e2e_app, open_session):
    from credits.models import LedgerEntry, RechargeAttempt, SimulatedGatewayCharge
    from tests.factories import saved_card

    with e2e_app.serial.turn():
        card = saved_card(e2e_app.org, "4000000000006975")
        purchases_before = LedgerEntry.objects.filter(kind="purchase").count()
    phone = open_session(GLOBAL_ADMIN, viewport=MOBILE, name="pending")
    page = phone.page
    for language in ("en", "fr"):
        if language == "fr":
            # Back on the page later, in French: still no new order while it is pending.
            phone.go("/")
            switch_language(phone, "fr")
            phone.go("/billing/communications-credits/add-funds/")
        else:
            phone.go("/billing/communications-credits/add-funds/")
            page.locator("#id_amount").fill("50")
            page.locator("#id_payment_method").select_option(str(card.pk))
            page.get_by_role("button", name="Next").click()
            page.locator("button.btn--primary[type=submit]").click()  # Place order
        banner = page.get_by_test_id("purchase-pending")
        expect(banner).to_contain_text(TEXT[language])
        expect(page.locator("input[name=request_key]")).to_have_count(0)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= MOBILE["width"], f"the pending page scrolls sideways ({width}px)"
        phone.shot(f"mobile-{language}-add-funds-pending")
    with e2e_app.serial.turn():
        attempts = list(RechargeAttempt.objects.filter(payment_method=card))
        assert [a.status for a in attempts] == ["pending"]
        assert SimulatedGatewayCharge.objects.get(
            idempotency_key=str(attempts[0].pk)).tries == 1
        assert LedgerEntry.objects.filter(kind="purchase").count() == purchases_before
    assert phone.console_errors == [], phone.console_errors
