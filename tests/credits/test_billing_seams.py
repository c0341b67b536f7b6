"""The billing seams: the gateway's answer is checked before crediting, a purchase makes one
try in the request and the sweep settles it, events carry ids, one bad event handler cannot
hold up the others, locks stay on their own rows, one money parser."""

import html
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone, translation
from hypothesis import given, settings
from hypothesis import strategies as st

from credits import tasks
from credits.forms.billing import WholeAmountField
from credits.models import (
    DomainEvent,
    LedgerEntry,
    RechargeAttempt,
    SimulatedGatewayCard,
    SimulatedGatewayCharge,
)
from credits.money import MAX_AMOUNT, MIN_AMOUNT
from credits.payments.base import ChargeResult
from credits.payments.reasons import DECLINE_REASONS, reason_clause, reason_for
from credits.payments.simulated import SimulatedGateway
from credits.platform import events
from credits.platform.services import Actor, ServiceError
from credits.services.purchases import credits_purchase
from credits.services.recharges import MAX_DECLINES_IN_A_ROW, validate_amount
from tests.conftest import requires_postgres
from tests.factories import funded_account, saved_card

ROOT = Path(__file__).resolve().parents[2]
ACTOR = Actor.system("tests")
CC = "/billing/communications-credits/"


class WrongAmountGateway(SimulatedGateway):
    """Charges as the simulated gateway does, then reports another amount."""

    def charge(self, **kwargs):
        result = super().charge(**kwargs)
        return ChargeResult(is_success=True, amount=result.amount + 1,
                            currency=result.currency, reference=result.reference)


class WrongCurrencyGateway(SimulatedGateway):
    def charge(self, **kwargs):
        result = super().charge(**kwargs)
        return ChargeResult(is_success=True, amount=result.amount, currency="EUR",
                            reference=result.reference)


@pytest.mark.django_db
@pytest.mark.parametrize("gateway,code", [
    ("WrongAmountGateway", "amount_mismatch"),
    ("WrongCurrencyGateway", "currency_mismatch"),
])
def test_a_gateway_answer_that_does_not_match_the_attempt_is_never_credited(
        org, settings, gateway, code):
    card = saved_card(org)
    settings.PAYMENT_GATEWAY = f"{__name__}.{gateway}"
    attempt = credits_purchase(organization=org, amount=Decimal(100), payment_method=card,
                               actor=ACTOR)
    assert (attempt.status, attempt.reason_code) == ("failed", code)
    assert attempt.reason == reason_for(code)
    assert not LedgerEntry.objects.exists()
    assert not hasattr(attempt, "invoice") or attempt.invoice is None
    event = DomainEvent.objects.get(name="recharge_failed")
    assert event.payload["reason_code"] == code


@pytest.mark.django_db
@pytest.mark.parametrize("language,text", [
    ("en", "We could not confirm this payment yet. Do not pay again: we will finish it "
     "and tell you."),
    ("fr", "Nous n'avons pas encore pu confirmer ce paiement. Ne payez pas une "
     "deuxième fois : nous allons le finaliser et vous tenir informé."),
])
def test_a_pending_purchase_page_says_not_confirmed_and_not_to_pay_again(
        client, make_person, org, language, text):
    person = make_person("billing_administrator", preferred_language=language)
    client.force_login(person.user)
    card = saved_card(org, "4000000000000119")
    try:
        response = client.post(f"{CC}add-funds/confirm/", {
            "amount": "100", "payment_method": card.pk, "request_key": "k1"})
    finally:
        translation.deactivate()
    page = html.unescape(response.content.decode())
    assert response.status_code == 200
    assert text in page
    assert 'name="request_key"' not in page  # no second order offered while it settles
    assert RechargeAttempt.objects.get().status == "pending"


@pytest.mark.django_db
def test_the_sweep_settles_a_pending_purchase_under_the_same_key(org):
    card = saved_card(org, "4000000000000119")
    SimulatedGatewayCard.objects.filter(token=card.gateway_token).update(
        transient_errors_left=1)  # the first charge errors, the next one succeeds
    attempt = credits_purchase(organization=org, amount=Decimal(100), payment_method=card,
                               actor=ACTOR)
    assert attempt.status == "pending"
    past = timezone.now() - timedelta(minutes=10)
    RechargeAttempt.objects.filter(pk=attempt.pk).update(created_at=past, retry_at=past)
    tasks.auto_recharge_sweep()
    attempt.refresh_from_db()
    assert attempt.status == "succeeded"
    charge = SimulatedGatewayCharge.objects.get()
    assert (charge.idempotency_key, charge.tries) == (str(attempt.pk), 2)
    assert LedgerEntry.objects.get().amount == Decimal("100.00")


@pytest.mark.django_db
def test_add_funds_command_exits_3_and_prints_pending_when_not_confirmed(org, capsys):
    with pytest.raises(CommandError) as info:
        call_command("add_funds", "--org", org.slug, "--amount", "75",
                     "--card", "4000000000000119")
    assert info.value.returncode == 3
    assert capsys.readouterr().out.startswith("pending")


@pytest.mark.django_db
def test_success_events_carry_the_invoice_id_and_no_paths(org):
    card = saved_card(org)
    attempt = credits_purchase(organization=org, amount=Decimal(50), payment_method=card,
                               actor=ACTOR)
    payload = DomainEvent.objects.get(name="recharge_succeeded").payload
    assert payload["invoice_id"] == attempt.invoice.pk
    assert not [k for k in payload if k.endswith(("_path", "_url"))]


# --- the event sweep -----------------------------------------------------------------------


@pytest.mark.django_db
def test_an_event_whose_handler_keeps_failing_is_parked_and_later_events_still_go(
        org, monkeypatch):
    seen = []

    def broken(event):
        raise RuntimeError("handler bug")

    monkeypatch.setitem(events._handlers, "test_broken", [broken])
    monkeypatch.setitem(events._handlers, "test_fine", [seen.append])
    old = timezone.now() - timedelta(minutes=5)
    bad = events.event_emit(organization=org, name="test_broken", payload={},
                            dedupe_key="bad")
    DomainEvent.objects.filter(pk=bad.pk).update(occurred_at=old)
    for n in range(events.MAX_DISPATCH_FAILURES):
        good = events.event_emit(organization=org, name="test_fine", payload={},
                                 dedupe_key=f"good{n}")
        DomainEvent.objects.filter(pk=good.pk).update(occurred_at=old + timedelta(seconds=1))
        tasks.dispatch_pending_events()
    bad.refresh_from_db()
    assert bad.parked_at is not None and bad.dispatched_at is None
    assert bad.dispatch_failures == events.MAX_DISPATCH_FAILURES
    assert "handler bug" in bad.last_error
    assert len(seen) == events.MAX_DISPATCH_FAILURES  # every later event was dispatched
    assert bad.pk not in events.pending_event_ids()  # parked: the sweep leaves it


# --- locks ---------------------------------------------------------------------------------


def test_every_select_for_update_names_the_rows_it_locks():
    """FOR UPDATE with a join (select_related) locks the joined rows too on PostgreSQL,
    e.g. the organization: every lock says `of=`."""
    missing = []
    for app in ("credits", "usage", "notifications"):
        for path in (ROOT / app).rglob("*.py"):
            text = path.read_text()
            for match in re.finditer(r"select_for_update\(([^)]*)\)", text):
                if "of=" not in match.group(1):
                    line = text.count("\n", 0, match.start()) + 1
                    missing.append(f"{path.relative_to(ROOT)}:{line}")
    assert missing == []


# --- money and reasons ---------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.integers(min_value=-10, max_value=200_000).map(str),
    st.decimals(allow_nan=True, allow_infinity=True, places=2).map(str),
    st.text(alphabet="0123456789,. $€-+e５", max_size=14),
))
def test_the_form_and_the_service_read_an_amount_the_same_way(text):
    field = WholeAmountField(label="Amount", required=False)
    try:
        from_form = field.clean(text)
    except Exception as exc:  # noqa: BLE001
        from_form = type(exc).__name__
    try:
        from_service = validate_amount(text, field="amount", label="Amount")
    except ServiceError:
        from_service = "ValidationError"
    if from_form is None:  # blank: the form's "required" is the caller's rule
        return
    if isinstance(from_service, Decimal):
        assert from_form == from_service
        assert MIN_AMOUNT <= from_service <= MAX_AMOUNT
    else:
        assert from_form == "ValidationError"


@pytest.mark.parametrize("language", ["en", "fr"])
def test_every_decline_reason_has_words_in_each_language(language):
    with translation.override(language):
        for code in DECLINE_REASONS:
            assert reason_for(code) and reason_clause(code)
    if language == "fr":
        with translation.override("fr"):
            untranslated = [code for code, words in DECLINE_REASONS.items()
                            if str(words.sentence) == reason_for_en(code)
                            or reason_clause(code) == clause_en(code)]
        assert untranslated == []


def reason_for_en(code):
    with translation.override("en"):
        return reason_for(code)


def clause_en(code):
    with translation.override("en"):
        return reason_clause(code)


@pytest.mark.django_db
def test_the_pages_name_the_decline_limit_from_one_constant(client, make_person, org):
    client.force_login(make_person("billing_administrator").user)
    page = html.unescape(client.get(f"{CC}auto-recharge/").content.decode())
    assert f"after {MAX_DECLINES_IN_A_ROW} declines in a row" in page


# --- the PostgreSQL fast paths against their portable twins ---------------------------------


@requires_postgres
@pytest.mark.django_db
def test_existing_values_on_postgresql_match_the_portable_lookup(org):
    from credits.platform.db import existing_values_pg, existing_values_portable
    from credits.services.ledger import UsageCharge, credits_charge_usage_batch

    funded_account(org, "100.00")
    odd = ['plain', 'quote"d', "back\\slash", "comma,{brace}", "space d", "é", "NULL", ""]
    credits_charge_usage_batch(organization=org, charges=[
        UsageCharge(key=f"k:{k}", amount=Decimal("0.01"), description="",
                    occurred_at=timezone.now()) for k in odd])
    account_id = org.credit_account.pk
    wanted = [f"k:{k}" for k in odd] + ["k:missing", "other"]
    args = (LedgerEntry, "idempotency_key", wanted)
    fast = existing_values_pg(*args, scope_column="account_id", scope_id=account_id)
    portable = existing_values_portable(*args, scope_column="account_id", scope_id=account_id)
    assert fast == portable == {f"k:{k}" for k in odd}


@requires_postgres
@pytest.mark.django_db
def test_copy_rows_on_postgresql_writes_what_the_portable_insert_writes(org):
    from credits.platform.db import copy_rows_pg, copy_rows_portable
    from tests.factories import OrganizationFactory

    other = OrganizationFactory()
    columns = ("organization_id", "account_id", "kind", "amount", "balance_after",
               "idempotency_key", "description", "actor_label", "occurred_at", "created_at")
    now = timezone.now()

    def rows(o):
        account = funded_account(o, "0")
        return [(o.pk, account.pk, "usage", Decimal("-1.25"), Decimal("-1.25"), "k1",
                 'odd "text", é\\', "usage", now, now)]

    copy_rows_pg(LedgerEntry, columns, rows(org))
    copy_rows_portable(LedgerEntry, columns, rows(other))
    fields = ["kind", "amount", "balance_after", "idempotency_key", "description",
              "actor_label", "occurred_at", "created_at"]
    assert (list(LedgerEntry.objects.filter(organization=org).values(*fields))
            == list(LedgerEntry.objects.filter(organization=other).values(*fields)))
