"""Expiry of unused credits: each lot (a purchase, an automatic recharge or a credit
adjustment) expires 12 months after it came in, first in, first out against what was
spent, with a notice 30 days before."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from ..models import CreditAccount, LedgerEntry, LedgerKind, Organization
from ..models.billing import LOT_ENTRIES
from ..money import ZERO, money
from ..platform.events import event_emit
from ..platform.services import Actor, audit_record
from ..selectors.lots import lot_remainders as _lot_remainders
from .ledger import credit_account_lock, ledger_append, recharge_check_on_commit

__all__ = ["funds_expire", "funds_expiring_notify"]

EXPIRING_NOTICE_DAYS = 30


@transaction.atomic
def funds_expire(*, organization: Organization, now=None) -> list[LedgerEntry]:
    """Write an expiry entry for each lot past its 12 months that still holds money."""
    now = now or timezone.now()
    account = credit_account_lock(organization=organization)
    due = list(LedgerEntry.objects.filter(LOT_ENTRIES, account=account, expires_at__lte=now,
                                          expiry_entry__isnull=True)
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
        LOT_ENTRIES, account=account, expires_at__gt=now,
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
