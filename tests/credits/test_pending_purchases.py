"""Unconfirmed payments are their own outcome (issue 15): test card 4000 0000 0000 6975 gives
no answer for 2 minutes. The purchase is pending (not declined), its page says not to pay
again, the same order sent again replays its key, the sweep settles it as succeeded or
failed, and the person who ordered it and the credit roles are told, in their language."""

import html
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone, translation

from credits import tasks
from credits.models import (
    CreditAccount,
    DomainEvent,
    Invoice,
    LedgerEntry,
    RechargeAttempt,
    SimulatedGatewayCharge,
)
from credits.payments.base import GatewayTimeout
from credits.payments.simulated import SimulatedGateway
from credits.platform.services import Actor
from credits.services.purchases import credits_purchase
from credits.services.recharges import UNCONFIRMED_AFTER, recharge_attempt_give_up
from notifications import formatting, summaries
from notifications.models import Notification
from notifications.services import event_routing_set
from tests.conftest import requires_postgres
from tests.factories import OrganizationFactory, PersonFactory, saved_card

CC = "/billing/communications-credits/"
PENDING = "4000000000006975"
PENDING_EN = ("We could not confirm this payment yet. Do not pay again: we will finish it and "
              "tell you.")
PENDING_FR = ("Nous n'avons pas encore pu confirmer ce paiement. Ne payez pas une deuxième fois "
              ": nous allons le finaliser et vous tenir informé.")


@contextmanager
def at(moment):
    """Move the clock of the gateway, the sweep and the services to `moment`."""
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


class NeverAnswers(SimulatedGateway):
    """A gateway that never answers, about a charge or its status."""

    def charge(self, **kwargs):
        raise GatewayTimeout(kwargs["idempotency_key"])

    def charge_status(self, **kwargs):
        raise GatewayTimeout(kwargs["idempotency_key"])


@pytest.fixture
def french_admin(make_person):
    return make_person("billing_administrator", display_name="Zoé Achats",
                       preferred_language="fr")


@pytest.fixture
def reset_language():
    yield
    translation.deactivate()  # the middleware activated the person's language


def as_actor(person):
    return Actor(person=person, label=person.upn)


def place_order(client, card, key="order-1", amount="50"):
    response = client.post(f"{CC}add-funds/confirm/", {
        "amount": amount, "payment_method": card.pk, "request_key": key})
    return response, html.unescape(response.content.decode())


def sweep(capture):
    """One beat of the sweep, running what it enqueues (events, e-mails) as a worker would."""
    with capture(execute=True):
        tasks.auto_recharge_sweep()


def only_purchase(org):
    attempts = list(RechargeAttempt.objects.filter(organization=org))
    assert len(attempts) == 1
    return attempts[0]


# --- the page ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("language,text", [("en", PENDING_EN), ("fr", PENDING_FR)])
def test_a_purchase_the_gateway_does_not_confirm_has_its_own_page_state(
        client, make_person, org, language, text, reset_language):
    person = make_person("billing_administrator", preferred_language=language)
    client.force_login(person.user)
    card = saved_card(org, PENDING)
    response, page = place_order(client, card)
    assert response.status_code == 200
    assert text in page
    assert 'data-testid="purchase-pending"' in page
    assert "declined" not in page and "refusé" not in page
    assert 'name="request_key"' not in page  # no second order offered
    attempt = only_purchase(org)
    assert attempt.status == "pending"
    assert str(attempt.pk) in page  # its reference
    assert not LedgerEntry.objects.filter(kind="purchase").exists()
    assert SimulatedGatewayCharge.objects.get().status == "pending"


@pytest.mark.django_db
def test_sending_the_same_order_again_replays_its_key_and_never_charges_twice(
        client, french_admin, org, reset_language):
    client.force_login(french_admin.user)
    card = saved_card(org, PENDING)
    start = timezone.now()
    with at(start):
        place_order(client, card)
    for seconds in (5, 90):  # a refresh, then back and submit: still not confirmed
        with at(start + timedelta(seconds=seconds)):
            response, page = place_order(client, card)
        assert response.status_code == 200 and PENDING_FR in page
    attempt = only_purchase(org)
    assert attempt.status == "pending"
    charge = SimulatedGatewayCharge.objects.get()
    assert (charge.idempotency_key, charge.tries) == (str(attempt.pk), 1)
    # Once the gateway confirms, the same order lands on its invoice, once.
    with at(start + timedelta(minutes=3)):
        response, _page = place_order(client, card)
        again, _page = place_order(client, card)
    attempt.refresh_from_db()
    assert attempt.status == "succeeded"
    invoice = Invoice.objects.get()
    assert response.status_code == again.status_code == 302
    assert response["Location"] == again["Location"] == reverse("billing_invoice",
                                                                args=[invoice.pk])
    assert LedgerEntry.objects.get(kind="purchase").amount == Decimal("50.00")
    assert CreditAccount.objects.get(organization=org).balance == Decimal("50.00")
    assert SimulatedGatewayCharge.objects.get().tries == 1


@pytest.mark.django_db
def test_back_from_the_confirmation_keeps_the_orders_key(client, french_admin, org,
                                                        reset_language):
    client.force_login(french_admin.user)
    card = saved_card(org, PENDING)
    response = client.post(f"{CC}add-funds/confirm/", {
        "amount": "50", "payment_method": card.pk, "request_key": "order-1", "back": "1"})
    assert 'value="order-1"' in response.content.decode()


@pytest.mark.django_db
def test_while_a_purchase_is_unconfirmed_the_page_offers_no_new_order(
        client, make_person, org, reset_language):
    person = make_person("billing_administrator")
    client.force_login(person.user)
    card = saved_card(org, PENDING)
    start = timezone.now()
    with at(start):
        place_order(client, card, key="first")
        page = html.unescape(client.get(f"{CC}add-funds/").content.decode())
        assert PENDING_EN in page and 'name="request_key"' not in page
        # An order from a tab opened before: not charged, the pending state instead.
        response, page = place_order(client, card, key="second", amount="70")
    assert response.status_code == 200 and PENDING_EN in page
    assert only_purchase(org).request_key == "first"
    assert SimulatedGatewayCharge.objects.count() == 1
    with at(start + timedelta(minutes=3)):
        tasks.auto_recharge_sweep()
        page = client.get(f"{CC}add-funds/").content.decode()
    assert 'name="request_key"' in page and "purchase-pending" not in page


# --- the sweep settles it, and tells ----------------------------------------------------------


@pytest.mark.django_db
def test_the_sweep_credits_what_the_gateway_confirms_and_tells_the_requester_in_french(
        client, french_admin, admin_person, org, django_capture_on_commit_callbacks,
        reset_language):
    # The organization e-mails only Global Administrators about recharges: the person who
    # ordered (a Billing Administrator) is told all the same.
    event_routing_set(organization=org, actor=Actor.system("tests"), routing={
        "recharge_succeeded": ["global_administrator"],
        "recharge_failed": ["global_administrator"]})
    client.force_login(french_admin.user)
    card = saved_card(org, PENDING)
    start = timezone.now()
    with at(start):
        place_order(client, card)
    translation.deactivate()
    with at(start + timedelta(seconds=100)):
        sweep(django_capture_on_commit_callbacks)  # not stale yet, and still no answer
    assert only_purchase(org).status == "pending"
    assert mail.outbox == []
    with at(start + timedelta(minutes=3)):
        sweep(django_capture_on_commit_callbacks)
        sweep(django_capture_on_commit_callbacks)  # a second beat changes nothing
    attempt = only_purchase(org)
    assert attempt.status == "succeeded"
    assert Invoice.objects.filter(attempt=attempt).count() == 1
    assert LedgerEntry.objects.filter(kind="purchase").count() == 1
    event = DomainEvent.objects.get(name="recharge_succeeded")
    assert event.payload["was_pending"] is True
    assert event.payload["requester_person_id"] == french_admin.pk
    by_address = {m.to[0]: m for m in mail.outbox}
    assert sorted(by_address) == sorted([french_admin.email, admin_person.email])
    amount_fr = formatting.money("50.00", "USD", "fr")
    french = by_address[french_admin.email]
    subject_amount = " ".join(amount_fr.split())  # subjects are one line of plain spaces
    assert french.subject.endswith(f"Paiement en attente confirmé : {subject_amount}")
    assert f"Votre paiement en attente de {amount_fr} a été confirmé." in french.body
    assert "vous avez passé cette commande" in french.body
    english = by_address[admin_person.email]
    assert "Your pending payment of $50.00 was confirmed." in english.body
    assert english.subject.endswith("Pending payment confirmed: $50.00")
    # The message center says it too, in the reader's language.
    notification = Notification.objects.get(name="recharge_succeeded")
    assert summaries.summary(notification, "en").startswith(
        "Your pending payment of $50.00 with Visa")
    with translation.override("fr"):
        assert summaries.summary(notification, "fr").startswith(
            f"Votre paiement en attente de {amount_fr} avec Visa")
    client.force_login(french_admin.user)
    page = html.unescape(client.get("/notifications/").content.decode())
    assert f"Votre paiement en attente de {amount_fr} avec Visa" in page


@pytest.mark.django_db
def test_a_purchase_that_did_not_go_through_fails_and_says_nothing_was_charged(
        french_admin, org, django_capture_on_commit_callbacks):
    card = saved_card(org, "4000000000000119")  # every charge: processing_error
    with django_capture_on_commit_callbacks(execute=True):
        attempt = credits_purchase(organization=org, amount=Decimal(100), payment_method=card,
                                   actor=as_actor(french_admin), request_key="k")
    assert attempt.status == "pending"
    assert mail.outbox == []
    with at(timezone.now() + timedelta(minutes=3)):
        sweep(django_capture_on_commit_callbacks)  # retries, then asks, then gives up
    attempt.refresh_from_db()
    assert (attempt.status, attempt.reason_code) == ("failed", "processing_error")
    assert not LedgerEntry.objects.filter(kind="purchase").exists()
    french = next(m for m in mail.outbox if m.to == [french_admin.email])
    amount_fr = formatting.money("100.00", "USD", "fr")
    assert "Votre paiement en attente n'a pas pu aboutir" in french.subject
    assert f"Votre paiement en attente de {amount_fr} avec Visa •••• 0119 n'a pas pu aboutir" \
        in french.body
    assert "rien n'a été débité" in french.body
    notification = Notification.objects.get(name="recharge_failed")
    assert summaries.summary(notification, "en") == (
        "Your pending payment of $100.00 with Visa •••• 0119 could not be completed: the "
        "payment could not be processed. Nothing was charged.")


@pytest.mark.django_db
def test_a_gateway_that_never_answers_fails_the_purchase_after_a_day_not_before(
        settings, org, make_person, django_capture_on_commit_callbacks):
    requester = make_person("global_reader", display_name="Rae Reader")  # no credit alerts
    admin = make_person("global_administrator", display_name="Ada Admin")
    card = saved_card(org)
    settings.PAYMENT_GATEWAY = f"{__name__}.NeverAnswers"
    attempt = credits_purchase(organization=org, amount=Decimal(50), payment_method=card,
                               actor=as_actor(requester), request_key="k")
    assert attempt.status == "pending"
    start = attempt.created_at
    with at(start + UNCONFIRMED_AFTER - timedelta(minutes=1)):
        sweep(django_capture_on_commit_callbacks)
        assert recharge_attempt_give_up(attempt_id=attempt.pk).status == "pending"
    assert mail.outbox == []
    with at(start + UNCONFIRMED_AFTER + timedelta(minutes=5)):  # the next beat, back-off over
        sweep(django_capture_on_commit_callbacks)
    attempt.refresh_from_db()
    assert (attempt.status, attempt.reason_code) == ("failed", "unconfirmed")
    assert attempt.reason.startswith("The payment provider never confirmed the payment")
    assert sorted(m.to[0] for m in mail.outbox) == sorted([requester.email, admin.email])
    body = mail.outbox[0].body
    assert "Your pending payment of $50.00" in body
    assert "was never confirmed by the payment provider" in body
    assert not LedgerEntry.objects.filter(kind="purchase").exists()


@pytest.mark.django_db
def test_what_the_gateway_confirms_is_credited_even_after_the_deadline(org):
    card = saved_card(org, PENDING)
    attempt = credits_purchase(organization=org, amount=Decimal(50), payment_method=card,
                               actor=Actor.system("tests"), request_key="k")
    assert attempt.status == "pending"
    with at(attempt.created_at + UNCONFIRMED_AFTER + timedelta(hours=1)):
        assert recharge_attempt_give_up(attempt_id=attempt.pk).status == "succeeded"
    assert LedgerEntry.objects.get(kind="purchase").amount == Decimal("50.00")


@pytest.mark.django_db
def test_a_purchase_settled_at_once_emails_only_the_credit_roles(
        org, make_person, django_capture_on_commit_callbacks):
    requester = make_person("global_reader")
    admin = make_person("global_administrator")
    card = saved_card(org)
    with django_capture_on_commit_callbacks(execute=True):
        credits_purchase(organization=org, amount=Decimal(50), payment_method=card,
                         actor=as_actor(requester), request_key="k")
    assert "was_pending" not in DomainEvent.objects.get(name="recharge_succeeded").payload
    assert [m.to[0] for m in mail.outbox] == [admin.email]
    assert "pending" not in mail.outbox[0].body


# --- the add_funds command (DESIGN.md section 8) -------------------------------------------


@pytest.mark.django_db
def test_add_funds_exit_codes_and_what_they_print(org, capsys):
    call_command("add_funds", "--org", org.slug, "--amount", "75", "--card", "4242424242424242")
    lines = capsys.readouterr().out.strip().splitlines()
    number = Invoice.objects.get().number
    assert f"invoice {number}" in lines
    assert lines[-1] == "balance: 75.00 USD"

    with pytest.raises(CommandError) as declined:
        call_command("add_funds", "--org", org.slug, "--amount", "50",
                     "--card", "4000000000000341")
    assert declined.value.returncode == 1
    assert "The bank declined the card." in str(declined.value)

    with pytest.raises(CommandError) as pending:
        call_command("add_funds", "--org", org.slug, "--amount", "60", "--card", PENDING)
    assert pending.value.returncode == 3
    attempt = RechargeAttempt.objects.get(status="pending")
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"pending {attempt.pk}"
    assert "do not pay again" in out
    assert CreditAccount.objects.get(organization=org).balance == Decimal("75.00")

    # After the gateway's 2 minutes, the sweep settles it: credited once, one invoice.
    with at(timezone.now() + timedelta(minutes=3)):
        tasks.auto_recharge_sweep()
        tasks.auto_recharge_sweep()
    attempt.refresh_from_db()
    assert attempt.status == "succeeded"
    assert Invoice.objects.filter(attempt=attempt).count() == 1
    assert Invoice.objects.count() == 2
    assert LedgerEntry.objects.filter(recharge_attempt=attempt).count() == 1
    assert CreditAccount.objects.get(organization=org).balance == Decimal("135.00")
    assert SimulatedGatewayCharge.objects.get(idempotency_key=str(attempt.pk)).tries == 1


# --- the race (PostgreSQL) ---------------------------------------------------------------------


class SlowAnswer(SimulatedGateway):
    """Answers a little late, so that the two settlers meet at the ledger."""

    def charge(self, **kwargs):
        result = super().charge(**kwargs)
        time.sleep(0.05)
        return result


def race(*targets):
    """Run the targets in threads that start together; raise what any of them raised."""
    from django.db import connection

    errors = []
    barrier = threading.Barrier(len(targets))

    def wrap(fn):
        def run():
            try:
                barrier.wait(30)
                fn()
            except Exception as exc:  # surfaced by the assertion below
                errors.append(exc)
            finally:
                connection.close()
        return threading.Thread(target=run)

    threads = [wrap(fn) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_a_pending_purchase_sent_again_while_the_sweep_settles_it_is_charged_once(settings):
    settings.PAYMENT_GATEWAY = f"{__name__}.SlowAnswer"
    for round_ in range(4):
        org = OrganizationFactory()
        person = PersonFactory(organization=org, roles=["billing_administrator"])
        card = saved_card(org, PENDING)

        def resubmit(org=org, card=card, person=person):
            credits_purchase(organization=org, amount=Decimal(50), payment_method=card,
                             actor=as_actor(person), request_key="order")

        resubmit()
        attempt = RechargeAttempt.objects.get(organization=org)
        assert attempt.status == "pending"
        with at(timezone.now() + timedelta(minutes=3)):
            race(resubmit, tasks.auto_recharge_sweep)
        attempt.refresh_from_db()
        assert attempt.status == "succeeded", round_
        assert LedgerEntry.objects.filter(organization=org, kind="purchase").count() == 1
        assert Invoice.objects.filter(organization=org).count() == 1
        charge = SimulatedGatewayCharge.objects.get(idempotency_key=str(attempt.pk))
        assert (charge.status, charge.tries) == ("succeeded", 1)
        assert CreditAccount.objects.get(organization=org).balance == Decimal("50.00")
        assert DomainEvent.objects.filter(organization=org,
                                          name="recharge_succeeded").count() == 1
    assert SimulatedGatewayCharge.objects.count() == 4
