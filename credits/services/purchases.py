"""One-time purchase of credits with a saved card.

The web request makes one try: a transient gateway error (or no answer) leaves the attempt
pending, and the background sweep of pending attempts charges it again under the same key.
"""

from django.db import transaction
from django.utils.translation import gettext as _

from ..models import Organization, RechargeAttempt, RechargeKind
from ..platform.services import Actor
from .ledger import credit_account_lock, ensure_may_buy
from .payment_methods import active_payment_method
from .recharges import TransientGatewayError, recharge_attempt_process, validate_amount

__all__ = ["credits_purchase"]


def credits_purchase(
    *, organization: Organization, amount, payment_method, actor, request_key: str = "",
) -> RechargeAttempt:
    """Buy credits once with a saved card, with one try of the gateway. Returns the
    attempt: succeeded (the amount is on the balance, with an invoice), failed (nothing
    changed; `reason` says why) or still pending (the gateway gave no final answer; the
    sweep settles it). Must not run inside another transaction: the gateway's charge has
    to outlive a crash of this process. Submitting the same `request_key` again buys only once."""
    actor = Actor.coerce(actor)
    with transaction.atomic(durable=True):
        account = credit_account_lock(organization=organization)
        ensure_may_buy(organization)
        amount = validate_amount(amount, field="amount", label=_("Amount"))
        method = active_payment_method(organization, payment_method)
        attempt = (account.attempts.filter(request_key=request_key).first()
                   if request_key else None)
        if attempt is None:
            attempt = RechargeAttempt.objects.create(
                organization=organization, account=account, kind=RechargeKind.PURCHASE,
                amount=amount, currency=account.currency, payment_method=method,
                request_key=request_key[:64], actor_label=actor.label[:200],
                actor=actor.person, balance_before=account.balance,
            )
    try:
        return recharge_attempt_process(attempt_id=attempt.pk)
    except TransientGatewayError:
        # Not known yet: the attempt stays pending and the sweep of pending attempts
        # charges it again under the same key; the person must not pay again.
        attempt.refresh_from_db()
        return attempt
