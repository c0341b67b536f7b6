"""Manual adjustments of the balance: the service, the expiry of credit adjustments (worked
examples with their figures), and the Adjust balance pages."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum

from credits.models import AuditEntry, CreditAccount, DomainEvent, LedgerEntry
from credits.platform.services import Actor, ServiceError
from credits.services.adjustments import balance_adjust, parse_adjustment_amount
from credits.services.expiry import funds_expire, funds_expiring_notify
from credits.services.ledger import UsageCharge, credits_charge_usage_batch
from credits.services.purchases import credits_purchase
from tests.factories import funded_account, saved_card

CC = "/billing/communications-credits/"
SUPPORT = Actor.system("support")


def balance(org) -> Decimal:
    return CreditAccount.objects.get(organization=org).balance


def assert_consistent(org):
    total = LedgerEntry.objects.filter(organization=org).aggregate(s=Sum("amount"))["s"]
    assert total == balance(org)


def adjust(org, amount, reference, **kwargs):
    kwargs.setdefault("reason", "goodwill")
    kwargs.setdefault("actor", SUPPORT)
    return balance_adjust(organization=org, amount=Decimal(amount), reference=reference,
                          **kwargs)


def buy(org, card, amount):
    return credits_purchase(organization=org, amount=Decimal(amount), payment_method=card,
                            actor="tests").ledger_entry


def spend(org, key, amount):
    credits_charge_usage_batch(organization=org, charges=[UsageCharge(
        key=key, amount=Decimal(amount), description="", occurred_at=datetime.now(UTC))])


# --- the service ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_credit_writes_one_entry_under_its_reference_with_an_audit_row(org):
    funded_account(org, "10.00")
    result = adjust(org, "25.50", "SUP-1", reason="Goodwill for the outage")
    entry = result.entry
    assert result.created and result.balance == Decimal("35.50")
    assert entry.kind == "adjustment" and entry.amount == Decimal("25.50")
    assert entry.idempotency_key == "adjustment:SUP-1"
    assert entry.balance_after == Decimal("35.50")
    assert entry.description == "Goodwill for the outage (ref. SUP-1)"
    assert entry.actor_label == "support"
    # A lot of its own: it expires 12 months after it was made.
    assert entry.expires_at.date() == (entry.created_at + timedelta(days=365)).date()
    audit = AuditEntry.objects.get(action="credits.adjust", target_id=str(entry.pk))
    assert audit.actor_label == "support"
    assert audit.changes["reference"] == "SUP-1"
    assert audit.changes["balance"] == {"from": "10.00", "to": "35.50"}
    assert_consistent(org)


@pytest.mark.django_db
def test_the_same_reference_twice_adjusts_once(org):
    funded_account(org, "10.00")
    first = adjust(org, "5", "SUP-2")
    again = adjust(org, "5.00", " SUP-2 ")
    assert again.created is False and again.entry.pk == first.entry.pk
    assert LedgerEntry.objects.filter(idempotency_key="adjustment:SUP-2").count() == 1
    assert balance(org) == Decimal("15.00")
    assert AuditEntry.objects.filter(action="credits.adjust", target_id=str(first.entry.pk)
                                     ).count() == 1


@pytest.mark.django_db
def test_a_reference_used_for_another_amount_is_refused_and_changes_nothing(org):
    funded_account(org, "10.00")
    adjust(org, "5", "SUP-3")
    with pytest.raises(ServiceError) as exc:
        adjust(org, "-5", "SUP-3")
    assert exc.value.code == "reference_used" and exc.value.field == "reference"
    assert "SUP-3" in exc.value.message and "$5.00" in exc.value.message
    assert balance(org) == Decimal("15.00")


@pytest.mark.django_db
def test_a_debit_below_zero_needs_confirmation(org):
    funded_account(org, "30.00")
    with pytest.raises(ServiceError) as exc:
        adjust(org, "-40", "FIX-1", reason="double credit")
    assert exc.value.code == "needs_confirmation"
    assert "-$10.00" in exc.value.message
    assert not LedgerEntry.objects.filter(idempotency_key="adjustment:FIX-1").exists()
    assert balance(org) == Decimal("30.00")
    result = adjust(org, "-40", "FIX-1", reason="double credit", confirm_below_zero=True)
    assert result.balance == Decimal("-10.00")
    assert result.entry.expires_at is None  # a debit is no lot
    assert AuditEntry.objects.get(target_id=str(result.entry.pk)).changes[
        "below_zero_confirmed"] is True
    # Crossing zero tells the credit roles, as usage does.
    assert DomainEvent.objects.filter(name="balance_zero").count() == 1
    assert_consistent(org)


@pytest.mark.django_db
def test_a_debit_down_to_exactly_zero_needs_no_confirmation(org):
    funded_account(org, "30.00")
    assert adjust(org, "-30", "FIX-2").balance == Decimal("0.00")


@pytest.mark.django_db
@pytest.mark.parametrize(("kwargs", "field"), [
    ({"reason": "  "}, "reason"),
    ({"reference": ""}, "reference"),
    ({"reference": "x" * 65}, "reference"),
    ({"reason": "r" * 121}, "reason"),
    ({"reason": "bad\x00"}, "reason"),
    ({"amount": Decimal("0")}, "amount"),
    ({"amount": Decimal("1.005")}, "amount"),
])
def test_bad_input_names_its_field_and_writes_nothing(org, kwargs, field):
    funded_account(org, "10.00")
    args = {"amount": Decimal(5), "reason": "why", "reference": "R-1", "actor": SUPPORT}
    args.update(kwargs)
    with pytest.raises(ServiceError) as exc:
        balance_adjust(organization=org, **args)
    assert exc.value.field == field
    assert LedgerEntry.objects.filter(organization=org).count() == 1


@pytest.mark.django_db
def test_a_float_amount_is_refused(org):
    with pytest.raises(TypeError):
        balance_adjust(organization=org, amount=0.1, reason="r", reference="F", actor=SUPPORT)


@pytest.mark.parametrize(("typed", "expected"), [
    ("50", Decimal("50.00")), ("-12.50", Decimal("-12.50")), ("+7.1", Decimal("7.10")),
    ("1,000", Decimal("1000.00")), ("-1 000.25", Decimal("-1000.25")),
    (Decimal("-100000"), Decimal("-100000.00")),
])
def test_typed_amounts_are_read_exactly(typed, expected):
    assert parse_adjustment_amount(typed, label="Amount") == expected


@pytest.mark.parametrize("typed", ["", "abc", "12,50", "1e3", "0", "-0.00", "1.234",
                                   "100000.01", "-100001", "NaN", "١٠"])
def test_unusable_amounts_are_refused_naming_the_field(typed):
    with pytest.raises(ServiceError) as exc:
        parse_adjustment_amount(typed, label="Amount")
    assert exc.value.message.startswith("Amount")


# --- expiry: worked examples -------------------------------------------------------------


@pytest.mark.django_db
def test_worked_example_purchase_100_spend_30_credit_50_leaves_50_at_expiry(org):
    """Buy 100, spend 30, credit +50: balance 120. At the purchase's expiry its unspent 70
    expire (not 100), leaving the 50 credit. At the credit's own expiry, its 50 expire."""
    card = saved_card(org)
    purchase = buy(org, card, 100)
    spend(org, "u1", "30")
    credit = adjust(org, "50", "GW-1").entry
    assert balance(org) == Decimal("120.00")
    (expired,) = funds_expire(organization=org, now=purchase.expires_at)
    assert (expired.expired_lot_id, expired.amount) == (purchase.pk, Decimal("-70.00"))
    assert balance(org) == Decimal("50.00")
    (expired,) = funds_expire(organization=org, now=credit.expires_at)
    assert (expired.expired_lot_id, expired.amount) == (credit.pk, Decimal("-50.00"))
    assert balance(org) == Decimal("0.00")
    assert_consistent(org)


@pytest.mark.django_db
def test_worked_example_spend_beyond_the_purchase_is_taken_from_the_credit(org):
    """Buy 100, spend 30, credit +50, spend 100: balance 20. FIFO: the purchase is spent
    in full (100 of the 130), the credit keeps 20. At the purchase's expiry nothing
    expires; at the credit's expiry 20 do."""
    card = saved_card(org)
    purchase = buy(org, card, 100)
    spend(org, "u1", "30")
    credit = adjust(org, "50", "GW-2").entry
    spend(org, "u2", "100")
    assert balance(org) == Decimal("20.00")
    assert funds_expire(organization=org, now=purchase.expires_at) == []
    assert balance(org) == Decimal("20.00")
    (expired,) = funds_expire(organization=org, now=credit.expires_at)
    assert (expired.expired_lot_id, expired.amount) == (credit.pk, Decimal("-20.00"))
    assert balance(org) == Decimal("0.00")
    assert_consistent(org)


@pytest.mark.django_db
def test_worked_example_an_older_credit_is_spent_before_a_later_purchase(org):
    """Credit +50, buy 100, spend 80: balance 70. FIFO: the credit's 50 go first, then 30
    of the purchase. At the credit's expiry nothing is left of it; at the purchase's
    expiry its 70 expire."""
    card = saved_card(org)
    credit = adjust(org, "50", "GW-3").entry
    purchase = buy(org, card, 100)
    spend(org, "u1", "80")
    assert balance(org) == Decimal("70.00")
    assert funds_expire(organization=org, now=credit.expires_at) == []
    (expired,) = funds_expire(organization=org, now=purchase.expires_at)
    assert (expired.expired_lot_id, expired.amount) == (purchase.pk, Decimal("-70.00"))
    assert balance(org) == Decimal("0.00")
    assert_consistent(org)


@pytest.mark.django_db
def test_worked_example_a_debit_correction_consumes_the_oldest_lot(org):
    """Buy 100, buy 100, debit -40 (a correction), spend 20: balance 140. The 60 consumed
    come from the first purchase, which keeps 40; the second keeps 100."""
    card = saved_card(org)
    first = buy(org, card, 100)
    second = buy(org, card, 100)
    adjust(org, "-40", "FIX-3", reason="duplicate credit")
    spend(org, "u1", "20")
    assert balance(org) == Decimal("140.00")
    (expired,) = funds_expire(organization=org, now=first.expires_at)
    assert (expired.expired_lot_id, expired.amount) == (first.pk, Decimal("-40.00"))
    assert balance(org) == Decimal("100.00")
    (expired,) = funds_expire(organization=org, now=second.expires_at + timedelta(hours=1))
    assert (expired.expired_lot_id, expired.amount) == (second.pk, Decimal("-100.00"))
    assert balance(org) == Decimal("0.00")
    assert_consistent(org)


@pytest.mark.django_db
def test_a_credit_adjustment_gets_its_expiry_notice(org):
    credit = adjust(org, "50", "GW-4").entry
    spend(org, "u1", "12.50")
    assert funds_expiring_notify(organization=org,
                                 now=credit.expires_at - timedelta(days=10)) == 1
    event = DomainEvent.objects.get(name="funds_expiring")
    assert event.payload["amount"] == "37.50"
    assert event.payload["purchase_entry_id"] == str(credit.pk)


# --- the pages ---------------------------------------------------------------------------


@pytest.fixture
def billing_admin(make_person):
    return make_person("billing_administrator", display_name="Alex Wilber",
                       upn="alex@contoso.test")


@pytest.fixture
def bclient(client, billing_admin):
    client.force_login(billing_admin.user)
    return client


FORM = {"direction": "credit", "amount": "25.50", "reason": "Goodwill for the outage",
        "reference": "INC-42"}


@pytest.mark.django_db
def test_billing_admin_adjusts_through_the_form_and_confirmation(bclient, org, admin_person):
    funded_account(org, "100.00")
    page = bclient.get(CC + "transactions/").content.decode()
    assert 'href="/billing/communications-credits/adjust-balance/"' in page
    form = bclient.get(CC + "adjust-balance/")
    assert form.status_code == 200 and 'value="ADJ-' in form.content.decode()
    confirm = bclient.post(CC + "adjust-balance/", FORM)
    text = confirm.content.decode()
    assert confirm.status_code == 200 and "Confirm the adjustment" in text
    assert "$125.50" in text  # balance after
    assert LedgerEntry.objects.filter(organization=org).count() == 1  # nothing written yet
    done = bclient.post(CC + "adjust-balance/confirm/", FORM, follow=True)
    assert done.redirect_chain[-1][0] == CC + "transactions/"
    text = done.content.decode()
    assert "The balance was adjusted by $25.50. New balance: $125.50." in text
    entry = LedgerEntry.objects.get(idempotency_key="adjustment:INC-42")
    assert entry.actor_label == "alex@contoso.test"
    assert "Goodwill for the outage (ref. INC-42)" in text and "alex@contoso.test" in text
    # Sending the confirmation again changes nothing.
    again = bclient.post(CC + "adjust-balance/confirm/", FORM, follow=True)
    assert "was already recorded: nothing changed" in again.content.decode()
    assert balance(org) == Decimal("125.50")
    # The audit log says who did it.
    bclient.force_login(admin_person.user)
    log = bclient.get("/settings/audit/").content.decode()
    assert "credits.adjust" in log and "alex@contoso.test" in log and "INC-42" in log


@pytest.mark.django_db
def test_a_debit_below_zero_shows_a_confirmation_and_needs_the_checkbox(bclient, org):
    funded_account(org, "10.00")
    debit = {**FORM, "direction": "debit", "amount": "30", "reference": "FIX-9"}
    confirm = bclient.post(CC + "adjust-balance/", debit).content.decode()
    assert "This debit takes the balance below zero, to -$20.00." in confirm
    assert 'name="confirm_below_zero"' in confirm
    refused = bclient.post(CC + "adjust-balance/confirm/", debit)
    assert refused.status_code == 400
    assert "Confirm the debit to go ahead." in refused.content.decode()
    assert balance(org) == Decimal("10.00")
    bclient.post(CC + "adjust-balance/confirm/", {**debit, "confirm_below_zero": "1"})
    assert balance(org) == Decimal("-20.00")


@pytest.mark.django_db
def test_bad_input_shows_errors_naming_the_field(bclient, org):
    response = bclient.post(CC + "adjust-balance/", {**FORM, "amount": "12,50",
                                                     "reason": ""})
    text = response.content.decode()
    assert response.status_code == 400
    assert "Amount: enter an amount such as 50 or -12.50." in text
    assert "Reason: say why the balance is adjusted." in text
    signed = bclient.post(CC + "adjust-balance/", {**FORM, "amount": "-5"}).content.decode()
    assert "choose Debit" in signed
    # The confirmation step checks again: a tampered amount never reaches the ledger.
    assert bclient.post(CC + "adjust-balance/confirm/",
                        {**FORM, "amount": "1e9"}).status_code == 400
    assert not LedgerEntry.objects.filter(kind="adjustment", idempotency_key__startswith=
                                          "adjustment:INC").exists()


@pytest.mark.django_db
def test_only_billing_admins_may_adjust(client, make_person, org):
    funded_account(org, "10.00")
    reader = make_person("teams_administrator")  # view_billing, not manage_billing
    client.force_login(reader.user)
    assert "adjust-balance" not in client.get(CC + "transactions/").content.decode()
    assert client.get(CC + "adjust-balance/").status_code == 403
    assert client.post(CC + "adjust-balance/confirm/", FORM).status_code == 403
    assert balance(org) == Decimal("10.00")


@pytest.mark.django_db
def test_the_adjustment_pages_in_french(client, make_person, org):
    person = make_person("billing_administrator", preferred_language="fr")
    client.force_login(person.user)
    funded_account(org, "10.00")
    form = client.get(CC + "adjust-balance/").content.decode()
    assert "Ajuster le solde" in form
    confirm = client.post(CC + "adjust-balance/", {**FORM, "direction": "debit",
                                                   "amount": "30"}).content.decode()
    assert "Confirmer l" in confirm and "ajustement" in confirm
    assert "sous zéro" in confirm


@pytest.mark.django_db
def test_the_french_confirmation_sends_the_amount_back_unlocalized(client, make_person, org):
    """French writes 12,50; the confirmation's hidden field must still read 12.50."""
    person = make_person("billing_administrator", preferred_language="fr")
    client.force_login(person.user)
    funded_account(org, "10.00")
    confirm = client.post(CC + "adjust-balance/", {**FORM, "amount": "12.50"}).content.decode()
    assert 'name="amount" value="12.50"' in confirm
    client.post(CC + "adjust-balance/confirm/", {**FORM, "amount": "12.50"})
    assert balance(org) == Decimal("22.50")
