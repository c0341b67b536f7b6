"""Auto-recharge on a phone, in English and French: saving settings that charge at once asks
to confirm the amount and the card; once the daily cap holds recharges back, the credits and
home pages say so with a link to add funds. No serious accessibility violation.
Screenshots: var/screenshots/mobile-{en,fr}-auto-recharge-confirm.png and
mobile-{en,fr}-auto-recharge-capped{,-home}.png."""

import math
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.e2e.conftest import MOBILE
from tests.e2e.test_pages import GLOBAL_ADMIN, switch_language

expect = pytest.importorskip("playwright.sync_api", reason="needs Playwright").expect

CC = "/billing/communications-credits/"
CONFIRM = {"en": "will be charged now to Visa ending in 4242.",
           "fr": "sera débité maintenant sur la carte Visa se terminant par 4242."}
CAPPED = {"en": "Auto-recharge is paused by the daily cap until tomorrow (00:00 UTC).",
          "fr": "La recharge automatique est suspendue par le plafond journalier jusqu'à "
                "demain (00:00 UTC)."}


def _fits(page):
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= MOBILE["width"], f"the page scrolls sideways ({width}px)"


def test_auto_recharge_confirmation_and_capped_banner_on_a_phone(e2e_app, open_session):
    from credits.models import CreditAccount, RechargeAttempt
    from credits.services.ledger import UsageCharge, credits_charge_usage_batch

    with e2e_app.serial.turn():
        account = CreditAccount.objects.get(organization=e2e_app.org)
        trigger = math.ceil(account.balance) + 200
    phone = open_session(GLOBAL_ADMIN, viewport=MOBILE, csp=False, name="ar-phone")
    page = phone.page
    for language in ("en", "fr"):
        if language == "fr":
            switch_language(phone, "fr")
        phone.go(CC + "auto-recharge/")
        page.locator("#id_enabled").check()
        page.locator("input[name=mode][value=add_amount]").check()
        page.locator("#id_amount").fill("100")
        page.locator("#id_trigger").fill(str(trigger))
        page.locator("#id_daily_cap").fill("1000")
        phone.shot(f"mobile-{language}-auto-recharge-form")
        page.locator("button.btn--primary[type=submit]").click()  # Save
        expect(page.get_by_test_id("charge-now")).to_contain_text(CONFIRM[language])
        _fits(page)
        assert phone.axe() == []
        phone.shot(f"mobile-{language}-auto-recharge-confirm")
        page.locator("button[name=back]").click()  # nothing saved, nothing charged
    with e2e_app.serial.turn():
        assert not RechargeAttempt.objects.filter(
            organization=e2e_app.org, created_at__gte=datetime.now(UTC).replace(
                hour=0, minute=0, second=0, microsecond=0), kind="auto_recharge").exists()
        CreditAccount.objects.filter(pk=account.pk).update(auto_recharge_daily_cap=1000)
        credits_charge_usage_batch(organization=e2e_app.org, charges=[UsageCharge(
            key="e2e:capped", amount=account.balance + Decimal(5000), description="e2e",
            occurred_at=datetime.now(UTC))])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with e2e_app.serial.turn():
            if RechargeAttempt.objects.filter(organization=e2e_app.org, status="succeeded",
                                              amount=Decimal(1000)).exists():
                break
        time.sleep(0.25)
    for language in ("fr", "en"):
        if language == "en":
            switch_language(phone, "en")
        for path, suffix in ((CC, ""), ("/", "-home")):
            phone.go(path)
            banner = page.get_by_test_id("capped-banner")
            expect(banner).to_contain_text(CAPPED[language])
            expect(banner.locator("a")).to_have_attribute("href", CC + "add-funds/")
            _fits(page)
            phone.shot(f"mobile-{language}-auto-recharge-capped{suffix}")
    assert phone.console_errors == [], phone.console_errors
