"""Refunds: a billing administrator gives back part or all of a purchase or automatic
recharge (found by its invoice), up to what of it is unspent, with a reason.

What is unspent is the purchase's lot remainder (selectors.lots, first in, first out):
buy 100 and spend 30, and 70 can be refunded; with two purchases of 100 and 50 and 120
spent, the first is spent in full and 30 of the second can be refunded.

A refund runs in three steps, as a recharge does, so that no database lock is held while
the payment gateway is called:
1. a short transaction locks the account, checks the amount against the remainder less the
   refunds of that purchase still pending, and records a pending `Refund`: its amount is
   held back, so concurrent refunds can never together exceed the remainder;
2. the gateway refunds the purchase's charge under the refund's own id as idempotency key
   (outside any transaction);
3. a short transaction locks the account and the refund and, if it is still pending,
   records the outcome: on success one negative `refund` ledger entry, taken from that
   purchase's lot, and a credit note numbered in its own gapless series; on failure
   nothing changes on the balance. Either way the credit roles are told.
A time-out leaves the refund pending: the beat (credits.tasks.refund_sweep) asks the
gateway again under the same key, which never refunds twice. Money the gateway gave back
is recorded even if calls spent more of the balance meanwhile (as a call in progress
settles in full), so the balance may end below zero.
"""

import logging
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from ..models import Invoice, LedgerKind, Refund, RefundStatus
from ..models.refunds import REFUND_REASON_MAX_LENGTH
from ..money import CENT, MAX_AMOUNT, PLAIN_DECIMAL, THOUSANDS, money
from ..payments.base import GatewayTimeout, RefundResult, get_gateway
from ..payments.reasons import reason_for
from ..platform.events import event_emit
from ..platform.services import Actor, ServiceError, audit_record
from ..selectors.refunds import invoice_refund_state, stale_refund_ids
from ..templatetags.money import format_money
from .invoices import credit_note_issue
from .ledger import _emit_crossings, credit_account_lock, ledger_append, recharge_check_on_commit
from .recharges import UNCONFIRMED_AFTER

logger = logging.getLogger(__name__)

__all__ = [
    "parse_refund_amount",
    "refund_request",
    "refund_process",
    "refund_finish",
    "refunds_settle_pending",
]

# The largest amount one invoice can carry (an automatic recharge of whole multiples).
REFUND_MAX = MAX_AMOUNT * 10


def parse_refund_amount(value, *, label) -> Decimal:
    """An amount a person typed ("70", "12.50", "1,000"): more than zero, at most 2 decimal
    places. Raises ServiceError naming `label`."""
    if isinstance(value, float):  # money is Decimal: a float has lost cents already
        raise TypeError(f"{label}: amount must be a Decimal, not float")
    invalid = ServiceError(_("%(field)s: enter an amount such as 70 or 12.50.")
                           % {"field": label}, field="amount")
    if isinstance(value, (Decimal, int)):
        amount = Decimal(value)
    else:
        text = "".join(ch for ch in str(value or "") if not ch.isspace())
        if len(text) > 16:
            raise invalid
        if "," in text:
            if not THOUSANDS.fullmatch(text):  # "12,50" would be 12.50 to a French reader
                raise invalid
            text = text.replace(",", "")
        if not PLAIN_DECIMAL.fullmatch(text):
            raise invalid
        try:
            amount = Decimal(text)
        except InvalidOperation as exc:
            raise invalid from exc
    if not amount.is_finite() or amount > REFUND_MAX:
        raise invalid
    if amount != amount.quantize(CENT):
        raise ServiceError(_("%(field)s: use at most 2 decimal places.") % {"field": label},
                           field="amount")
    if amount <= 0:
        raise ServiceError(_("%(field)s must be more than zero.") % {"field": label},
                           field="amount")
    return money(amount)


def _clean_reason(value) -> str:
    text = " ".join(str(value or "").split())
    if not text:
        raise ServiceError(_("Reason: say why the purchase is refunded."), field="reason")
    if len(text) > REFUND_REASON_MAX_LENGTH:
        raise ServiceError(_("Reason must be at most %(max)s characters.")
                           % {"max": REFUND_REASON_MAX_LENGTH}, field="reason")
    if any(not ch.isprintable() for ch in text):
        raise ServiceError(_("Reason contains characters that cannot be printed."),
                           field="reason")
    return text


def _nothing_refundable(invoice: Invoice, state) -> ServiceError:
    """The sentence that says why nothing of this purchase can be refunded."""
    number = invoice.number
    if state.expired:
        message = _("Nothing of invoice %(number)s can be refunded: its credits expired on "
                    "%(date)s.") % {"number": number,
                                   "date": invoice.ledger_entry.expires_at.date().isoformat()}
    elif state.pending > 0 and state.unspent > 0:
        message = _("Nothing more of invoice %(number)s can be refunded now: a refund of "
                    "%(amount)s is in progress.") % {
            "number": number, "amount": format_money(state.pending, invoice.currency)}
    elif state.refunded >= invoice.amount:
        message = _("Nothing of invoice %(number)s can be refunded: it was refunded in "
                    "full.") % {"number": number}
    else:
        message = _("Nothing of invoice %(number)s can be refunded: its %(amount)s of "
                    "credits were all spent or refunded (the oldest credits are used "
                    "first).") % {"number": number,
                                  "amount": format_money(invoice.amount, invoice.currency)}
    return ServiceError(message, field="amount", code="nothing_unspent")


def _ensure_may_refund(actor: Actor) -> None:
    if actor.person is not None and not actor.person.has_perm("manage_billing"):
        raise ServiceError(_("Only a billing administrator can refund a purchase."),
                           code="forbidden")


def refund_request(
    *, invoice: Invoice, amount=None, reason: str, actor, request_key: str = "", now=None,
) -> Refund:
    """Refund `amount` of the purchase or auto-recharge of `invoice` (None: all of its
    unspent remainder) to the card it was paid with. Returns the refund: succeeded (a
    ledger entry and a credit note), failed (`failure_reason` says why; nothing changed) or
    pending (the gateway gave no answer yet; the sweep settles it). Refused with a
    ServiceError when the amount is more than can be refunded. Must not run inside another
    transaction: the gateway's refund has to outlive a crash of this process. The same
    `request_key` again refunds only once."""
    actor = Actor.coerce(actor)
    _ensure_may_refund(actor)
    reason = _clean_reason(reason)
    if amount not in (None, ""):
        amount = parse_refund_amount(amount, label=_("Amount"))
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        account = credit_account_lock(organization=invoice.organization)
        refund = (Refund.objects.filter(account=account, request_key=request_key).first()
                  if request_key else None)
        if refund is None:
            invoice = Invoice.objects.select_related("attempt", "ledger_entry").get(
                pk=invoice.pk, organization_id=account.organization_id)
            state = invoice_refund_state(invoice=invoice, now=now)
            if state.refundable <= 0:
                raise _nothing_refundable(invoice, state)
            if amount in (None, ""):
                amount = state.refundable
            if amount > state.refundable:
                raise ServiceError(
                    _("At most %(max)s of invoice %(number)s can be refunded: that is what "
                      "of it is not spent yet%(pending)s.") % {
                        "max": format_money(state.refundable, invoice.currency),
                        "number": invoice.number,
                        "pending": (_(", less the refunds in progress") if state.pending
                                    else "")},
                    field="amount", code="above_unspent")
            if not invoice.attempt.gateway_reference:
                raise ServiceError(_("This payment has no reference at the payment provider, "
                                     "so it cannot be refunded here. Contact support."),
                                   code="no_charge")
            refund = Refund.objects.create(
                organization_id=account.organization_id, account=account, invoice=invoice,
                amount=amount, currency=account.currency, reason=reason,
                request_key=request_key[:64], actor=actor.person,
                actor_label=actor.label[:200], created_at=now,
            )
            audit_record(organization=invoice.organization, actor=actor,
                         action="credits.refund_requested", target=refund,
                         changes={"invoice": invoice.number, "amount": str(amount),
                                  "reason": reason, "unspent": str(state.unspent)})
    return refund_process(refund_id=refund.pk)


def refund_process(*, refund_id, now=None) -> Refund:
    """Ask the gateway to refund under the refund's id and record the answer (idempotent:
    a finished refund is returned as it is; a pending one is asked again under the same
    key). After a time-out the refund stays pending with a back-off, until
    UNCONFIRMED_AFTER from its request: then it fails as `refund_unconfirmed`."""
    now = now or timezone.now()
    refund = Refund.objects.select_related("invoice__attempt").get(pk=refund_id)
    if refund.status != RefundStatus.PENDING:
        return refund
    try:
        result = get_gateway().refund(
            charge_reference=refund.invoice.attempt.gateway_reference, amount=refund.amount,
            currency=refund.currency, idempotency_key=str(refund.pk))
    except GatewayTimeout:
        if now < refund.created_at + UNCONFIRMED_AFTER:
            return _note_timeout(refund_id=refund.pk, now=now)
        logger.error("gateway never confirmed refund %s; failed as unconfirmed", refund_id)
        result = RefundResult(False, amount=refund.amount, currency=refund.currency,
                              error_code="refund_unconfirmed")
    return refund_finish(refund_id=refund.pk, result=result, now=now)


@transaction.atomic
def _note_timeout(*, refund_id, now) -> Refund:
    refund = Refund.objects.select_for_update(of=("self",), no_key=True).get(pk=refund_id)
    if refund.status == RefundStatus.PENDING:
        refund.gateway_tries += 1
        refund.retry_at = now + timedelta(seconds=min(300, 2 ** refund.gateway_tries))
        refund.save(update_fields=["gateway_tries", "retry_at"])
    logger.warning("gateway gave no answer for refund %s; left pending", refund_id)
    return refund


def refund_finish(*, refund_id, result: RefundResult, now=None) -> Refund:
    """Record the gateway's answer for a pending refund (a finished one is returned as it
    is): a success takes the amount from the balance and issues a credit note."""
    now = now or timezone.now()
    with transaction.atomic():
        refund = Refund.objects.select_related("account__organization").get(pk=refund_id)
        account = credit_account_lock(organization=refund.account.organization)
        refund = (Refund.objects.select_for_update(of=("self",), no_key=True)
                  .select_related("invoice__attempt__payment_method", "actor")
                  .get(pk=refund_id))
        if refund.status != RefundStatus.PENDING:
            return refund  # finished by another run: recorded exactly once
        refund.gateway_tries += 1
        refund.gateway_reference = result.reference or ""
        refund.completed_at = now
        refund.retry_at = None
        code = result.error_code
        if result.is_success and (Decimal(result.amount) != refund.amount
                                  or result.currency.upper() != refund.currency.upper()):
            logger.error("gateway confirmed %s %s for refund %s of %s %s", result.amount,
                         result.currency, refund.pk, refund.amount, refund.currency)
            code = "amount_mismatch"
        if result.is_success and not code:
            _refund_succeeded(account=account, refund=refund, now=now)
        else:
            _refund_failed(account=account, refund=refund, code=code or "refund_failed")
        return refund


def _actor(refund: Refund) -> Actor:
    return Actor(person=refund.actor, label=refund.actor_label or "refund")


def _refund_succeeded(*, account, refund: Refund, now) -> None:
    org = account.organization
    invoice = refund.invoice
    before = account.balance
    with translation.override("en"):
        description = _("Refund of invoice %(number)s: %(reason)s") % {
            "number": invoice.number, "reason": refund.reason}
    entry = ledger_append(account=account, kind=LedgerKind.REFUND, amount=-refund.amount,
                          key=f"refund:{refund.pk}", description=str(description),
                          actor=_actor(refund), now=now)
    refund.status = RefundStatus.SUCCEEDED
    refund.save()
    note = credit_note_issue(refund=refund, entry=entry, now=now)
    card = invoice.attempt.payment_method.label
    audit_record(organization=org, actor=_actor(refund), action="credits.refund", target=entry,
                 changes={"amount": str(refund.amount), "invoice": invoice.number,
                          "credit_note": note.number, "reason": refund.reason, "card": card,
                          "refund": str(refund.pk),
                          "balance": {"from": str(before), "to": str(account.balance)}})
    _emit_crossings(account=account, before=before, entries=[entry])
    recharge_check_on_commit(account)
    event_emit(
        organization=org, name="refund_succeeded",
        payload={"amount": str(money(refund.amount)), "balance": str(money(account.balance)),
                 "currency": account.currency, "card": card, "invoice_id": invoice.pk,
                 "invoice_number": invoice.number, "credit_note_id": note.pk,
                 "credit_note_number": note.number, "refund_reason": refund.reason},
        dedupe_key=f"refund_succeeded:{refund.pk}",
    )


def _refund_failed(*, account, refund: Refund, code: str) -> None:
    org = account.organization
    invoice = refund.invoice
    refund.status = RefundStatus.FAILED
    refund.failure_code = code[:32]
    with translation.override("en"):
        refund.failure_reason = reason_for(code)[:200]
    refund.save()
    card = invoice.attempt.payment_method.label
    audit_record(organization=org, actor=_actor(refund), action="credits.refund_failed",
                 target=refund,
                 changes={"amount": str(refund.amount), "invoice": invoice.number,
                          "reason_code": refund.failure_code, "card": card})
    event_emit(
        organization=org, name="refund_failed",
        payload={"amount": str(money(refund.amount)), "balance": str(money(account.balance)),
                 "currency": refund.currency, "card": card, "invoice_id": invoice.pk,
                 "invoice_number": invoice.number, "reason_code": refund.failure_code,
                 "refund_reason": refund.reason},
        dedupe_key=f"refund_failed:{refund.pk}",
    )


def refunds_settle_pending(*, now=None) -> int:
    """The beat's sweep: ask the gateway again, under each refund's own key, about the
    refunds it left without an answer. One refund's error does not stop the others."""
    now = now or timezone.now()
    done = 0
    for refund_id in stale_refund_ids(now=now):
        try:
            refund_process(refund_id=refund_id, now=now)
        except Exception:
            logger.exception("refund sweep failed for refund %s", refund_id)
        done += 1
    return done
