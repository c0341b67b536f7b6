"""Issuing invoices: one gapless number series per calendar year (`2026-000001`), taken
under a row lock in the transaction that credits the balance."""

from django.db import transaction
from django.utils import timezone

from ..models import Invoice, InvoiceSequence, LedgerEntry, RechargeAttempt

__all__ = ["invoice_number_next", "invoice_issue"]


def invoice_number_next(*, year: int) -> str:
    """The next number of `year`'s series. Must run inside the transaction that writes the
    invoice: the counter row stays locked until it commits, and a rollback returns the
    number, so the series has no gap and no duplicate."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("invoice numbers are taken inside the invoice's transaction")
    # The first invoice of a year creates its counter; a racing one finds it (no error).
    InvoiceSequence.objects.bulk_create([InvoiceSequence(year=year)], ignore_conflicts=True)
    sequence = InvoiceSequence.objects.select_for_update(of=("self",)).get(year=year)
    sequence.last += 1
    sequence.save(update_fields=["last"])
    return f"{year}-{sequence.last:06d}"


def invoice_issue(*, attempt: RechargeAttempt, entry: LedgerEntry, now) -> Invoice:
    """The invoice of a succeeded attempt whose amount `entry` credited. Called with the
    account locked, in the same transaction as the ledger entry."""
    year = timezone.localtime(now).year
    return Invoice.objects.create(
        organization_id=attempt.organization_id, number=invoice_number_next(year=year),
        attempt=attempt, ledger_entry=entry, amount=attempt.amount,
        currency=attempt.currency, card_label=attempt.payment_method.label, issued_at=now,
    )
