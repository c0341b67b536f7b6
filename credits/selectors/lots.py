"""The lots of the expiry rule (DESIGN.md section 4): what of each purchase, automatic
recharge or credit adjustment is still unspent, first in, first out, from the totals.

Two kinds of entries take money from a lot by name: an expiry (its `expired_lot`) and a
refund (the lot of the invoice its credit note corrects). Every other negative entry
(usage, debit adjustments) is consumption, taken from the oldest lots first. So lot i keeps
what the lots up to i brought in, less what was taken from them by name, less what was
consumed, within what lot i itself still holds.
"""

from collections import defaultdict
from decimal import Decimal

from django.db.models import Sum

from ..models import CreditAccount, LedgerEntry, LedgerKind
from ..models.billing import LOT_ENTRIES
from ..money import ZERO, money

__all__ = ["lot_remainders", "lot_remainder"]


def _taken_by_name(entries) -> dict[int, Decimal]:
    taken: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for lot_id, amount in entries.filter(kind=LedgerKind.EXPIRY).values_list(
            "expired_lot_id", "amount"):
        taken[lot_id] += -amount
    for lot_id, amount in entries.filter(kind=LedgerKind.REFUND, credit_note__isnull=False) \
            .values_list("credit_note__invoice__ledger_entry_id", "amount"):
        taken[lot_id] += -amount
    return taken


def lot_remainders(account: CreditAccount, lots, *, at_each_expiry: bool):
    """[(lot, remainder)] for the wanted `lots`, in the order they came in. A credit
    adjustment is a lot like a purchase: counted as negative consumption instead, it would
    hide spend from the older lots and let them expire whole. With `at_each_expiry`,
    consumption is counted up to the lot's own expiry instant."""
    entries = LedgerEntry.objects.filter(account=account)
    consumers = (entries.filter(amount__lt=0).exclude(kind=LedgerKind.EXPIRY)
                 .exclude(kind=LedgerKind.REFUND, credit_note__isnull=False))
    taken = _taken_by_name(entries)
    all_lots = list(entries.filter(LOT_ENTRIES).order_by("created_at", "id"))
    wanted = {lot.pk for lot in lots}
    cumulative = ZERO
    results = []
    for lot in all_lots:
        kept = lot.amount - taken.get(lot.pk, ZERO)
        cumulative += kept
        if lot.pk in wanted:
            qs = consumers
            if at_each_expiry:
                qs = qs.filter(created_at__lte=lot.expires_at)
            consumed = -(qs.aggregate(s=Sum("amount"))["s"] or ZERO)
            remainder = max(ZERO, min(kept, cumulative - consumed))
            results.append((lot, money(remainder)))
    return results


def lot_remainder(lot: LedgerEntry) -> Decimal:
    """What of one lot is unspent now (expiry dates aside: see the callers)."""
    ((_lot, remainder),) = lot_remainders(lot.account, [lot], at_each_expiry=False)
    return remainder
