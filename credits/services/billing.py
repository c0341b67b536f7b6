"""Writes of the prepaid credit account: usage charges, purchases, auto-recharge, saved
cards, fund expiry.

Every write locks the account row first (`credit_account_lock`), then checks, then appends
immutable ledger entries and stores the new cached balance, in one transaction. Lock order
everywhere: the account, then a recharge attempt.

A recharge (purchase or automatic) runs in three steps, so that no database lock is held
while the payment gateway is called and a crash at any point is recoverable:
1. a short transaction records a pending `RechargeAttempt` (for automatic ones the
   database allows one pending attempt per account);
2. the gateway is charged with the attempt id as idempotency key (outside any transaction:
   the gateway commits what it did on its own, like a real provider);
3. a short transaction locks the account and the attempt and, if the attempt is still
   pending, records the outcome: on success one ledger entry and an invoice.
A worker dying between 2 and 3 leaves the attempt pending; running it again charges the
same key (the gateway returns the first result, without charging again) and credits once.
"""

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import NamedTuple

from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from ..db import pg_text_array
from ..events import event_emit
from ..gateway import ChargeResult, GatewayTimeout, get_gateway, reason_for
from ..models import (
    CreditAccount,
    Invoice,
    LedgerEntry,
    LedgerKind,
    Organization,
    PaymentMethod,
    RechargeAttempt,
    RechargeKind,
    RechargeStatus,
)
from ..models.billing import LOT_KINDS
from ..pausepoints import pause_point
from .tenants import Actor, ServiceError, audit_record

logger = logging.getLogger(__name__)

__all__ = [
    "UsageCharge",
    "ChargeBatchResult",
    "TransientGatewayError",
    "MIN_AMOUNT",
    "MAX_AMOUNT",
    "credit_account_lock",
    "credits_charge_usage",
    "credits_charge_usage_batch",
    "credit_account_set_low_balance_threshold",
    "credits_purchase",
    "credits_adjust",
    "payment_method_add",
    "payment_method_remove",
    "auto_recharge_configure",
    "auto_recharge_start",
    "recharge_attempt_process",
    "recharge_attempt_give_up",
    "auto_recharge_run",
    "auto_recharge_sweep_accounts",
    "stale_recharge_attempt_ids",
    "funds_expire",
    "funds_expiring_notify",
    "support_request_create",
    "recharge_amount_for_gap",
    "auto_recharge_daily_cap",
]

CENT = Decimal("0.01")
MIN_AMOUNT = Decimal(50)
MAX_AMOUNT = Decimal(100000)
LOT_LIFETIME_DAYS = 365  # "12 months": a year to the day
EXPIRING_NOTICE_DAYS = 30
DECLINE_BACKOFF = timedelta(hours=1)
DECLINES_BEFORE_DISABLING = 3
PURCHASE_TRANSIENT_TRIES = 3
FIX_PATH = "/billing/communications-credits/payment-methods/"


def _money(value) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def _s(value: Decimal) -> str:
    return str(_money(value))


def _actor(actor) -> Actor:
    return actor if isinstance(actor, Actor) else Actor.system(str(actor or "system"))


def _add_funds_path() -> str:
    return reverse("billing_add_funds")


class TransientGatewayError(Exception):
    """The gateway could not process the charge this time; the same key may be retried."""

    def __init__(self, attempt_id):
        super().__init__(f"transient gateway error for attempt {attempt_id}")
        self.attempt_id = attempt_id


def validate_amount(value, *, field: str, label: str) -> Decimal:
    """A whole number of at least 50 and at most 100,000 in the account currency."""
    try:
        amount = Decimal(value)
    except Exception as exc:
        raise ServiceError(_("%(field)s: enter a whole number.") % {"field": label},
                           field=field) from exc
    if not amount.is_finite() or amount != amount.to_integral_value():
        raise ServiceError(
            _("%(field)s must be a whole number (no cents).") % {"field": label}, field=field
        )
    if amount < MIN_AMOUNT:
        raise ServiceError(
            _("%(field)s must be at least %(min)s.") % {"field": label, "min": MIN_AMOUNT},
            field=field,
        )
    if amount > MAX_AMOUNT:
        raise ServiceError(
            _("%(field)s must be at most %(max)s.") % {"field": label, "max": "100,000"},
            field=field,
        )
    return _money(amount)


# --- the account and usage ----------------------------------------------------------------


def credit_account_lock(*, organization: Organization) -> CreditAccount:
    """Inside the caller's transaction.atomic(): get-or-create and SELECT ... FOR UPDATE the
    organization's credit account. Re-locking in the same transaction is harmless."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("credit_account_lock() must run inside transaction.atomic()")
    account = CreditAccount.objects.select_for_update().filter(organization=organization).first()
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
    return CreditAccount.objects.select_for_update().get(organization=organization)


@dataclass(frozen=True)
class UsageCharge:
    key: str  # idempotency key, unique per organization (e.g. "call:<graph id>")
    amount: Decimal  # >= 0, 2 decimal places, account currency
    description: str
    occurred_at: datetime  # aware UTC


@dataclass(frozen=True)
class ChargeBatchResult:
    charged_keys: list[str]
    duplicate_keys: list[str]
    total: Decimal
    balance_after: Decimal


def credits_charge_usage(*, organization: Organization, charge: UsageCharge) -> LedgerEntry | None:
    """Charge one call; None when its key was charged before or its amount is zero."""
    result = credits_charge_usage_batch(organization=organization, charges=[charge])
    if not result.charged_keys or _money(charge.amount) == 0:
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
    existing = _existing_keys(account, keys)
    before = account.balance
    balance = before
    now = timezone.now()
    charged, duplicates, entries = [], [], []
    seen: set[str] = set()
    total = Decimal("0.00")
    for charge in charges:
        if charge.key in existing or charge.key in seen:
            duplicates.append(charge.key)
            continue
        seen.add(charge.key)
        charged.append(charge.key)
        amount = _money(charge.amount)
        if amount == 0:
            continue
        balance -= amount
        total += amount
        entries.append(_UsageEntry(-amount, balance, charge.key,
                                   (charge.description or "")[:200], charge.occurred_at))
    if entries:
        _insert_usage_entries(account, entries, now)
        account.balance = balance
        account.save(update_fields=["balance", "updated_at"])
        _emit_crossings(account=account, before=before, entries=entries)
        _recharge_check_on_commit(account)
    return ChargeBatchResult(charged_keys=charged, duplicate_keys=duplicates, total=total,
                             balance_after=account.balance)


class _UsageEntry(NamedTuple):
    """A usage entry about to be written (no model instance per call on the hot path)."""

    amount: Decimal
    balance_after: Decimal
    idempotency_key: str
    description: str
    occurred_at: datetime


def _existing_keys(account: CreditAccount, keys: list[str]) -> set[str]:
    if connection.vendor == "postgresql":
        # One parameter, a constant query text whatever the batch size; the keys travel as
        # one array literal.
        literal = pg_text_array(keys)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT idempotency_key FROM {LedgerEntry._meta.db_table} "
                "WHERE account_id = %s AND idempotency_key = ANY(%s::text[])",
                [account.pk, literal])
            return {row[0] for row in cursor.fetchall()}
    existing: set[str] = set()
    for i in range(0, len(keys), 2000):
        existing.update(
            LedgerEntry.objects.filter(account=account, idempotency_key__in=keys[i:i + 2000])
            .values_list("idempotency_key", flat=True)
        )
    return existing


_USAGE_COLUMNS = ("organization_id", "account_id", "kind", "amount", "balance_after",
                  "idempotency_key", "description", "actor_label", "occurred_at", "created_at")


def _insert_usage_entries(account: CreditAccount, entries: list[_UsageEntry], now) -> None:
    """Append the entries (the caller holds the account lock). PostgreSQL: one COPY, the
    cheapest bulk insert there is; the table's constraints (unique key per account, sign
    per kind) still apply to every row. Elsewhere: bulk_create."""
    org_id, account_id, kind = account.organization_id, account.pk, str(LedgerKind.USAGE)
    if connection.vendor == "postgresql":
        sql = (f"COPY {LedgerEntry._meta.db_table} ({', '.join(_USAGE_COLUMNS)}) "
               "FROM STDIN (FORMAT BINARY)")
        fields = {f.column: f for f in LedgerEntry._meta.concrete_fields}
        with connection.cursor() as cursor, cursor.copy(sql) as copy:
            copy.set_types([fields[c].db_type(connection).split("(")[0]
                            for c in _USAGE_COLUMNS])
            for e in entries:
                copy.write_row((org_id, account_id, kind, e.amount, e.balance_after,
                                e.idempotency_key, e.description, "usage", e.occurred_at,
                                now))
        return
    LedgerEntry.objects.bulk_create(
        [LedgerEntry(organization_id=org_id, account_id=account_id, kind=kind,
                     amount=e.amount, balance_after=e.balance_after,
                     idempotency_key=e.idempotency_key, description=e.description,
                     actor_label="usage", occurred_at=e.occurred_at, created_at=now)
         for e in entries],
        batch_size=1000,
    )


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
                payload={"balance": _s(after), "currency": account.currency,
                         "add_funds_path": _add_funds_path()},
                dedupe_key=f"balance_zero:{account.pk}:{entry.idempotency_key}"[:200],
            )
        if threshold is not None and not low_done and prev >= threshold > after:
            low_done = True
            from ..selectors.billing import days_left_at_recent_rate

            days = days_left_at_recent_rate(organization=org, balance=account.balance)
            event_emit(
                organization=org, name="balance_low",
                payload={"balance": _s(account.balance), "currency": account.currency,
                         "threshold": _s(threshold), "days_left": days,
                         "add_funds_path": _add_funds_path()},
                dedupe_key=f"balance_low:{account.pk}:{entry.idempotency_key}"[:200],
            )
        prev = after


def _recharge_check_on_commit(account: CreditAccount) -> None:
    if not _auto_recharge_due(account, timezone.now()):
        return
    organization_id = account.organization_id
    transaction.on_commit(lambda: enqueue_auto_recharge_check(organization_id))


def enqueue_auto_recharge_check(organization_id: int) -> None:
    """Ask a worker to check the account; a broker outage is logged, the sweep catches up."""
    from kombu.exceptions import OperationalError

    from ..tasks import auto_recharge_check

    try:
        auto_recharge_check.delay(organization_id)
    except (OperationalError, OSError):
        logger.warning("could not enqueue auto-recharge of org %s; the sweep will",
                       organization_id)


@transaction.atomic
def credit_account_set_low_balance_threshold(
    *, organization: Organization, threshold: Decimal | None, actor
) -> None:
    account = credit_account_lock(organization=organization)
    if threshold is not None:
        threshold = _money(threshold)
        if threshold < 0:
            raise ServiceError(_("The warning level cannot be negative."), field="threshold")
    before = account.low_balance_threshold
    if before == threshold:
        return
    account.low_balance_threshold = threshold
    account.save(update_fields=["low_balance_threshold", "updated_at"])
    audit_record(organization=organization, actor=_actor(actor),
                 action="credits.low_balance_threshold", target=account,
                 changes={"low_balance_threshold": {
                     "from": None if before is None else str(before),
                     "to": None if threshold is None else str(threshold)}})


@transaction.atomic
def credits_adjust(
    *, organization: Organization, amount: Decimal, reason: str, actor, key: str = ""
) -> LedgerEntry:
    """A correction by support staff: a new signed `adjustment` entry (entries never change)."""
    amount = _money(amount)
    if amount == 0:
        raise ServiceError(_("An adjustment cannot be zero."), field="amount")
    if not reason.strip():
        raise ServiceError(_("Say why the balance is adjusted."), field="reason")
    actor = _actor(actor)
    account = credit_account_lock(organization=organization)
    key = key or f"adjustment:{timezone.now().timestamp()}:{actor.label}"
    entry = _append(account=account, kind=LedgerKind.ADJUSTMENT, amount=amount, key=key,
                    description=reason, actor=actor)
    audit_record(organization=organization, actor=actor, action="credits.adjust",
                 target=entry, changes={"amount": str(amount), "reason": reason})
    _recharge_check_on_commit(account)
    return entry


def _append(*, account, kind, amount, key, description, actor: Actor, attempt=None,
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


# --- eligibility ---------------------------------------------------------------------------


def _ensure_may_buy(organization: Organization) -> None:
    from ..selectors.billing import purchase_eligibility

    eligibility = purchase_eligibility(organization=organization)
    if not eligibility.allowed:
        raise ServiceError(str(eligibility.reason), code=eligibility.code)


# --- payment methods -------------------------------------------------------------------------


@transaction.atomic
def payment_method_add(
    *, organization: Organization, number: str, exp_month: int, exp_year: int, cvc: str,
    holder_name: str = "", actor,
) -> PaymentMethod:
    """Hand the card to the gateway; keep only its token, brand, last 4 and expiry."""
    actor = _actor(actor)
    result = get_gateway().tokenize_card(number=number, exp_month=exp_month,
                                         exp_year=exp_year, cvc=cvc)
    if not result.is_success:
        field = {"incorrect_cvc": "cvc", "expired_card": "exp_month"}.get(
            result.error_code, "number")
        raise ServiceError(result.message, field=field, code=result.error_code)
    method = PaymentMethod.objects.create(
        organization=organization, gateway_token=result.token, brand=result.brand,
        last4=result.last4, exp_month=result.exp_month, exp_year=result.exp_year,
        holder_name=holder_name[:128],
    )
    audit_record(organization=organization, actor=actor, action="payment_method.add",
                 target=method, changes={"card": method.label, "expiry": method.expiry_label})
    return method


@transaction.atomic
def payment_method_remove(*, organization: Organization, payment_method: PaymentMethod,
                          actor) -> None:
    actor = _actor(actor)
    account = credit_account_lock(organization=organization)
    method = PaymentMethod.objects.select_for_update().get(
        organization=organization, pk=payment_method.pk)
    if method.removed_at is not None:
        return
    if account.auto_recharge_enabled and account.auto_recharge_payment_method_id == method.pk:
        raise ServiceError(
            _("This card pays for auto-recharge. Choose another card or turn auto-recharge "
              "off first."), field="payment_method", code="in_use")
    method.removed_at = timezone.now()
    method.save(update_fields=["removed_at"])
    if account.auto_recharge_payment_method_id == method.pk:
        account.auto_recharge_payment_method = None
        account.save(update_fields=["auto_recharge_payment_method", "updated_at"])
    audit_record(organization=organization, actor=actor, action="payment_method.remove",
                 target=method, changes={"card": method.label})


def _active_method(organization, payment_method) -> PaymentMethod:
    pk = payment_method.pk if isinstance(payment_method, PaymentMethod) else payment_method
    method = PaymentMethod.objects.filter(organization=organization, pk=pk,
                                          removed_at__isnull=True).first()
    if method is None:
        raise ServiceError(_("Payment method: choose one of your saved cards."),
                           field="payment_method")
    return method


# --- auto-recharge settings --------------------------------------------------------------------


@transaction.atomic
def auto_recharge_configure(
    *, organization: Organization, enabled: bool, amount=None, trigger=None,
    payment_method=None, actor,
) -> CreditAccount:
    actor = _actor(actor)
    account = credit_account_lock(organization=organization)
    if enabled:
        _ensure_may_buy(organization)
        amount = validate_amount(amount, field="amount", label=_("Add this amount"))
        trigger = validate_amount(trigger, field="trigger", label=_("When balance is below"))
        method = _active_method(organization, payment_method)
    else:
        # Turning off keeps the last values so turning on again is one click.
        amount = (validate_amount(amount, field="amount", label=_("Add this amount"))
                  if amount not in (None, "") else account.auto_recharge_amount)
        trigger = (validate_amount(trigger, field="trigger", label=_("When balance is below"))
                   if trigger not in (None, "") else account.auto_recharge_trigger)
        method = (_active_method(organization, payment_method) if payment_method
                  else account.auto_recharge_payment_method)
    before = _settings_snapshot(account)
    account.auto_recharge_enabled = enabled
    account.auto_recharge_amount = amount
    account.auto_recharge_trigger = trigger
    account.auto_recharge_payment_method = method
    if enabled:
        # A person looked at the settings: the decline count and back-off start again.
        account.declines_in_a_row = 0
        account.next_attempt_at = None
    account.save()
    after = _settings_snapshot(account)
    audit_record(organization=organization, actor=actor, action="credits.auto_recharge",
                 target=account,
                 changes={k: {"from": before[k], "to": after[k]} for k in after
                          if before[k] != after[k]})
    _recharge_check_on_commit(account)
    return account


def _settings_snapshot(account) -> dict:
    pm = account.auto_recharge_payment_method
    return {
        "enabled": account.auto_recharge_enabled,
        "amount": None if account.auto_recharge_amount is None
        else str(account.auto_recharge_amount),
        "trigger": None if account.auto_recharge_trigger is None
        else str(account.auto_recharge_trigger),
        "payment_method": pm.label if pm else None,
    }


def auto_recharge_daily_cap(amount: Decimal) -> Decimal:
    """No runaway: automatic recharges of one UTC day add up to at most ten times the
    recharge amount (at least 1,000, at most 100,000)."""
    return min(MAX_AMOUNT, max(Decimal(1000), amount * 10))


def recharge_amount_for_gap(*, balance: Decimal, trigger: Decimal, amount: Decimal) -> Decimal:
    """The smallest whole multiple of `amount` that lifts `balance` to `trigger` or above."""
    gap = trigger - balance
    if gap <= 0:
        return Decimal("0.00")
    times = (gap / amount).to_integral_value(rounding=ROUND_CEILING)
    return _money(max(times, 1) * amount)


def _auto_recharge_due(account: CreditAccount, now) -> bool:
    return bool(
        account.auto_recharge_enabled
        and account.auto_recharge_trigger is not None
        and account.balance < account.auto_recharge_trigger
        and (account.next_attempt_at is None or account.next_attempt_at <= now)
    )


def auto_recharge_start(*, organization_id: int, now=None) -> RechargeAttempt | None:
    """Under the account lock: the pending automatic attempt to (re)process, or a new one
    when the balance is below the trigger; None when nothing is to be done."""
    now = now or timezone.now()
    with transaction.atomic():
        account = (CreditAccount.objects.select_for_update()
                   .filter(organization_id=organization_id).first())
        if account is None:
            return None
        pending = account.attempts.filter(status=RechargeStatus.PENDING,
                                          kind=RechargeKind.AUTO_RECHARGE).first()
        if pending is not None:
            # In flight (or left behind by a dead worker): resume it, unless it waits for
            # its transient-error back-off.
            return pending if pending.retry_at is None or pending.retry_at <= now else None
        if not _auto_recharge_due(account, now):
            return None
        method = account.auto_recharge_payment_method
        if method is None or method.removed_at is not None:
            return None
        amount = recharge_amount_for_gap(balance=account.balance,
                                         trigger=account.auto_recharge_trigger,
                                         amount=account.auto_recharge_amount)
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        spent_today = (account.attempts.filter(
            kind=RechargeKind.AUTO_RECHARGE, created_at__gte=day_start,
            status__in=[RechargeStatus.PENDING, RechargeStatus.SUCCEEDED],
        ).aggregate(s=Sum("amount"))["s"] or Decimal(0))
        room = auto_recharge_daily_cap(account.auto_recharge_amount) - spent_today
        if amount > room:
            times = (room / account.auto_recharge_amount).to_integral_value(ROUND_FLOOR)
            amount = _money(times * account.auto_recharge_amount)
            if amount <= 0:
                logger.warning("auto-recharge of org %s stopped by the daily cap",
                               organization_id)
                return None
        try:
            with transaction.atomic():
                return RechargeAttempt.objects.create(
                    organization_id=organization_id, account=account,
                    kind=RechargeKind.AUTO_RECHARGE, amount=amount,
                    currency=account.currency, payment_method=method,
                    actor_label="auto-recharge", balance_before=account.balance,
                    created_at=now,
                )
        except IntegrityError:  # the database allows one in flight; another one is
            return None


def _charge(attempt: RechargeAttempt) -> ChargeResult:
    return get_gateway().charge(
        token=attempt.payment_method.gateway_token, amount=attempt.amount,
        currency=attempt.currency, idempotency_key=str(attempt.id),
    )


def recharge_attempt_process(*, attempt_id) -> RechargeAttempt:
    """Charge the attempt's card under the attempt id and record the outcome (idempotent:
    a finished attempt is returned as it is; a pending one is charged under the same key).
    Raises TransientGatewayError when the gateway asks for a retry."""
    attempt = RechargeAttempt.objects.select_related("payment_method").get(pk=attempt_id)
    if attempt.status != RechargeStatus.PENDING:
        return attempt
    try:
        result = _charge(attempt)
    except GatewayTimeout:
        # No answer: the card may or may not have been charged. Only a retry under the
        # same key (or the give-up's lookup) can tell, never a new charge.
        result = None
    if result is None or result.is_transient:
        _note_transient(attempt_id=attempt.pk)
        raise TransientGatewayError(attempt.pk)
    pause_point("recharge_after_gateway")
    return _attempt_finish(attempt_id=attempt.pk, result=result)


@transaction.atomic
def _note_transient(*, attempt_id) -> None:
    attempt = RechargeAttempt.objects.select_for_update().get(pk=attempt_id)
    attempt.gateway_tries += 1
    # Back-off grows with each try; the task's retry countdown matches it.
    attempt.retry_at = timezone.now() + timedelta(seconds=min(300, 2 ** attempt.gateway_tries))
    attempt.save(update_fields=["gateway_tries", "retry_at"])


def recharge_attempt_give_up(*, attempt_id) -> RechargeAttempt:
    """After the last transient error or time-out. A time-out leaves the outcome unknown,
    so the gateway is first asked (without charging) what it did under the attempt's key:
    a charge it made is credited; otherwise the attempt fails with processing_error. When
    the gateway cannot answer either, the attempt stays pending for the sweep."""
    attempt = RechargeAttempt.objects.get(pk=attempt_id)
    try:
        known = get_gateway().charge_status(idempotency_key=str(attempt.pk))
    except GatewayTimeout:
        logger.warning("gateway cannot say what became of attempt %s; left pending",
                       attempt_id)
        return attempt
    if known is not None and not known.is_transient:
        return _attempt_finish(attempt_id=attempt_id, result=known)
    result = ChargeResult(is_success=False, amount=attempt.amount, currency=attempt.currency,
                          error_code="processing_error", is_transient=True)
    return _attempt_finish(attempt_id=attempt_id, result=result)


def _attempt_finish(*, attempt_id, result: ChargeResult, now=None) -> RechargeAttempt:
    now = now or timezone.now()
    with transaction.atomic():
        attempt = RechargeAttempt.objects.select_related("payment_method").get(pk=attempt_id)
        account = CreditAccount.objects.select_for_update().select_related(
            "organization").get(pk=attempt.account_id)
        attempt = (RechargeAttempt.objects.select_for_update()
                   .select_related("payment_method").get(pk=attempt_id))
        if attempt.status != RechargeStatus.PENDING:
            return attempt  # finished by another run: credit exactly once
        attempt.gateway_tries += 1
        attempt.gateway_reference = result.reference
        attempt.completed_at = now
        attempt.retry_at = None
        if result.is_success:
            _attempt_succeeded(account=account, attempt=attempt, now=now)
        else:
            _attempt_failed(account=account, attempt=attempt, code=result.error_code, now=now)
        return attempt


def _attempt_succeeded(*, account, attempt, now) -> None:
    org = account.organization
    first_funding = not LedgerEntry.objects.filter(account=account, kind__in=LOT_KINDS).exists()
    actor = Actor(person=attempt.actor, label=attempt.actor_label or "auto-recharge")
    kind = LedgerKind.PURCHASE if attempt.kind == RechargeKind.PURCHASE \
        else LedgerKind.AUTO_RECHARGE
    description = (_("Communications Credits purchase") if kind == LedgerKind.PURCHASE
                   else _("Communications Credits auto-recharge"))
    with translation.override("en"):
        description = str(description) + f" ({attempt.payment_method.label})"
    entry = _append(account=account, kind=kind, amount=attempt.amount,
                    key=f"recharge:{attempt.pk}", description=description, actor=actor,
                    attempt=attempt, expires_at=now + timedelta(days=LOT_LIFETIME_DAYS),
                    now=now)
    attempt.status = RechargeStatus.SUCCEEDED
    attempt.save()
    invoice = Invoice.objects.create(
        organization=org, number=f"CC-{now:%Y}-{entry.pk:08d}", attempt=attempt,
        ledger_entry=entry, amount=attempt.amount, currency=attempt.currency,
        card_label=attempt.payment_method.label, issued_at=now,
    )
    if attempt.kind == RechargeKind.AUTO_RECHARGE and (account.declines_in_a_row
                                                       or account.next_attempt_at):
        account.declines_in_a_row = 0
        account.next_attempt_at = None
        account.save(update_fields=["declines_in_a_row", "next_attempt_at", "updated_at"])
    if first_funding:
        # Lazy: the licenses module imports billing's neighbours; no import cycle at load.
        from .licenses import subscription_ensure

        subscription_ensure(organization=org, sku="MCOPSTNC", actor=actor)
    audit_record(organization=org, actor=actor, action=f"credits.{kind}", target=entry,
                 changes={"amount": str(attempt.amount), "card": attempt.payment_method.label,
                          "attempt": str(attempt.pk), "invoice": invoice.number,
                          "balance": str(account.balance)})
    event_emit(
        organization=org, name="recharge_succeeded",
        payload={"amount": _s(attempt.amount), "balance": _s(account.balance),
                 "currency": account.currency, "card": attempt.payment_method.label,
                 "kind": str(attempt.kind),
                 "invoice_path": reverse("billing_invoice", args=[invoice.pk]),
                 "attempt_id": str(attempt.pk)},
        dedupe_key=f"recharge_succeeded:{attempt.pk}",
    )


def recharge_failure_reason(*, kind: str, code: str) -> str:
    """Why a charge failed, in the active language. After a provider error an automatic
    recharge is tried again after its back-off; a purchase is not (the person who placed
    the order decides), so its words say what to do instead."""
    if kind == RechargeKind.PURCHASE and code == "processing_error":
        return _("The payment provider could not process the card, and nothing was charged. "
                 "Try again later or use another card.")
    return reason_for(code)


def _attempt_failed(*, account, attempt, code: str, now) -> None:
    org = account.organization
    attempt.status = RechargeStatus.FAILED
    attempt.reason_code = code or "card_declined"
    with translation.override("en"):
        attempt.reason = recharge_failure_reason(kind=attempt.kind,
                                                 code=attempt.reason_code)[:200]
    attempt.save()
    disabled = False
    next_at = None
    if attempt.kind == RechargeKind.AUTO_RECHARGE:
        next_at = now + DECLINE_BACKOFF
        account.next_attempt_at = next_at
        if attempt.reason_code != "processing_error":  # a provider hiccup is no decline
            account.declines_in_a_row += 1
        if account.declines_in_a_row >= DECLINES_BEFORE_DISABLING:
            account.auto_recharge_enabled = False
            disabled = True
            next_at = None
        account.save(update_fields=["next_attempt_at", "declines_in_a_row",
                                    "auto_recharge_enabled", "updated_at"])
    actor = Actor(person=attempt.actor, label=attempt.actor_label or "auto-recharge")
    audit_record(organization=org, actor=actor, action=f"credits.{attempt.kind}_failed",
                 target=attempt,
                 changes={"amount": str(attempt.amount), "card": attempt.payment_method.label,
                          "reason_code": attempt.reason_code,
                          "declines_in_a_row": account.declines_in_a_row,
                          "auto_recharge_disabled": disabled})
    event_emit(
        organization=org, name="recharge_failed",
        payload={"amount": _s(attempt.amount), "currency": attempt.currency,
                 "card": attempt.payment_method.label, "reason_code": attempt.reason_code,
                 "reason": attempt.reason, "declines_in_a_row": account.declines_in_a_row,
                 "auto_recharge_disabled": disabled,
                 "next_attempt_at": next_at.isoformat() if next_at else None,
                 "fix_path": FIX_PATH},
        dedupe_key=f"recharge_failed:{attempt.pk}",
    )
    if disabled:
        with translation.override("en"):
            reason = _("Auto-recharge was turned off after %(n)s declined recharges in a "
                       "row.") % {"n": account.declines_in_a_row}
        audit_record(organization=org, actor=Actor.system("auto-recharge"),
                     action="credits.auto_recharge_disabled", target=account,
                     changes={"declines_in_a_row": account.declines_in_a_row})
        event_emit(
            organization=org, name="auto_recharge_disabled",
            payload={"reason": str(reason), "reason_code": attempt.reason_code,
                     "declines_in_a_row": account.declines_in_a_row, "fix_path": FIX_PATH},
            dedupe_key=f"auto_recharge_disabled:{attempt.pk}",
        )


def auto_recharge_run(*, organization_id: int) -> RechargeAttempt | None:
    """Start (or resume) the account's automatic recharge and charge it. Raises
    TransientGatewayError when the gateway asks for a retry of the same attempt."""
    attempt = auto_recharge_start(organization_id=organization_id)
    if attempt is None:
        return None
    return recharge_attempt_process(attempt_id=attempt.pk)


def auto_recharge_sweep_accounts(*, now=None, limit: int = 1000) -> list[int]:
    """Organizations whose automatic recharge is due (the event path may have missed them)."""
    from django.db.models import F, Q

    now = now or timezone.now()
    return list(
        CreditAccount.objects.filter(
            auto_recharge_enabled=True, balance__lt=F("auto_recharge_trigger"))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .values_list("organization_id", flat=True)[:limit]
    )


def stale_recharge_attempt_ids(*, older_than_seconds: int = 120, now=None) -> list:
    """Pending attempts nobody finished (a worker died, a message was lost)."""
    from django.db.models import Q

    now = now or timezone.now()
    return list(
        RechargeAttempt.objects.filter(
            status=RechargeStatus.PENDING,
            created_at__lte=now - timedelta(seconds=older_than_seconds),
        ).filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
        .values_list("pk", flat=True)[:500]
    )


# --- one-time purchase -----------------------------------------------------------------------


def credits_purchase(
    *, organization: Organization, amount, payment_method, actor, request_key: str = "",
) -> RechargeAttempt:
    """Buy credits once with a saved card. Returns the finished attempt: succeeded (the
    amount is on the balance, with an invoice) or failed (nothing changed; `reason` says
    why). Must not run inside another transaction: the gateway's charge has to outlive a
    crash of this process. Submitting the same `request_key` again buys only once."""
    actor = _actor(actor)
    with transaction.atomic(durable=True):
        account = credit_account_lock(organization=organization)
        _ensure_may_buy(organization)
        amount = validate_amount(amount, field="amount", label=_("Amount"))
        method = _active_method(organization, payment_method)
        if request_key:
            earlier = account.attempts.filter(request_key=request_key).first()
            if earlier is not None:
                attempt = earlier
            else:
                attempt = None
        else:
            attempt = None
        if attempt is None:
            attempt = RechargeAttempt.objects.create(
                organization=organization, account=account, kind=RechargeKind.PURCHASE,
                amount=amount, currency=account.currency, payment_method=method,
                request_key=request_key[:64], actor_label=actor.label[:200],
                actor=actor.person, balance_before=account.balance,
            )
    for try_number in range(PURCHASE_TRANSIENT_TRIES):
        try:
            return recharge_attempt_process(attempt_id=attempt.pk)
        except TransientGatewayError:
            if try_number + 1 < PURCHASE_TRANSIENT_TRIES:
                time.sleep(0.2 * 2 ** try_number)  # the same key, after a short back-off
    return recharge_attempt_give_up(attempt_id=attempt.pk)


# --- expiry ------------------------------------------------------------------------------


def _lot_remainders(account: CreditAccount, lots, *, at_each_expiry: bool):
    """FIFO from totals: lot i keeps what the cumulative purchases up to i hold beyond
    what usage (and earlier expiries) consumed. With `at_each_expiry`, consumption is
    counted up to the lot's own expiry instant."""
    from django.db.models import Q

    consumers = LedgerEntry.objects.filter(account=account).exclude(kind__in=LOT_KINDS)
    expired_before = {
        e.expired_lot_id: -e.amount
        for e in LedgerEntry.objects.filter(account=account, kind=LedgerKind.EXPIRY)
    }
    all_lots = list(LedgerEntry.objects.filter(account=account, kind__in=LOT_KINDS)
                    .order_by("created_at", "id"))
    cumulative = Decimal(0)
    expired_sum = Decimal(0)
    wanted = {lot.pk for lot in lots}
    results = []
    for lot in all_lots:
        cumulative += lot.amount
        if lot.pk in wanted:
            qs = consumers.exclude(kind=LedgerKind.EXPIRY)
            if at_each_expiry:
                qs = qs.filter(Q(created_at__lte=lot.expires_at))
            consumed = -(qs.aggregate(s=Sum("amount"))["s"] or Decimal(0))
            consumed = max(consumed, Decimal(0))
            remainder = cumulative - consumed - expired_sum
            remainder = max(Decimal(0), min(lot.amount, remainder))
            results.append((lot, _money(remainder)))
        expired_sum += expired_before.get(lot.pk, Decimal(0))
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
        remainder = min(remainder, max(account.balance, Decimal(0)))
        if remainder <= 0:
            continue
        with translation.override("en"):
            description = _("Unused credits of %(date)s expired") % {
                "date": lot.created_at.date().isoformat()}
        entry = _append(account=account, kind=LedgerKind.EXPIRY, amount=-remainder,
                        key=f"expiry:{lot.pk}", description=str(description), actor=actor,
                        expired_lot=lot, now=now)
        written.append(entry)
        audit_record(organization=organization, actor=actor, action="credits.expiry",
                     target=entry, changes={"lot": lot.pk, "amount": str(remainder)})
    if written:
        _recharge_check_on_commit(account)
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
        remainder = min(remainder, max(account.balance, Decimal(0)))
        if remainder <= 0:
            continue
        event = event_emit(
            organization=organization, name="funds_expiring",
            payload={"amount": _s(remainder), "currency": account.currency,
                     "expires_on": lot.expires_at.date().isoformat(),
                     "purchase_entry_id": str(lot.pk)},
            dedupe_key=f"funds_expiring:{lot.pk}",
        )
        count += event is not None
    return count


# --- support ------------------------------------------------------------------------------


@transaction.atomic
def support_request_create(*, organization: Organization, subject: str, message: str,
                           actor) -> str:
    """Record a support request (an organization that may not buy credits asks for help);
    returns its reference."""
    actor = _actor(actor)
    if not message.strip():
        raise ServiceError(_("Message: describe what you need."), field="message")
    entry = audit_record(organization=organization, actor=actor,
                         action="support_request.create",
                         changes={"subject": subject[:200], "message": message[:2000]})
    return f"SR-{entry.pk:06d}"
