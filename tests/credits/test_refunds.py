"""Refunds of purchases and auto-recharges: the simulated gateway's refunds (Stripe's rules,
the ...5126 and ...7726 test cards), the refund service (up to the unspent remainder, a
ledger entry, a credit note, the credit roles told, the audit log), the sweep that settles
a refund left without an answer, and the `refund_purchase` command."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.management import get_commands, load_command_class
from django.db import connections
from django.utils import timezone, translation

from credits.models import (
    AuditEntry,
    CreditAccount,
    CreditNote,
    DomainEvent,
    Invoice,
    LedgerEntry,
    Refund,
    SimulatedGatewayRefund,
)
from credits.payments.base import GatewayTimeout
from credits.payments.simulated import SimulatedGateway
from credits.platform.services import Actor, ServiceError
from credits.services.expiry import funds_expire
from credits.services.ledger import UsageCharge, credits_charge_usage_batch
from credits.services.purchases import credits_purchase
from credits.services.refunds import refund_request, refunds_settle_pending
from credits.tasks import refund_sweep
from tests.factories import PersonFactory, saved_card

ACTOR = Actor.system("tests")
YEAR = timezone.now().year


def buy(org, amount, number="4242424242424242"):
    card = saved_card(org, number)
    attempt = credits_purchase(organization=org, amount=Decimal(amount), payment_method=card,
                               actor=ACTOR)
    assert attempt.status == "succeeded"
    return Invoice.objects.get(attempt=attempt)


def spend(org, amount, key="call-1"):
    credits_charge_usage_batch(organization=org, charges=[UsageCharge(
        key=key, amount=Decimal(amount), description="call", occurred_at=datetime.now(UTC))])


def balance(org):
    return CreditAccount.objects.get(organization=org).balance


# --- the simulated gateway -------------------------------------------------------------------


def charged(org, number="4242424242424242", amount="100.00"):
    """(gateway, charge reference) of a succeeded charge of `amount`."""
    gateway = SimulatedGateway()
    card = gateway.tokenize_card(number=number, exp_month=12, exp_year=YEAR + 2, cvc="123")
    result = gateway.charge(token=card.token, amount=Decimal(amount), currency="USD",
                            idempotency_key=f"charge-{number}")
    assert result.is_success
    return gateway, result.reference


@pytest.mark.django_db
def test_gateway_refunds_partly_several_times_but_never_more_than_was_charged(org):
    gateway, ref = charged(org)
    first = gateway.refund(charge_reference=ref, amount=Decimal("60.00"), currency="USD",
                           idempotency_key="r1")
    second = gateway.refund(charge_reference=ref, amount=Decimal("40.00"), currency="USD",
                            idempotency_key="r2")
    third = gateway.refund(charge_reference=ref, amount=Decimal("0.01"), currency="USD",
                           idempotency_key="r3")
    assert first.is_success and second.is_success and first.reference != second.reference
    assert not third.is_success and third.error_code == "amount_too_large"
    assert third.message  # in words


@pytest.mark.django_db
def test_gateway_refund_is_idempotent_by_key(org):
    gateway, ref = charged(org)
    first = gateway.refund(charge_reference=ref, amount=Decimal("30.00"), currency="USD",
                           idempotency_key="same")
    again = gateway.refund(charge_reference=ref, amount=Decimal("30.00"), currency="USD",
                           idempotency_key="same")
    assert again.is_success and again.replayed and again.reference == first.reference
    assert SimulatedGatewayRefund.objects.filter(status="succeeded").count() == 1


@pytest.mark.django_db
def test_gateway_refuses_to_refund_a_charge_that_did_not_succeed_or_another_currency(org):
    gateway = SimulatedGateway()
    card = gateway.tokenize_card(number="4000000000000341", exp_month=12, exp_year=YEAR + 2,
                                 cvc="123")
    declined = gateway.charge(token=card.token, amount=Decimal("50"), currency="USD",
                              idempotency_key="declined")
    result = gateway.refund(charge_reference=declined.reference, amount=Decimal("10"),
                            currency="USD", idempotency_key="r-declined")
    assert result.error_code == "charge_not_refundable"
    _gateway, ref = charged(org)
    assert gateway.refund(charge_reference=ref, amount=Decimal("10"), currency="EUR",
                          idempotency_key="r-eur").error_code == "currency_mismatch"
    assert gateway.refund(charge_reference="ch_unknown", amount=Decimal("10"), currency="USD",
                          idempotency_key="r-unknown").error_code == "charge_not_found"


@pytest.mark.django_db
def test_card_5126_charges_succeed_and_every_refund_fails(org):
    gateway, ref = charged(org, "4000000000005126")
    result = gateway.refund(charge_reference=ref, amount=Decimal("10"), currency="USD",
                            idempotency_key="r-5126")
    assert not result.is_success and result.error_code == "refund_failed"


@pytest.mark.django_db
def test_card_7726_refund_times_out_once_then_the_same_key_returns_the_success(org):
    gateway, ref = charged(org, "4000000000007726")
    with pytest.raises(GatewayTimeout):
        gateway.refund(charge_reference=ref, amount=Decimal("25"), currency="USD",
                       idempotency_key="r-7726")
    retry = gateway.refund(charge_reference=ref, amount=Decimal("25"), currency="USD",
                           idempotency_key="r-7726")
    assert retry.is_success and retry.replayed
    # Refunded once: 75 of the 100 are left to refund.
    assert gateway.refund(charge_reference=ref, amount=Decimal("75.01"), currency="USD",
                          idempotency_key="r-more").error_code == "amount_too_large"


# --- the refund service ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_refund_takes_the_unspent_remainder_writes_an_entry_and_a_credit_note(
        org, django_capture_on_commit_callbacks):
    PersonFactory(organization=org, roles=["billing_administrator"], email="billing@x.example")
    invoice = buy(org, 100)
    spend(org, "30.00")
    with django_capture_on_commit_callbacks(execute=True):
        refund = refund_request(invoice=invoice, reason="Customer left", actor=ACTOR)
    assert refund.status == "succeeded" and refund.amount == Decimal("70.00")
    assert balance(org) == Decimal("0.00")
    entry = LedgerEntry.objects.get(organization=org, kind="refund")
    assert entry.amount == Decimal("-70.00") and entry.balance_after == Decimal("0.00")
    assert entry.actor_label == "tests"
    note = CreditNote.objects.get()
    assert note.number == f"CN-{YEAR}-000001"
    assert note.invoice == invoice and note.ledger_entry == entry
    assert note.amount == Decimal("70.00") and note.reason == "Customer left"
    audit = AuditEntry.objects.get(action="credits.refund")
    assert audit.changes["credit_note"] == note.number
    assert audit.changes["balance"] == {"from": "70.00", "to": "0.00"}
    assert AuditEntry.objects.filter(action="credits.refund_requested").count() == 1
    event = DomainEvent.objects.get(name="refund_succeeded")
    assert event.payload["credit_note_number"] == note.number
    # The refund's e-mail, and the balance_zero one: the refund took the balance to 0.
    subjects = sorted(m.subject for m in mail.outbox if m.to == ["billing@x.example"])
    assert len(subjects) == 2
    [message] = [m for m in mail.outbox if "Refund made" in m.subject]
    assert f"Refund made: $70.00 of invoice {invoice.number}" in message.subject
    assert note.number in message.body and "Customer left" in message.body


@pytest.mark.django_db
def test_a_second_refund_of_a_fully_refunded_purchase_is_refused_in_words(org):
    invoice = buy(org, 100)
    refund_request(invoice=invoice, reason="first", actor=ACTOR)
    with pytest.raises(ServiceError) as info:
        refund_request(invoice=invoice, reason="again", actor=ACTOR)
    assert info.value.code == "nothing_unspent"
    assert f"Nothing of invoice {invoice.number} can be refunded" in info.value.message
    assert Refund.objects.count() == 1


@pytest.mark.django_db
def test_a_refund_above_the_remainder_is_refused_and_changes_nothing(org):
    invoice = buy(org, 100)
    spend(org, "30.00")
    with pytest.raises(ServiceError) as info:
        refund_request(invoice=invoice, amount="70.01", reason="too much", actor=ACTOR)
    assert info.value.code == "above_unspent"
    assert "At most $70.00" in info.value.message
    assert not Refund.objects.exists() and balance(org) == Decimal("70.00")


@pytest.mark.django_db
def test_a_spent_purchase_is_refused_with_a_clear_sentence(org):
    invoice = buy(org, 100)
    spend(org, "100.00")
    with pytest.raises(ServiceError) as info:
        refund_request(invoice=invoice, reason="spent", actor=ACTOR)
    assert info.value.message == (f"Nothing of invoice {invoice.number} can be refunded: its "
                                  "$100.00 of credits were all spent or refunded (the oldest "
                                  "credits are used first).")


@pytest.mark.django_db
def test_a_person_without_manage_billing_may_not_refund(org):
    invoice = buy(org, 100)
    reader = PersonFactory(organization=org, roles=["global_reader"])
    with pytest.raises(ServiceError) as info:
        refund_request(invoice=invoice, reason="no", actor=Actor(person=reader,
                                                                  label=reader.upn))
    assert info.value.code == "forbidden" and not Refund.objects.exists()


@pytest.mark.django_db
def test_the_same_request_key_refunds_once(org):
    invoice = buy(org, 100)
    first = refund_request(invoice=invoice, amount="10", reason="r", request_key="k1",
                           actor=ACTOR)
    again = refund_request(invoice=invoice, amount="10", reason="r", request_key="k1",
                           actor=ACTOR)
    assert first.pk == again.pk and balance(org) == Decimal("90.00")
    assert CreditNote.objects.count() == 1


@pytest.mark.django_db
def test_a_refund_the_gateway_refuses_changes_no_balance_and_tells_the_credit_roles(
        org, django_capture_on_commit_callbacks):
    PersonFactory(organization=org, roles=["billing_administrator"], email="b@x.example",
                  preferred_language="fr")
    invoice = buy(org, 100, "4000000000005126")
    with django_capture_on_commit_callbacks(execute=True):
        refund = refund_request(invoice=invoice, amount="40", reason="test", actor=ACTOR)
    assert refund.status == "failed" and refund.failure_code == "refund_failed"
    assert balance(org) == Decimal("100.00")
    assert not LedgerEntry.objects.filter(kind="refund").exists()
    assert not CreditNote.objects.exists()
    assert AuditEntry.objects.filter(action="credits.refund_failed").count() == 1
    [message] = mail.outbox
    assert "Échec du remboursement" in message.subject
    assert "Bonjour" in message.body and invoice.number in message.body
    # A failed refund holds nothing back: the whole 100 can still be asked for.
    with pytest.raises(ServiceError):
        refund_request(invoice=invoice, amount="100.01", reason="test", actor=ACTOR)


@pytest.mark.django_db
def test_a_timed_out_refund_stays_pending_holds_its_amount_and_the_sweep_settles_it(org):
    invoice = buy(org, 100, "4000000000007726")
    refund = refund_request(invoice=invoice, amount="60", reason="late", actor=ACTOR)
    assert refund.status == "pending" and refund.retry_at is not None
    assert balance(org) == Decimal("100.00") and not CreditNote.objects.exists()
    # The pending 60 is held back: only 40 more can be asked for meanwhile.
    with pytest.raises(ServiceError) as info:
        refund_request(invoice=invoice, amount="40.01", reason="more", actor=ACTOR)
    assert info.value.code == "above_unspent"
    assert refunds_settle_pending(now=timezone.now() + timedelta(minutes=10)) == 1
    refund.refresh_from_db()
    assert refund.status == "succeeded" and balance(org) == Decimal("40.00")
    assert CreditNote.objects.get().refund == refund
    # The gateway refunded once, under the refund's own key.
    [row] = SimulatedGatewayRefund.objects.all()
    assert row.idempotency_key == str(refund.pk) and row.tries == 2


@pytest.mark.django_db
def test_the_beat_task_settles_pending_refunds(org, monkeypatch):
    invoice = buy(org, 100, "4000000000007726")
    refund = refund_request(invoice=invoice, amount="10", reason="late", actor=ACTOR)
    Refund.objects.filter(pk=refund.pk).update(created_at=timezone.now() - timedelta(hours=1),
                                               retry_at=None)
    assert refund_sweep() == 1
    refund.refresh_from_db()
    assert refund.status == "succeeded"


@pytest.mark.django_db
def test_a_refund_never_confirmed_for_a_day_fails_as_unconfirmed(org, monkeypatch):
    invoice = buy(org, 100)

    def never(self, **kwargs):
        raise GatewayTimeout("x")

    monkeypatch.setattr(SimulatedGateway, "refund", never)
    refund = refund_request(invoice=invoice, amount="10", reason="r", actor=ACTOR)
    assert refund.status == "pending"
    refunds_settle_pending(now=timezone.now() + timedelta(hours=25))
    refund.refresh_from_db()
    assert refund.status == "failed" and refund.failure_code == "refund_unconfirmed"
    assert balance(org) == Decimal("100.00")


@pytest.mark.django_db
def test_credit_notes_have_their_own_gapless_series(org):
    first = buy(org, 100)
    second = buy(org, 50)
    refund_request(invoice=first, amount="10", reason="a", actor=ACTOR)
    refund_request(invoice=second, amount="5", reason="b", actor=ACTOR)
    numbers = sorted(CreditNote.objects.values_list("number", flat=True))
    assert numbers == [f"CN-{YEAR}-000001", f"CN-{YEAR}-000002"]
    assert sorted(Invoice.objects.values_list("number", flat=True)) == [
        f"{YEAR}-000001", f"{YEAR}-000002"]


@pytest.mark.django_db
def test_a_refund_takes_from_its_own_lot_so_the_older_lot_expires_what_it_still_holds(org):
    """Buy 100 (lot 1), buy 50 (lot 2), spend 30: lot 1 holds 70, lot 2 holds 50. Refund
    lot 2 in full: at lot 1's expiry its 70 expire (not 20), leaving 0."""
    first = buy(org, 100)
    second = buy(org, 50)
    spend(org, "30.00")
    refund = refund_request(invoice=second, reason="not needed", actor=ACTOR)
    assert refund.amount == Decimal("50.00") and balance(org) == Decimal("70.00")
    [expiry] = funds_expire(organization=org, now=first.ledger_entry.expires_at
                            + timedelta(minutes=1))
    assert expiry.amount == Decimal("-70.00") and balance(org) == Decimal("0.00")


# --- the command ------------------------------------------------------------------------------


@pytest.fixture
def keep_the_test_connection(monkeypatch):
    monkeypatch.setattr(connections, "close_all", lambda: None)


def run(capsys, *args):
    command = load_command_class(get_commands()["refund_purchase"], "refund_purchase")
    code = 0
    try:
        command.run_from_argv(["manage.py", "refund_purchase", *args])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.django_db
def test_refund_purchase_prints_the_credit_note_and_the_new_balance(
        capsys, org, keep_the_test_connection):
    invoice = buy(org, 100)
    spend(org, "30.00")
    code, out, _err = run(capsys, "--org", org.slug, "--invoice", invoice.number,
                          "--amount", "20", "--reason", "goodwill")
    assert code == 0
    assert f"credit note CN-{YEAR}-000001" in out
    assert out.strip().splitlines()[-1] == "balance: 50.00 USD"
    entry = LedgerEntry.objects.get(kind="refund")
    assert entry.actor_label == "refund_purchase command"
    # The rest (50) without --amount; then nothing is left and the command says why.
    code, out, _err = run(capsys, "--org", org.slug, "--invoice", invoice.number,
                          "--reason", "rest")
    assert code == 0 and out.strip().splitlines()[-1] == "balance: 0.00 USD"
    code, out, err = run(capsys, "--org", org.slug, "--invoice", invoice.number,
                         "--reason", "again")
    assert code == 1
    assert f"refused: Nothing of invoice {invoice.number} can be refunded" in err


@pytest.mark.django_db
def test_refund_purchase_refuses_more_than_the_remainder_and_unknown_invoices(
        capsys, org, keep_the_test_connection):
    invoice = buy(org, 100)
    spend(org, "30.00")
    code, _out, err = run(capsys, "--org", org.slug, "--invoice", invoice.number,
                          "--amount", "80", "--reason", "x")
    assert code == 1 and "At most $70.00" in err
    code, _out, err = run(capsys, "--org", org.slug, "--invoice", "1999-000001",
                          "--reason", "x")
    assert code == 2 and "no invoice" in err
    code, _out, err = run(capsys, "--org", org.slug, "--invoice", invoice.number,
                          "--amount", "abc", "--reason", "x")
    assert code == 2 and "--amount" in err
    assert balance(org) == Decimal("70.00")


@pytest.mark.django_db
def test_refund_purchase_says_when_the_gateway_refuses(capsys, org, keep_the_test_connection):
    invoice = buy(org, 100, "4000000000005126")
    code, _out, err = run(capsys, "--org", org.slug, "--invoice", invoice.number,
                          "--reason", "x")
    assert code == 1 and "refund_failed" in err
    assert balance(org) == Decimal("100.00")


@pytest.mark.django_db
def test_the_refund_notification_links_to_the_credit_note_and_reads_in_both_languages(org):
    from notifications import catalog, summaries
    from notifications.models import Notification

    invoice = buy(org, 100)
    refund_request(invoice=invoice, amount="25", reason="r", actor=ACTOR)
    note = CreditNote.objects.get()
    event = DomainEvent.objects.get(name="refund_succeeded")
    notification = Notification(organization=org, name=event.name, payload=event.payload)
    assert catalog.link_path(event.name, event.payload) == f"/billing/credit-notes/{note.pk}/"
    assert summaries.summary(notification, "en") == (
        f"$25.00 of invoice {invoice.number} was refunded to Visa •••• 4242 (credit note "
        f"{note.number}). New balance: $75.00.")
    with translation.override("fr"):
        assert f"(avoir {note.number})" in summaries.summary(notification, "fr")
