"""Expiry of unused credits: each purchased lot expires 12 months after it was bought
(FIFO against usage), with a notice 30 days before."""

from datetime import timedelta

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from ..models import CreditAccount, LedgerEntry, LedgerKind, Organization
from ..models.billing import LOT_KINDS
from ..money import ZERO, money
from ..platform.events import event_emit
from ..platform.services import Actor, audit_record
from .ledger import credit_account_lock, ledger_append, recharge_check_on_commit

__all__ = ["funds_expire", "funds_expiring_notify"]

EXPIRING_NOTICE_DAYS = 30


def _lot_remainders(account: CreditAccount, lots, *, at_each_expiry: bool):
    """FIFO from totals: lot i keeps what the cumulative purchases up to i hold beyond
    what usage (and earlier expiries) consumed. With `at_each_expiry`, consumption is
    counted up to the lot's own expiry instant."""
    consumers = LedgerEntry.objects.filter(account=account).exclude(kind__in=LOT_KINDS)
    expired_before = {
        e.expired_lot_id: -e.amount
        for e in LedgerEntry.objects.filter(account=account, kind=LedgerKind.EXPIRY)
    }
    all_lots = list(LedgerEntry.objects.filter(account=account, kind__in=LOT_KINDS)
                    .order_by("created_at", "id"))
    cumulative = ZERO
    expired_sum = ZERO
    wanted = {lot.pk for lot in lots}
    results = []
    for lot in all_lots:
        cumulative += lot.amount
        if lot.pk in wanted:
            qs = consumers.exclude(kind=LedgerKind.EXPIRY)
            if at_each_expiry:
                qs = qs.filter(Q(created_at__lte=lot.expires_at))
            consumed = -(qs.aggregate(s=Sum("amount"))["s"] or ZERO)
            consumed = max(consumed, ZERO)
            remainder = cumulative - consumed - expired_sum
            remainder = max(ZERO, min(lot.amount, remainder))
            results.append((lot, money(remainder)))
        expired_sum += expired_before.get(lot.pk, ZERO)
    return results


@transaction.atomic
def funds_expire(*, organization: Organization, now=None) -> list[LedgerEntry]:
    """Write an expiry entry for each lot past its 12 months that still holds money."""
    now = now or timezone.now()
    account = credit_account_lock(organization=organization)
    due = list(LedgerEntry.objects.filter(account=account, kind__in=LOT_KINDS,
                                          expires_at__lte=now, expiry_entry__isnull=True)
               .order_by("created_at", "id"))
    written = []
    actor = Actor.system("expiry")
    for lot in due:
        # Recomputed per lot: an expiry just written drains the lots before the next one.
        ((_lot, remainder),) = _lot_remainders(account, [lot], at_each_expiry=True)
        remainder = min(remainder, max(account.balance, ZERO))
        if remainder <= 0:
            continue
        with translation.override("en"):
            description = _("Unused credits of %(date)s expired") % {
                "date": lot.created_at.date().isoformat()}
        entry = ledger_append(account=account, kind=LedgerKind.EXPIRY, amount=-remainder,
                        key=f"expiry:{lot.pk}", description=str(description), actor=actor,
                        expired_lot=lot, now=now)
        written.append(entry)
        audit_record(organization=organization, actor=actor, action="credits.expiry",
                     target=entry, changes={"lot": lot.pk, "amount": str(remainder)})
    if written:
        recharge_check_on_commit(account)
    return written


@transaction.atomic
def funds_expiring_notify(*, organization: Organization, now=None) -> int:
    """funds_expiring once per lot that expires within 30 days and still holds money."""
    now = now or timezone.now()
    account = CreditAccount.objects.filter(organization=organization).first()
    if account is None:
        return 0
    lots = list(LedgerEntry.objects.filter(
        account=account, kind__in=LOT_KINDS, expires_at__gt=now,
        expires_at__lte=now + timedelta(days=EXPIRING_NOTICE_DAYS)).order_by("created_at", "id"))
    if not lots:
        return 0
    count = 0
    for lot, remainder in _lot_remainders(account, lots, at_each_expiry=False):
        remainder = min(remainder, max(account.balance, ZERO))
        if remainder <= 0:
            continue
        event = event_emit(
            organization=organization, name="funds_expiring",
            payload={"amount": str(money(remainder)), "currency": account.currency,
                     "expires_on": lot.expires_at.date().isoformat(),
                     "purchase_entry_id": str(lot.pk)},
            dedupe_key=f"funds_expiring:{lot.pk}",
        )
        count += event is not None
    return count
