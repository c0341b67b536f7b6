"""Issuing invoices and credit notes: each has one gapless number series per calendar year
(`2026-000001`, `CN-2026-000001`), taken under a row lock in the transaction that writes
the ledger entry."""

from django.db import transaction
from django.utils import timezone

from ..models import (
    CreditNote,
    CreditNoteSequence,
    Invoice,
    InvoiceSequence,
    LedgerEntry,
    RechargeAttempt,
    Refund,
)

__all__ = ["invoice_number_next", "invoice_issue", "credit_note_number_next",
           "credit_note_issue"]


def invoice_number_next(*, year: int) -> str:
    """The next number of `year`'s series. Must run inside the transaction that writes the
    invoice: the counter row stays locked until it commits, and a rollback returns the
    number, so the series has no gap and no duplicate."""
    return f"{year}-{_series_next(InvoiceSequence, year):06d}"


def _series_next(model, year: int) -> int:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("document numbers are taken inside the document's transaction")
    # The first document of a year creates its counter; a racing one finds it (no error).
    model.objects.bulk_create([model(year=year)], ignore_conflicts=True)
    sequence = model.objects.select_for_update(of=("self",)).get(year=year)
    sequence.last += 1
    sequence.save(update_fields=["last"])
    return sequence.last


def invoice_issue(*, attempt: RechargeAttempt, entry: LedgerEntry, now) -> Invoice:
    """The invoice of a succeeded attempt whose amount `entry` credited. Called with the
    account locked, in the same transaction as the ledger entry."""
    year = timezone.localtime(now).year
    return Invoice.objects.create(
        organization_id=attempt.organization_id, number=invoice_number_next(year=year),
        attempt=attempt, ledger_entry=entry, amount=attempt.amount,
        currency=attempt.currency, card_label=attempt.payment_method.label, issued_at=now,
    )


def credit_note_number_next(*, year: int) -> str:
    """The next number of `year`'s credit-note series, a series of its own, taken like an
    invoice number (inside the credit note's transaction: gapless, no duplicate)."""
    return f"CN-{year}-{_series_next(CreditNoteSequence, year):06d}"


def credit_note_issue(*, refund: Refund, entry: LedgerEntry, now) -> CreditNote:
    """The credit note of a succeeded refund whose amount `entry` took from the balance.
    Called with the account locked, in the same transaction as the ledger entry."""
    year = timezone.localtime(now).year
    return CreditNote.objects.create(
        organization_id=refund.organization_id, number=credit_note_number_next(year=year),
        refund=refund, invoice_id=refund.invoice_id, ledger_entry=entry,
        amount=refund.amount, currency=refund.currency, reason=refund.reason, issued_at=now,
    )
