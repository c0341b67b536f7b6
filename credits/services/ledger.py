"""The ledger of the prepaid credit account: the account lock, appending entries, usage
charges, adjustments, balance crossings (zero, below the warning level) and the warning
level itself.

Every write locks the account row first (`credit_account_lock`), then checks, then appends
immutable ledger entries and stores the new cached balance, in one transaction. Lock order
everywhere: the account, then a recharge attempt. Recharges and purchases build on this
module; it knows neither: after a change that leaves the balance below the auto-recharge
trigger it sends `auto_recharge_due` after commit, and the tasks module enqueues the check.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import CreditAccount, LedgerEntry, LedgerKind, Organization
from ..money import ZERO, money
from ..platform.db import copy_rows, existing_values
from ..platform.events import event_emit
from ..platform.services import Actor, ServiceError, audit_record
from ..selectors.billing import (
    balance_below_warning,
    days_left_at_recent_rate,
    purchase_eligibility,
)
from .spend_limits import SpendItem, spend_counters_add

__all__ = [
    "UsageCharge",
    "ChargeBatchResult",
    "auto_recharge_due",
    "credit_account_lock",
    "credits_charge_usage",
    "credits_charge_usage_batch",
    "credit_account_set_low_balance_threshold",
    "credits_adjust",
    "auto_recharge_is_due",
    "recharge_check_on_commit",
    "ledger_append",
    "ensure_may_buy",
]

# Sent after commit with `organization_id` when a balance change leaves an account below
# its auto-recharge trigger (credits.apps connects the task that checks it).
auto_recharge_due = Signal()


def credit_account_lock(*, organization: Organization) -> CreditAccount:
    """Inside the caller's transaction.atomic(): get-or-create and SELECT ... FOR UPDATE the
    organization's credit account. Re-locking in the same transaction is harmless."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("credit_account_lock() must run inside transaction.atomic()")
    account = CreditAccount.objects.select_for_update(of=("self",), no_key=True).filter(
        organization=organization).first()
    if account is not None:
        # The caller's organization, not a query per use of account.organization (usage
        # batches read it for their events).
        account.organization = organization
        return account
    try:
        with transaction.atomic():
            CreditAccount.objects.create(organization=organization,
                                         currency=organization.currency)
    except IntegrityError:
        pass  # created concurrently; the lock below waits for that transaction
    return CreditAccount.objects.select_for_update(of=("self",), no_key=True).get(
        organization=organization)


@dataclass(frozen=True)
class UsageCharge:
    key: str  # idempotency key, unique per organization (e.g. "call:<graph id>")
    amount: Decimal  # >= 0, 2 decimal places, account currency
    description: str
    occurred_at: datetime  # aware UTC
    # Whose call it was, for the person's monthly spend limit (None: nobody's).
    person_id: int | None = None


@dataclass(frozen=True)
class ChargeBatchResult:
    charged_keys: list[str]
    duplicate_keys: list[str]
    total: Decimal
    balance_after: Decimal


def credits_charge_usage(*, organization: Organization, charge: UsageCharge) -> LedgerEntry | None:
    """Charge one call; None when its key was charged before or its amount is zero."""
    result = credits_charge_usage_batch(organization=organization, charges=[charge])
    if not result.charged_keys or money(charge.amount) == 0:
        return None
    return LedgerEntry.objects.get(organization=organization, idempotency_key=charge.key)


@transaction.atomic
def credits_charge_usage_batch(
    *, organization: Organization, charges: Sequence[UsageCharge]
) -> ChargeBatchResult:
    """One transaction, one lock of the account, one immutable entry per new key.

    A call in progress settles in full, so the balance may go below zero. Zero-amount
    charges write nothing and are reported in `charged_keys` (there is nothing to charge).
    After commit, the auto-recharge check runs when the balance is below the trigger.
    """
    for charge in charges:
        if isinstance(charge.amount, float):  # money is Decimal: a float has lost cents already
            raise TypeError(f"usage charge {charge.key!r}: amount must be a Decimal, not float")
        if charge.amount is None or Decimal(charge.amount) < 0:
            raise ValueError(f"usage charge {charge.key!r} has a negative amount")
        if charge.occurred_at.tzinfo is None:
            raise ValueError(f"usage charge {charge.key!r} has a naive occurred_at")
    account = credit_account_lock(organization=organization)
    keys = list(dict.fromkeys(c.key for c in charges))
    existing = existing_values(LedgerEntry, "idempotency_key", keys,
                               scope_column="account_id", scope_id=account.pk)
    before = account.balance
    balance = before
    now = timezone.now()
    charged, duplicates, entries, spend = [], [], [], []
    seen: set[str] = set()
    total = ZERO
    for charge in charges:
        if charge.key in existing or charge.key in seen:
            duplicates.append(charge.key)
            continue
        seen.add(charge.key)
        charged.append(charge.key)
        amount = money(charge.amount)
        if amount == 0:
            continue
        balance -= amount
        total += amount
        entries.append(_UsageEntry(-amount, balance, charge.key,
                                   (charge.description or "")[:200], charge.occurred_at))
        spend.append(SpendItem(amount, charge.occurred_at, charge.person_id))
    if entries:
        _insert_usage_entries(account, entries, now)
        account.balance = balance
        account.save(update_fields=["balance", "updated_at"])
        # The month's spend moves with the entries, under the same lock.
        spend_counters_add(account=account, items=spend)
        _emit_crossings(account=account, before=before, entries=entries)
        recharge_check_on_commit(account)
    return ChargeBatchResult(charged_keys=charged, duplicate_keys=duplicates, total=total,
                             balance_after=account.balance)


class _UsageEntry(NamedTuple):
    """A usage entry about to be written (no model instance per call on the hot path)."""

    amount: Decimal
    balance_after: Decimal
    idempotency_key: str
    description: str
    occurred_at: datetime


_USAGE_COLUMNS = ("organization_id", "account_id", "kind", "amount", "balance_after",
                  "idempotency_key", "description", "actor_label", "occurred_at", "created_at")


def _insert_usage_entries(account: CreditAccount, entries: list[_UsageEntry], now) -> None:
    """Append the entries (the caller holds the account lock); the table's constraints
    (unique key per account, sign per kind) apply to every row."""
    org_id, account_id, kind = account.organization_id, account.pk, str(LedgerKind.USAGE)
    copy_rows(LedgerEntry, _USAGE_COLUMNS, [
        (org_id, account_id, kind, e.amount, e.balance_after, e.idempotency_key,
         e.description, "usage", e.occurred_at, now) for e in entries])


def _emit_crossings(*, account: CreditAccount, before: Decimal, entries) -> None:
    """balance_zero once per crossing to <= 0; balance_low once per crossing below the
    warning level. The entry that crossed names the occurrence."""
    org = account.organization
    threshold = account.low_balance_threshold
    prev = before
    zero_done = low_done = False
    for entry in entries:
        after = entry.balance_after
        if not zero_done and prev > 0 >= after:
            zero_done = True
            event_emit(
                organization=org, name="balance_zero",
                payload={"balance": str(money(after)), "currency": account.currency,
},
                dedupe_key=f"balance_zero:{account.pk}:{entry.idempotency_key}"[:200],
            )
        if (not low_done and balance_below_warning(balance=after, threshold=threshold)
                and not balance_below_warning(balance=prev, threshold=threshold)):
            low_done = True
            _balance_low_emit(account=account,
                              occurrence=f"balance_low:{account.pk}:{entry.idempotency_key}")
        prev = after


def _balance_low_emit(*, account: CreditAccount, occurrence: str) -> None:
    """The balance_low notification of one occurrence: a crossing below the warning level,
    or a level set above the balance."""
    org = account.organization
    days = days_left_at_recent_rate(organization=org, balance=account.balance)
    event_emit(
        organization=org, name="balance_low",
        payload={"balance": str(money(account.balance)), "currency": account.currency,
                 "threshold": str(money(account.low_balance_threshold)), "days_left": days},
        dedupe_key=occurrence[:200],
    )


def recharge_check_on_commit(account: CreditAccount) -> None:
    if not auto_recharge_is_due(account, timezone.now()):
        return
    organization_id = account.organization_id
    transaction.on_commit(lambda: auto_recharge_due.send(sender=CreditAccount,
                                                         organization_id=organization_id))


def auto_recharge_is_due(account: CreditAccount, now) -> bool:
    """Below the trigger with auto-recharge on, and not waiting out a decline back-off."""
    return bool(
        account.auto_recharge_enabled
        and account.auto_recharge_trigger is not None
        and account.balance < account.auto_recharge_trigger
        and (account.next_attempt_at is None or account.next_attempt_at <= now)
    )


@transaction.atomic
def credit_account_set_low_balance_threshold(
    *, organization: Organization, threshold: Decimal | None, actor
) -> None:
    account = credit_account_lock(organization=organization)
    if threshold is not None:
        threshold = money(threshold)
        if threshold < 0:
            raise ServiceError(_("The warning level cannot be negative."), field="threshold")
    before = account.low_balance_threshold
    if before == threshold:
        return
    account.low_balance_threshold = threshold
    account.save(update_fields=["low_balance_threshold", "updated_at"])
    entry = audit_record(organization=organization, actor=Actor.coerce(actor),
                         action="credits.low_balance_threshold", target=account,
                         changes={"low_balance_threshold": {
                             "from": None if before is None else str(before),
                             "to": None if threshold is None else str(threshold)}})
    # A level set above the balance is a crossing too, unless the balance was already
    # under the previous level (that occurrence was told).
    if (balance_below_warning(balance=account.balance, threshold=threshold)
            and not balance_below_warning(balance=account.balance, threshold=before)):
        _balance_low_emit(account=account, occurrence=(
            f"balance_low:{account.pk}:level:{entry.pk}"))


def credits_adjust(
    *, organization: Organization, amount: Decimal, reason: str, actor, key: str = ""
) -> LedgerEntry:
    """For code with no person's form behind it (tests, benchmarks, scripts): an adjustment
    of services.adjustments under the reference `key`, or a new unique one, with a debit
    below zero confirmed. People adjust through that module's `balance_adjust`."""
    from .adjustments import balance_adjust  # it builds on this module

    return balance_adjust(organization=organization, amount=amount, reason=reason,
                          reference=key or f"auto-{uuid.uuid4().hex}", actor=actor,
                          confirm_below_zero=True).entry


def ledger_append(*, account, kind, amount, key, description, actor: Actor, attempt=None,
                  expires_at=None, expired_lot=None, now=None) -> LedgerEntry:
    """Append one entry under the account lock the caller holds."""
    now = now or timezone.now()
    account.balance = account.balance + amount
    entry = LedgerEntry.objects.create(
        organization_id=account.organization_id, account=account, kind=kind, amount=amount,
        balance_after=account.balance, idempotency_key=key, description=description[:200],
        actor_label=actor.label[:200], actor=actor.person, recharge_attempt=attempt,
        expires_at=expires_at, expired_lot=expired_lot, occurred_at=now, created_at=now,
    )
    account.save(update_fields=["balance", "updated_at"])
    return entry


def ensure_may_buy(organization: Organization) -> None:
    """Refuse, saying why, when the organization may not bring money in here (a one-time
    purchase or turning auto-recharge on)."""
    eligibility = purchase_eligibility(organization=organization)
    if not eligibility.allowed:
        raise ServiceError(str(eligibility.reason), code=eligibility.code)
