"""Demo Communications Credits for `contoso` (called by `manage.py seed_demo`): a saved
Visa 4242 card, one purchase three months ago, and auto-recharge on. Idempotent: an account
with history is left as it is.

The automatic recharges of the history are not placed on fixed days: the usage step
(usage.demo) charges the demo calls in order and calls `recharge_if_crossed` after each
small batch, so a recharge happens where the balance fell below the trigger, dated just
after the call that took it there, and auto-recharge is switched on once the history is
written (`auto_recharge_enable`), so seeding never starts a live recharge."""

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from .models import CreditAccount, LedgerEntry, LedgerKind, RechargeAttempt, RechargeKind
from .payments.base import get_gateway
from .platform.services import Actor
from .recharge_rules import recharge_amount_for_gap
from .selectors.billing import payment_methods
from .services.ledger import credit_account_lock
from .services.payment_methods import payment_method_add
from .services.recharges import auto_recharge_configure, recharge_attempt_finish

DEMO_CARD = "4242424242424242"
PURCHASE_DAYS_AGO = 85
PURCHASE = Decimal(200)
RECHARGE_AMOUNT = Decimal(100)
RECHARGE_TRIGGER = Decimal(50)
# How long after the call that crossed the trigger its recharge is credited.
RECHARGE_DELAY = timedelta(seconds=30)


def _fund_in_the_past(*, org, account, method, kind, amount, at) -> None:
    """The same steps as a live recharge (attempt, gateway charge under its id, credit),
    dated in the past so the demo has a history."""
    attempt = RechargeAttempt.objects.create(
        organization=org, account=account, kind=kind, amount=amount,
        currency=account.currency, payment_method=method,
        actor_label="seed_demo" if kind == RechargeKind.PURCHASE else "auto-recharge",
        balance_before=account.balance, created_at=at,
    )
    result = get_gateway().charge(token=method.gateway_token, amount=amount,
                                  currency=account.currency, idempotency_key=str(attempt.pk))
    recharge_attempt_finish(attempt_id=attempt.pk, result=result, now=at)
    account.refresh_from_db()


def _demo_card(org):
    return payment_methods(organization=org).filter(last4="4242").first()


def seed(org, out) -> None:
    actor = Actor.system("seed_demo")
    if LedgerEntry.objects.filter(organization=org).exists():
        out.write("credits: account already funded")
        return
    method = _demo_card(org)
    if method is None:
        year = timezone.now().year + 3
        method = payment_method_add(organization=org, number=DEMO_CARD, exp_month=12,
                                    exp_year=year, cvc="123", holder_name="Contoso Ltd",
                                    actor=actor)
    with transaction.atomic():
        account = credit_account_lock(organization=org)
    _fund_in_the_past(org=org, account=account, method=method, kind=RechargeKind.PURCHASE,
                      amount=PURCHASE, at=timezone.now() - timedelta(days=PURCHASE_DAYS_AGO))
    account.refresh_from_db()
    out.write(f"credits: balance {account.balance} {account.currency} "
              f"({method.label})")


def recharge_if_crossed(org, *, since_entry_id: int) -> int:
    """When a usage entry after `since_entry_id` took the balance below the demo trigger,
    recharge as auto-recharge would have, dated just after that entry's call ended. Returns
    the id of the last entry looked at (the next call's `since_entry_id`)."""
    entries = LedgerEntry.objects.filter(organization=org, pk__gt=since_entry_id)
    last = entries.order_by("-pk").values_list("pk", flat=True).first()
    if last is None:
        return since_entry_id
    crossing = (entries.filter(kind=LedgerKind.USAGE, balance_after__lt=RECHARGE_TRIGGER)
                .order_by("pk").first())
    method = _demo_card(org)
    if crossing is None or method is None:
        return last
    account = CreditAccount.objects.get(organization=org)
    amount = recharge_amount_for_gap(balance=account.balance, trigger=RECHARGE_TRIGGER,
                                     amount=RECHARGE_AMOUNT)
    if amount > 0:
        at: datetime = crossing.occurred_at + RECHARGE_DELAY
        _fund_in_the_past(org=org, account=account, method=method,
                          kind=RechargeKind.AUTO_RECHARGE, amount=amount, at=at)
    return LedgerEntry.objects.filter(organization=org).order_by("-pk").values_list(
        "pk", flat=True).first()


def auto_recharge_enable(org, out) -> None:
    """Auto-recharge on (add 100 below 50), once the demo history is written."""
    method = _demo_card(org)
    account = CreditAccount.objects.get(organization=org)
    if method is None or account.auto_recharge_enabled:
        return
    auto_recharge_configure(organization=org, enabled=True, amount=RECHARGE_AMOUNT,
                            trigger=RECHARGE_TRIGGER, payment_method=method,
                            actor=Actor.system("seed_demo"))
    account.refresh_from_db()
    out.write(f"credits: balance {account.balance} {account.currency}, auto-recharge on "
              f"(add {RECHARGE_AMOUNT} below {RECHARGE_TRIGGER}, {method.label})")
