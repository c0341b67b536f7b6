"""Reads of refunds and credit notes: what of a purchase can be refunded, the refunds of an
invoice, the credit notes of an organization. Every function takes what it reads in."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from ..models import CreditNote, Invoice, Organization, Refund, RefundStatus
from ..money import ZERO
from .lots import lot_remainder

__all__ = [
    "RefundState",
    "invoice_refund_state",
    "invoice_refunds",
    "credit_notes",
    "credit_note_get",
    "stale_refund_ids",
]


@dataclass(frozen=True)
class RefundState:
    """What of one purchase (or auto-recharge) can be refunded now."""

    # What of the purchase's lot is neither spent, expired nor refunded (FIFO).
    unspent: Decimal
    # Refunds of it still waiting for the gateway: their amounts are held back.
    pending: Decimal
    # Refunds of it that succeeded.
    refunded: Decimal
    expired: bool

    @property
    def refundable(self) -> Decimal:
        return max(ZERO, self.unspent - self.pending)


def invoice_refund_state(*, invoice: Invoice, now=None) -> RefundState:
    """Under the account lock it is what the refund service allows; without it, what a
    page shows. Credits past their expiry date are not refundable, even before the daily
    expiry task has written them off."""
    now = now or timezone.now()
    lot = invoice.ledger_entry
    expired = lot.expires_at is not None and lot.expires_at <= now
    sums = invoice.refunds.aggregate(
        pending=Sum("amount", filter=Q(status=RefundStatus.PENDING)),
        refunded=Sum("amount", filter=Q(status=RefundStatus.SUCCEEDED)))
    unspent = ZERO if expired else lot_remainder(lot)
    return RefundState(unspent=unspent, pending=sums["pending"] or ZERO,
                       refunded=sums["refunded"] or ZERO, expired=expired)


def invoice_refunds(*, invoice: Invoice) -> QuerySet[Refund]:
    """Newest first, with their credit notes."""
    return (Refund.objects.filter(invoice=invoice).select_related("credit_note")
            .order_by("-created_at"))


def credit_notes(*, organization: Organization) -> QuerySet[CreditNote]:
    return (CreditNote.objects.filter(organization=organization)
            .select_related("invoice", "refund", "ledger_entry").order_by("-issued_at", "-id"))


def credit_note_get(*, organization: Organization, pk) -> CreditNote:
    return credit_notes(organization=organization).select_related(
        "invoice__attempt__payment_method", "organization").get(pk=pk)


def stale_refund_ids(*, older_than_seconds: int = 60, now=None) -> list:
    """Pending refunds nobody finished (the gateway gave no answer, a process died), oldest
    first, whose retry back-off is over."""
    now = now or timezone.now()
    return list(
        Refund.objects.filter(status=RefundStatus.PENDING,
                              created_at__lte=now - timedelta(seconds=older_than_seconds))
        .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
        .order_by("created_at").values_list("pk", flat=True)[:500]
    )
