"""Auto-recharge says what it does: the confirmation of a save that charges at once, sane
settings, the daily cap (a setting, a notification, a banner), the target-balance mode,
post-paid organizations turning it off, the low-balance level, and the PO number."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import BytesIO

import pytest
from django.core import mail
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from pypdf import PdfReader

from credits.models import (
    AutoRechargeMode,
    BillingAccountType,
    CreditAccount,
    DomainEvent,
    Invoice,
    LedgerEntry,
    RechargeAttempt,
    SimulatedGatewayCharge,
)
from credits.platform.events import event_dispatch
from credits.platform.services import Actor, ServiceError
from credits.recharge_rules import RechargeSettings, recharge_due
from credits.selectors.billing import auto_recharge_charge_now
from credits.services import ledger as ledger_service
from credits.services.ledger import (
    UsageCharge,
    credit_account_set_low_balance_threshold,
    credits_charge_usage_batch,
)
from credits.services.recharges import auto_recharge_configure, auto_recharge_start
from tests.conftest import requires_postgres
from tests.factories import OrganizationFactory, funded_account, saved_card

CC = "/billing/communications-credits/"
AR = f"{CC}auto-recharge/"
ACTOR = Actor.system("tests")


@pytest.fixture
def bclient(client, make_person):
    client.force_login(make_person("billing_administrator").user)
    return client


@pytest.fixture
def use(django_capture_on_commit_callbacks):
    """Charge usage and run what it enqueues after commit (eager Celery)."""

    def charge(org, key, amount):
        with django_capture_on_commit_callbacks(execute=True):
            return credits_charge_usage_batch(organization=org, charges=[UsageCharge(
                key=key, amount=Decimal(amount), description="call",
                occurred_at=datetime.now(UTC))])

    return charge


def balance(org):
    return CreditAccount.objects.get(organization=org).balance


def pdf_text(content: bytes) -> str:
    reader = PdfReader(BytesIO(content))
    return "\n".join(page.extract_text() for page in reader.pages).replace("\xa0", " ")


def settings_post(card, **fields):
    data = {"enabled": "on", "mode": "add_amount", "amount": "50", "trigger": "100",
            "payment_method": card.pk}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


# --- 1. saving charges now: a confirmation that states the amount and the card ------------


@pytest.mark.django_db
def test_a_save_below_the_trigger_asks_to_confirm_the_exact_charge_and_card(bclient, org):
    funded_account(org, "30.00")
    card = saved_card(org)
    response = bclient.post(AR, settings_post(card))
    page = response.content.decode()
    assert response.status_code == 200
    # gap 70, amount 50: two amounts in one charge
    assert "$100.00 will be charged now to Visa ending in 4242." in page
    assert 'name="confirm_charge" value="100.00"' in page
    account = CreditAccount.objects.get(organization=org)
    assert not account.auto_recharge_enabled  # nothing saved before "Confirm"
    assert not RechargeAttempt.objects.exists()
    assert not SimulatedGatewayCharge.objects.exists()


@pytest.mark.django_db
def test_confirming_saves_and_charges_exactly_the_amount_shown(
        bclient, org, django_capture_on_commit_callbacks):
    funded_account(org, "12.34")
    card = saved_card(org)
    post = settings_post(card, mode="target_balance", amount="", target="500")
    page = bclient.post(AR, post).content.decode()
    assert "$488.00 will be charged now" in page  # 500 - 12.34 = 487.66, rounded up
    with django_capture_on_commit_callbacks(execute=True):
        response = bclient.post(AR, {**post, "confirm": "1", "confirm_charge": "488.00"})
    assert response.status_code == 302
    attempt = RechargeAttempt.objects.get()
    assert attempt.amount == Decimal("488.00") and attempt.status == "succeeded"
    assert SimulatedGatewayCharge.objects.get().amount == Decimal("488.00")
    assert [e.amount for e in LedgerEntry.objects.filter(kind="auto_recharge")] == [
        Decimal("488.00")]
    assert balance(org) == Decimal("500.34")
    account = CreditAccount.objects.get(organization=org)
    assert account.auto_recharge_enabled
    assert account.auto_recharge_mode == AutoRechargeMode.TARGET_BALANCE


@pytest.mark.django_db
def test_the_page_and_the_service_compute_the_same_amount(org):
    funded_account(org, "-260.00")
    card = saved_card(org)
    account = CreditAccount.objects.get(organization=org)
    settings = RechargeSettings(mode="add_amount", trigger=Decimal(50), amount=Decimal(50))
    shown = auto_recharge_charge_now(account=account, settings=settings).amount
    auto_recharge_configure(organization=org, enabled=True, amount=50, trigger=50,
                            payment_method=card, expected_charge=shown, actor=ACTOR)
    assert shown == Decimal("350.00")
    assert RechargeAttempt.objects.get().amount == shown
    assert auto_recharge_start(organization_id=org.pk).amount == shown  # resumed, not new
    assert RechargeAttempt.objects.count() == 1


@pytest.mark.django_db
def test_a_save_that_charges_nothing_needs_no_confirmation(bclient, org):
    funded_account(org, "500.00")
    card = saved_card(org)
    response = bclient.post(AR, settings_post(card))
    assert response.status_code == 302
    assert CreditAccount.objects.get(organization=org).auto_recharge_enabled
    assert not RechargeAttempt.objects.exists()


@pytest.mark.django_db
def test_a_balance_that_moved_before_confirming_shows_the_new_amount_and_charges_nothing(
        bclient, org, use):
    funded_account(org, "60.00")
    card = saved_card(org)
    post = settings_post(card)
    assert "$50.00 will be charged now" in bclient.post(AR, post).content.decode()
    use(org, "call", "20.00")  # 40: now two amounts are needed
    response = bclient.post(AR, {**post, "confirm": "1", "confirm_charge": "50.00"})
    page = response.content.decode()
    assert "$100.00 will be charged now" in page
    assert "not what was shown" in page
    assert not CreditAccount.objects.get(organization=org).auto_recharge_enabled
    assert not RechargeAttempt.objects.exists()


# --- 2. sanity ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_trigger_over_twenty_times_the_amount_is_refused_on_the_field(bclient, org):
    funded_account(org, "5000.00")
    card = saved_card(org)
    page = bclient.post(AR, settings_post(card, amount="50", trigger="1001")).content.decode()
    assert 'id="id_trigger_error"' in page
    assert ("When balance is below (1,001) is more than 20 times the amount to add (50): "
            "every recharge would charge the card many times that amount at once.") in page
    assert not CreditAccount.objects.get(organization=org).auto_recharge_enabled
    with pytest.raises(ServiceError) as error:
        auto_recharge_configure(organization=org, enabled=True, amount=50, trigger=1001,
                                payment_method=card, actor=ACTOR)
    assert error.value.field == "trigger"
    # Exactly 20 times is fine.
    assert bclient.post(AR, settings_post(card, amount="50", trigger="1000")).status_code == 302


@pytest.mark.django_db
def test_a_trigger_above_the_maximum_says_why(bclient, org):
    card = saved_card(org)
    page = bclient.post(AR, settings_post(card, amount="100000", trigger="100001")
                        ).content.decode()
    assert ("When balance is below must be at most 100,000: one day of automatic recharges "
            "adds at most 100,000, so a higher balance could never be reached.") in page
    with pytest.raises(ServiceError) as error:
        auto_recharge_configure(organization=org, enabled=True, amount=100000,
                                trigger=100001, payment_method=card, actor=ACTOR)
    assert error.value.field == "trigger" and "could never be reached" in error.value.message


# --- 3. the daily cap ------------------------------------------------------------------------


@pytest.mark.parametrize("mode,amount,target,trigger,cap,expected", [
    ("add_amount", "50", None, "50", None, "1000"),       # 10 x 50 < 1,000
    ("add_amount", "500", None, "50", None, "5000"),      # 10 x the amount
    ("add_amount", "50000", None, "50", None, "100000"),  # at most the maximum
    ("target_balance", None, "450", "50", None, "4000"),  # 10 x (G - T)
    ("add_amount", "50", None, "50", "2500", "2500"),     # the account's own
])
def test_the_daily_cap_is_the_accounts_own_or_the_default_rule(
        mode, amount, target, trigger, cap, expected):
    def dec(v):
        return None if v is None else Decimal(v)

    settings = RechargeSettings(mode=mode, trigger=dec(trigger), amount=dec(amount),
                                target=dec(target), daily_cap=dec(cap))
    due = recharge_due(settings=settings, balance=Decimal(0), spent_today=Decimal(0))
    assert due.cap == Decimal(expected)


@pytest.mark.django_db
@pytest.mark.parametrize("cap,message", [
    ("999", "Daily cap must be at least 1,000"),
    ("1500", "Daily cap (1,500) is less than one recharge (2,000): no recharge could ever run."),
    ("100001", "Daily cap must be at most 100,000."),
])
def test_the_daily_cap_setting_is_validated_on_its_field(bclient, org, cap, message):
    funded_account(org, "5000.00")
    card = saved_card(org)
    page = bclient.post(AR, settings_post(card, amount="2000", trigger="100", daily_cap=cap)
                        ).content.decode()
    assert 'id="id_daily_cap_error"' in page
    assert message in page
    assert not CreditAccount.objects.get(organization=org).auto_recharge_enabled


@pytest.mark.django_db
def test_the_daily_cap_is_saved_and_shown_on_the_auto_recharge_card(bclient, org):
    funded_account(org, "500.00")
    card = saved_card(org)
    assert bclient.post(AR, settings_post(card, daily_cap="3000")).status_code == 302
    assert CreditAccount.objects.get(organization=org).auto_recharge_daily_cap == 3000
    assert "Daily cap: $3,000." in bclient.get(CC).content.decode()
    assert bclient.post(AR, settings_post(card, daily_cap="")).status_code == 302
    assert CreditAccount.objects.get(organization=org).auto_recharge_daily_cap is None
    assert ("Daily cap: $1,000 (default: ten times one recharge, at least 1,000)."
            in bclient.get(CC).content.decode())


def _capped_org(org, use):
    funded_account(org, "60.00")
    card = saved_card(org)
    auto_recharge_configure(organization=org, enabled=True, amount=50, trigger=50,
                            daily_cap=1000, payment_method=card, actor=ACTOR)
    use(org, "huge", "5000.00")  # needs 5,000; the cap lets 1,000 through
    return card


@pytest.mark.django_db
def test_the_cap_stopping_a_recharge_tells_the_credit_roles_once_a_day(
        org, use, make_person, django_capture_on_commit_callbacks):
    billing = make_person("billing_administrator", display_name="Alex Billing")
    french = make_person("global_administrator", display_name="Megan Global",
                         preferred_language="fr")
    make_person("global_reader", display_name="Gail Reader")
    _capped_org(org, use)
    assert RechargeAttempt.objects.get().amount == Decimal("1000.00")
    assert auto_recharge_start(organization_id=org.pk) is None  # paused: nothing left today
    assert auto_recharge_start(organization_id=org.pk) is None
    events = DomainEvent.objects.filter(name="auto_recharge_capped")
    assert events.count() == 1
    event = events.get()
    assert event.payload["cap"] == "1000.00" and event.payload["currency"] == "USD"
    day = datetime.now(UTC).date()
    assert event.dedupe_key == f"auto_recharge_capped:{org.credit_account.pk}:{day}"
    with django_capture_on_commit_callbacks(execute=True):
        event_dispatch(event_id=event.pk)  # done already, after the commit that emitted it
    capped = [m for m in mail.outbox if "daily cap" in m.subject or "plafond" in m.subject]
    by_to = {m.to[0]: m for m in capped}
    assert len(capped) == 2
    assert sorted(by_to) == sorted([billing.email, french.email])
    english = by_to[billing.email]
    assert "Auto-recharge is paused by the daily cap until tomorrow" in english.subject
    assert "reached today's daily cap of $1,000.00" in english.body
    assert "/billing/communications-credits/add-funds/" in english.body
    assert "plafond journalier" in by_to[french.email].subject
    assert "1 000,00" in by_to[french.email].body.replace("\u202f", " ").replace("\xa0", " ")
    # The next UTC day counts again: a new occurrence.
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    assert auto_recharge_start(organization_id=org.pk, now=tomorrow) is not None


@pytest.mark.django_db
def test_the_capped_event_is_in_the_catalog_and_the_settings_grid(admin_client):
    from notifications import catalog

    assert "auto_recharge_capped" in catalog.ROUTED_EVENTS
    assert "billing_administrator" in catalog.default_roles("auto_recharge_capped")
    page = admin_client.get("/settings/notifications/").content.decode()
    assert "Auto-recharge paused by the daily cap" in page


@pytest.mark.django_db
def test_credits_and_home_pages_show_the_capped_banner_with_add_funds(bclient, org, use):
    _capped_org(org, use)
    banner = "Auto-recharge is paused by the daily cap until tomorrow (00:00 UTC)."
    for path in (CC, "/"):
        page = bclient.get(path).content.decode()
        assert banner in page, path
        start = page.index('data-testid="capped-banner"')
        assert f'href="{CC}add-funds/"' in page[start:start + 400]


@pytest.mark.django_db
def test_no_capped_banner_while_the_cap_leaves_room(bclient, org, use):
    funded_account(org, "60.00")
    card = saved_card(org)
    auto_recharge_configure(organization=org, enabled=True, amount=50, trigger=50,
                            payment_method=card, actor=ACTOR)
    use(org, "call", "20.00")
    assert "paused by the daily cap" not in bclient.get(CC).content.decode()


# --- 4. target balance ---------------------------------------------------------------------


@pytest.mark.parametrize("bal,trigger,target,cap,spent,expected", [
    ("40", "50", "200", None, "0", "160"),
    ("12.34", "100", "500", None, "0", "488"),      # G - B rounded up to a whole unit
    ("-2000", "100", "500", "1000", "0", "1000"),   # the cap applies
    ("0", "100", "500", "1000", "970", "0"),        # less than 50 left today: none
    ("100", "100", "500", None, "0", "0"),          # not below the trigger
])
def test_recharge_to_a_target_charges_the_rounded_up_difference(
        bal, trigger, target, cap, spent, expected):
    settings = RechargeSettings(mode="target_balance", trigger=Decimal(trigger),
                                target=Decimal(target),
                                daily_cap=None if cap is None else Decimal(cap))
    due = recharge_due(settings=settings, balance=Decimal(bal), spent_today=Decimal(spent))
    assert due.amount == Decimal(expected)


@pytest.mark.django_db
def test_usage_below_the_trigger_recharges_to_the_target(org, use):
    funded_account(org, "300.00")
    card = saved_card(org)
    auto_recharge_configure(organization=org, enabled=True, mode="target_balance",
                            target=400, trigger=100, payment_method=card, actor=ACTOR)
    use(org, "call", "250.50")  # 49.50
    assert RechargeAttempt.objects.get().amount == Decimal("351.00")
    assert balance(org) == Decimal("400.50")


@pytest.mark.django_db
def test_the_target_must_be_fifty_above_the_trigger_in_the_form_and_the_database(bclient, org):
    funded_account(org, "500.00")
    card = saved_card(org)
    page = bclient.post(AR, settings_post(card, mode="target_balance", target="149",
                                          trigger="100")).content.decode()
    assert 'id="id_target_error"' in page
    assert "Recharge to this balance must be at least 150, 50 above the trigger" in page
    assert bclient.post(AR, settings_post(card, mode="target_balance", target="150",
                                          trigger="100")).status_code == 302
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditAccount.objects.filter(organization=org).update(auto_recharge_target=149)
    # The rule binds the target mode only.
    CreditAccount.objects.filter(organization=org).update(auto_recharge_mode="add_amount",
                                                           auto_recharge_amount=50,
                                                           auto_recharge_target=60)


@pytest.mark.django_db
def test_the_form_offers_both_modes(bclient, org):
    saved_card(org)
    page = bclient.get(AR).content.decode()
    assert 'value="add_amount"' in page and 'value="target_balance"' in page
    assert "Recharge to this balance" in page and "Add this amount" in page


# --- 5. post-paid organizations may turn it off ----------------------------------------


def _postpaid_with_auto_recharge_on(org):
    funded_account(org, "300.00")
    card = saved_card(org)
    auto_recharge_configure(organization=org, enabled=True, amount=100, trigger=200,
                            payment_method=card, actor=ACTOR)
    org.billing_account_type = BillingAccountType.MCA
    org.save()
    return card


@pytest.mark.django_db
def test_a_postpaid_organization_turns_auto_recharge_off_and_its_card_is_not_charged(
        bclient, org, use):
    _postpaid_with_auto_recharge_on(org)
    page = bclient.get(AR)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Turn off auto-recharge" in text and "post-paid" in text
    assert 'name="amount"' not in text  # only off
    response = bclient.post(AR, {"turn_off": "1", "enabled": "on", "amount": "100"})
    assert response.status_code == 302
    assert not CreditAccount.objects.get(organization=org).auto_recharge_enabled
    use(org, "call", "250.00")  # 50, below the old trigger
    assert not RechargeAttempt.objects.exists()
    assert not SimulatedGatewayCharge.objects.exists()
    assert "Turn off auto-recharge" not in bclient.get(AR).content.decode()


@pytest.mark.django_db
def test_turning_off_never_asks_whether_the_organization_may_buy(org, monkeypatch):
    _postpaid_with_auto_recharge_on(org)

    def refuse(organization):
        raise AssertionError("ensure_may_buy called to turn auto-recharge off")

    monkeypatch.setattr("credits.services.recharges.ensure_may_buy", refuse)
    auto_recharge_configure(organization=org, enabled=False, actor=ACTOR)
    assert not CreditAccount.objects.get(organization=org).auto_recharge_enabled


@pytest.mark.django_db
def test_a_postpaid_organization_left_on_is_not_charged_either(org, use):
    _postpaid_with_auto_recharge_on(org)
    use(org, "call", "250.00")
    assert not RechargeAttempt.objects.exists()
    assert not SimulatedGatewayCharge.objects.exists()


# --- 6. the low-balance level --------------------------------------------------------------


@pytest.mark.django_db
def test_setting_a_level_above_the_balance_warns_once(org, make_person):
    make_person("billing_administrator")
    funded_account(org, "40.00")

    def level(value):
        credit_account_set_low_balance_threshold(
            organization=org, threshold=None if value is None else Decimal(value), actor=ACTOR)

    level("30")
    assert not DomainEvent.objects.filter(name="balance_low").exists()
    level("50")
    event = DomainEvent.objects.get(name="balance_low")
    assert event.payload["balance"] == "40.00" and event.payload["threshold"] == "50.00"
    level("50")
    level("60")  # already warned under the previous level
    assert DomainEvent.objects.filter(name="balance_low").count() == 1
    level(None)
    level("45")  # a new level set above the balance: told again
    assert DomainEvent.objects.filter(name="balance_low").count() == 2


@pytest.mark.django_db
def test_the_level_and_the_crossing_use_one_rule(org, use, monkeypatch):
    funded_account(org, "100.00")
    calls = []
    real = ledger_service.balance_below_warning

    def spy(**kw):
        calls.append(kw)
        return real(**kw)

    monkeypatch.setattr(ledger_service, "balance_below_warning", spy)
    credit_account_set_low_balance_threshold(organization=org, threshold=Decimal(50),
                                             actor=ACTOR)
    use(org, "call", "60.00")
    assert calls  # both paths ask the same function
    assert DomainEvent.objects.filter(name="balance_low").count() == 1


# --- 7. the PO number ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_po_number_entered_at_purchase_reaches_the_invoice_and_its_pdf(bclient, org):
    card = saved_card(org)
    post = {"amount": "150", "payment_method": card.pk, "po_number": " PO-4711/B "}
    page = bclient.post(f"{CC}add-funds/", post).content.decode()
    assert 'name="po_number" value="PO-4711/B"' in page
    key = page.split('name="request_key" value="')[1].split('"')[0]
    response = bclient.post(f"{CC}add-funds/confirm/", {**post, "po_number": "PO-4711/B",
                                                        "request_key": key})
    assert response.status_code == 302
    attempt = RechargeAttempt.objects.get()
    assert attempt.po_number == "PO-4711/B"
    invoice = Invoice.objects.get()
    assert "PO-4711/B" in bclient.get(f"/billing/invoices/{invoice.pk}/").content.decode()
    text = pdf_text(bclient.get(f"/billing/invoices/{invoice.pk}/pdf").content)
    assert "PO number" in text and "PO-4711/B" in text
    assert invoice.number in text and "$150.00" in text


@pytest.mark.django_db
def test_a_po_number_on_auto_recharge_is_printed_on_its_invoices(bclient, org, use):
    funded_account(org, "500.00")
    card = saved_card(org)
    assert bclient.post(AR, settings_post(card, po_number="4500012345")).status_code == 302
    use(org, "call", "450.00")
    attempt = RechargeAttempt.objects.get(kind="auto_recharge")
    assert attempt.po_number == "4500012345"
    text = pdf_text(bclient.get(f"/billing/invoices/{attempt.invoice.pk}/pdf").content)
    assert "4500012345" in text


@pytest.mark.django_db
@pytest.mark.parametrize("po,message", [
    ("x" * 41, "PO number must be at most 40 characters."),
    ("PO\x001", "PO number: use letters, digits and punctuation only."),
    ("PO\u200b1", "PO number: use letters, digits and punctuation only."),
])
def test_a_bad_po_number_is_refused_on_its_field(bclient, org, po, message):
    card = saved_card(org)
    page = bclient.post(f"{CC}add-funds/", {"amount": "150", "payment_method": card.pk,
                                            "po_number": po}).content.decode()
    assert message in page and 'id="id_po_number_error"' in page
    assert not RechargeAttempt.objects.exists()


@pytest.mark.django_db
def test_a_purchase_without_a_po_number_prints_none(org):
    from credits.services.purchases import credits_purchase

    attempt = credits_purchase(organization=org, amount=100, payment_method=saved_card(org),
                               actor="tests")
    assert attempt.po_number == ""
    from credits.invoice_pdf import invoice_pdf

    assert "PO number" not in pdf_text(invoice_pdf(attempt.invoice))


# --- 8. two saves at once charge once (PostgreSQL) ---------------------------------------


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_two_saves_at_once_below_the_trigger_charge_once():
    org = OrganizationFactory()
    funded_account(org, "20.00")
    card = saved_card(org)
    account = CreditAccount.objects.get(organization=org)
    shown = auto_recharge_charge_now(account=account, settings=RechargeSettings(
        mode="add_amount", trigger=Decimal(100), amount=Decimal(50))).amount
    assert shown == Decimal("100.00")
    barrier = threading.Barrier(2)
    errors = []

    def save():
        try:
            barrier.wait(10)
            auto_recharge_configure(organization=org, enabled=True, amount=50, trigger=100,
                                    payment_method=card, expected_charge=shown,
                                    actor="tests")
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=save) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    from credits.tasks import auto_recharge_sweep

    auto_recharge_sweep()  # whatever the race left for the beat
    assert RechargeAttempt.objects.filter(organization=org).count() == 1
    assert [e.amount for e in LedgerEntry.objects.filter(organization=org,
                                                        kind="auto_recharge")] == [shown]
    assert SimulatedGatewayCharge.objects.filter(amount=shown).count() == 1
    total = LedgerEntry.objects.filter(organization=org).aggregate(s=Sum("amount"))["s"]
    assert balance(org) == total == Decimal("120.00")


# --- French -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_confirmation_the_banner_and_the_refusals_are_french(
        client, make_person, org, use):
    client.force_login(make_person("billing_administrator", preferred_language="fr").user)
    card = _capped_org(org, use)
    page = client.get(CC).content.decode()
    assert "La recharge automatique est suspendue par le plafond journalier" in page
    assert "Plafond journalier : 1" in page
    page = client.post(AR, settings_post(card, daily_cap="5000")).content.decode()
    assert "sera débité maintenant sur la carte Visa se terminant par 4242" in page
    assert "Confirmer" in page
    page = client.post(AR, settings_post(card, amount="50", trigger="1001")).content.decode()
    assert "dépasse 20 fois le montant à ajouter" in page
    page = client.get(AR).content.decode()
    assert "Recharger jusqu&#x27;à ce solde" in page or "Recharger jusqu'à ce solde" in page
