"""Demo Communications Credits for `contoso` (called by `manage.py seed_demo`): a saved
Visa 4242 card, a history of one purchase and automatic recharges over the last three
months, and auto-recharge on. Idempotent: an account with history is left as it is."""

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from .models import LedgerEntry, RechargeAttempt, RechargeKind
from .payments.base import get_gateway
from .platform.services import Actor
from .selectors.billing import payment_methods
from .services.ledger import credit_account_lock
from .services.payment_methods import payment_method_add
from .services.recharges import auto_recharge_configure, recharge_attempt_finish

DEMO_CARD = "4242424242424242"
# (days ago, kind, amount)
HISTORY = [
    (85, RechargeKind.PURCHASE, Decimal(200)),
    (61, RechargeKind.AUTO_RECHARGE, Decimal(100)),
    (38, RechargeKind.AUTO_RECHARGE, Decimal(100)),
    (12, RechargeKind.AUTO_RECHARGE, Decimal(100)),
]


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


def seed(org, out) -> None:
    actor = Actor.system("seed_demo")
    if LedgerEntry.objects.filter(organization=org).exists():
        out.write("credits: account already funded")
        return
    method = payment_methods(organization=org).filter(last4="4242").first()
    if method is None:
        year = timezone.now().year + 3
        method = payment_method_add(organization=org, number=DEMO_CARD, exp_month=12,
                                    exp_year=year, cvc="123", holder_name="Contoso Ltd",
                                    actor=actor)
    with transaction.atomic():
        account = credit_account_lock(organization=org)
    now = timezone.now()
    for days_ago, kind, amount in HISTORY:
        _fund_in_the_past(org=org, account=account, method=method, kind=kind, amount=amount,
                          at=now - timedelta(days=days_ago))
    auto_recharge_configure(organization=org, enabled=True, amount=Decimal(100),
                            trigger=Decimal(50), payment_method=method, actor=actor)
    account.refresh_from_db()
    out.write(f"credits: balance {account.balance} {account.currency}, auto-recharge on "
              f"(add 100 below 50, {method.label})")
