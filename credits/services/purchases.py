"""One-time purchase of credits with a saved card.

The web request makes one try: a transient gateway error (or no answer) leaves the attempt
pending, its own outcome: the person is told not to pay again. The same order submitted
again (its request key) replays the same attempt under the same gateway key, so it is
charged at most once, and the background sweep of pending attempts settles it as succeeded
or failed and tells the person (credits.tasks.auto_recharge_sweep).
"""

from django.db import transaction
from django.utils.translation import gettext as _

from ..models import Organization, RechargeAttempt, RechargeKind
from ..platform.services import Actor, ServiceError
from ..recharge_rules import SettingError, clean_po_number
from .ledger import credit_account_lock, ensure_may_buy
from .payment_methods import active_payment_method
from .recharges import TransientGatewayError, recharge_attempt_process, validate_amount

__all__ = ["credits_purchase"]


def credits_purchase(
    *, organization: Organization, amount, payment_method, actor, request_key: str = "",
    po_number: str = "",
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
        try:  # the buyer's PO number, printed on the invoice
            po_number = clean_po_number(po_number)
        except SettingError as error:
            raise ServiceError(error.message, field=error.field, code=error.code) from error
        attempt = (account.attempts.filter(request_key=request_key).first()
                   if request_key else None)
        if attempt is None:
            attempt = RechargeAttempt.objects.create(
                organization=organization, account=account, kind=RechargeKind.PURCHASE,
                amount=amount, currency=account.currency, payment_method=method,
                request_key=request_key[:64], actor_label=actor.label[:200],
                actor=actor.person, actor_ip=actor.ip, balance_before=account.balance,
                po_number=po_number,
            )
    try:
        return recharge_attempt_process(attempt_id=attempt.pk)
    except TransientGatewayError:
        # Not known yet: the attempt stays pending and the sweep of pending attempts
        # charges it again under the same key; the person must not pay again.
        attempt.refresh_from_db()
        return attempt
