"""Recharge attempts and auto-recharge: the settings, starting an automatic recharge,
charging an attempt, recording its outcome, giving up after transient errors.

A recharge (purchase or automatic) runs in three steps, so that no database lock is held
while the payment gateway is called and a crash at any point is recoverable:
1. a short transaction records a pending `RechargeAttempt` (for automatic ones the
   database allows one pending attempt per account);
2. the gateway is charged with the attempt id as idempotency key (outside any transaction:
   the gateway commits what it did on its own, like a real provider);
3. a short transaction locks the account and the attempt and, if the attempt is still
   pending, records the outcome: on success one ledger entry and an invoice. The ledger
   credits only what the gateway confirmed for this attempt: its amount and currency.
A worker dying between 2 and 3 leaves the attempt pending; running it again charges the
same key (the gateway returns the first result, without charging again) and credits once.
"""

import logging
from datetime import timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from ..models import (
    AutoRechargeMode,
    CreditAccount,
    LedgerEntry,
    LedgerKind,
    Organization,
    RechargeAttempt,
    RechargeKind,
    RechargeStatus,
)
from ..models.billing import LOT_KINDS
from ..money import ZERO, AmountError, money, parse_whole_amount
from ..pausepoints import pause_point
from ..payments.base import ChargeResult, GatewayTimeout, get_gateway
from ..payments.reasons import recharge_failure_reason
from ..platform.events import event_emit
from ..platform.services import Actor, ServiceError, audit_record
from ..recharge_rules import (
    RechargeDue,
    SettingError,
    clean_po_number,
    daily_cap_default,
    recharge_amount_for_gap,
    recharge_settings_errors,
    trigger_above_max_message,
    utc_day_start,
)
from ..selectors.billing import auto_recharge_charge_now, purchase_eligibility
from .invoices import invoice_issue
from .ledger import (
    auto_recharge_is_due,
    credit_account_lock,
    ensure_may_buy,
    ledger_append,
    recharge_check_on_commit,
)
from .payment_methods import active_payment_method

logger = logging.getLogger(__name__)

__all__ = [
    "TransientGatewayError",
    "validate_amount",
    "auto_recharge_configure",
    "auto_recharge_daily_cap",
    "recharge_amount_for_gap",
    "auto_recharge_start",
    "KEEP",
    "recharge_attempt_process",
    "recharge_attempt_give_up",
    "recharge_attempt_finish",
    "auto_recharge_run",
    "MAX_DECLINES_IN_A_ROW",
]

LOT_LIFETIME_DAYS = 365  # "12 months": a year to the day
DECLINE_BACKOFF = timedelta(hours=1)
# After this many declined automatic recharges in a row, auto-recharge turns off.
MAX_DECLINES_IN_A_ROW = 3
# Failures that say nothing about the card: a provider hiccup, an answer that did not match.
NOT_A_DECLINE = frozenset({"processing_error", "amount_mismatch", "currency_mismatch",
                           "unconfirmed"})
# A pending attempt (the gateway gave no final answer) that the gateway has still not
# confirmed this long after the order fails as `unconfirmed`: providers keep an idempotency
# key about a day (Stripe: 24 hours), after which a retry under the same key could charge
# again. Until then the sweep asks again; whatever the gateway confirms is credited.
UNCONFIRMED_AFTER = timedelta(hours=24)


class TransientGatewayError(Exception):
    """The gateway could not process the charge this time; the same key may be retried."""

    def __init__(self, attempt_id):
        super().__init__(f"transient gateway error for attempt {attempt_id}")
        self.attempt_id = attempt_id


def validate_amount(value, *, field: str, label: str) -> Decimal:
    """A whole amount within the money bounds, in the account currency; a ServiceError
    naming `field` otherwise."""
    try:
        return money(parse_whole_amount(value, label=label))
    except AmountError as error:
        raise ServiceError(error.message, field=field, code=error.code) from error


# A setting the caller does not pass stays as it is (None would mean "the default").
KEEP = object()


def _amount_setting(value, *, field: str, label, keep, required: bool):
    if value in (None, "") and not required:
        return keep
    try:
        return validate_amount(value, field=field, label=label)
    except ServiceError as error:
        if field == "trigger" and error.code == "max":
            raise ServiceError(trigger_above_max_message(), field=field, code="max") from error
        raise


def _raise(error: SettingError):
    raise ServiceError(error.message, field=error.field, code=error.code) from error


@transaction.atomic
def auto_recharge_configure(
    *, organization: Organization, enabled: bool, amount=None, trigger=None,
    payment_method=None, mode=None, target=None, daily_cap=KEEP, po_number=KEEP,
    expected_charge=None, actor,
) -> CreditAccount:
    """Save the auto-recharge settings. Turning off is always allowed, also to an
    organization that may not buy (and keeps the last values, so turning on again is one
    click); turning on checks that the organization may buy and that the settings make sense.

    When the saved settings charge at once (the balance is below the trigger), the recharge
    attempt is opened here, under the account lock, for the amount `auto_recharge_charge_now`
    gives, so the card is charged what the person was shown. `expected_charge` is that
    amount (0 when nothing was announced): when the balance moved meanwhile and the amount
    differs, nothing is saved (ServiceError with code "charge_changed")."""
    actor = Actor.coerce(actor)
    now = timezone.now()
    account = credit_account_lock(organization=organization)
    mode = mode or account.auto_recharge_mode
    if mode not in AutoRechargeMode.values:
        raise ServiceError(_("Recharge mode: choose \"Add this amount\" or \"Recharge to this "
                             "balance\"."), field="mode")
    if enabled:
        ensure_may_buy(organization)
    add_mode = mode == AutoRechargeMode.ADD_AMOUNT
    amount = _amount_setting(amount, field="amount", label=_("Add this amount"),
                             keep=account.auto_recharge_amount, required=enabled and add_mode)
    trigger = _amount_setting(trigger, field="trigger", label=_("When balance is below"),
                              keep=account.auto_recharge_trigger, required=enabled)
    target = _amount_setting(target, field="target", label=_("Recharge to this balance"),
                             keep=account.auto_recharge_target,
                             required=enabled and not add_mode)
    if daily_cap is KEEP:
        daily_cap = account.auto_recharge_daily_cap
    elif daily_cap not in (None, ""):
        daily_cap = validate_amount(daily_cap, field="daily_cap", label=_("Daily cap"))
    else:
        daily_cap = None
    try:
        po_number = (account.auto_recharge_po_number if po_number is KEEP
                     else clean_po_number(po_number))
    except SettingError as error:
        _raise(error)
    errors = recharge_settings_errors(mode=mode, trigger=trigger, amount=amount,
                                      target=target, daily_cap=daily_cap)
    if not enabled:
        # Off, the settings charge nothing: only what the database itself refuses stops it.
        errors = [e for e in errors if e.code == "target_too_low"]
    if errors:
        _raise(errors[0])
    if enabled:
        method = active_payment_method(organization, payment_method)
    else:
        method = (active_payment_method(organization, payment_method) if payment_method
                  else account.auto_recharge_payment_method)
    before = _settings_snapshot(account)
    account.auto_recharge_enabled = enabled
    account.auto_recharge_mode = mode
    account.auto_recharge_amount = amount
    account.auto_recharge_trigger = trigger
    account.auto_recharge_target = target
    account.auto_recharge_daily_cap = daily_cap
    account.auto_recharge_po_number = po_number
    account.auto_recharge_payment_method = method
    if enabled:
        # A person looked at the settings: the decline count and back-off start again.
        account.declines_in_a_row = 0
        account.next_attempt_at = None
    account.save()
    charge = auto_recharge_charge_now(account=account, now=now) if enabled else None
    charged_now = charge.amount if charge is not None else ZERO
    if expected_charge is not None and money(expected_charge) != charged_now:
        raise ServiceError(
            _("The amount to charge now is %(amount)s, not what was shown: the balance "
              "changed. Check it and confirm again.") % {"amount": str(charged_now)},
            code="charge_changed")
    attempt = None
    if charge is not None and charge.pending is None:
        attempt = _auto_recharge_open(account=account, due=charge.due, method=method, now=now)
    after = _settings_snapshot(account)
    changes = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    if attempt is not None:
        changes["charged_now"] = {"amount": str(attempt.amount), "attempt": str(attempt.pk)}
    audit_record(organization=organization, actor=actor, action="credits.auto_recharge",
                 target=account, changes=changes)
    recharge_check_on_commit(account)
    return account


def _settings_snapshot(account) -> dict:
    pm = account.auto_recharge_payment_method

    def whole(value):
        return None if value is None else str(value)

    return {
        "enabled": account.auto_recharge_enabled,
        "mode": account.auto_recharge_mode,
        "amount": whole(account.auto_recharge_amount),
        "trigger": whole(account.auto_recharge_trigger),
        "target": whole(account.auto_recharge_target),
        "daily_cap": whole(account.auto_recharge_daily_cap),
        "po_number": account.auto_recharge_po_number,
        "payment_method": pm.label if pm else None,
    }


def auto_recharge_daily_cap(amount: Decimal) -> Decimal:
    """The default daily cap of the "add this amount" mode (recharge_rules.daily_cap_default)."""
    return daily_cap_default(amount)


def auto_recharge_start(*, organization_id: int, now=None) -> RechargeAttempt | None:
    """Under the account lock: the pending automatic attempt to (re)process, or a new one
    when the balance is below the trigger; None when nothing is to be done."""
    now = now or timezone.now()
    with transaction.atomic():
        account = (CreditAccount.objects.select_for_update(of=("self",), no_key=True)
                   .filter(organization_id=organization_id).first())
        if account is None:
            return None
        pending = account.attempts.filter(status=RechargeStatus.PENDING,
                                          kind=RechargeKind.AUTO_RECHARGE).first()
        if pending is not None:
            # In flight (or left behind by a dead worker): resume it, unless it waits for
            # its transient-error back-off.
            return pending if pending.retry_at is None or pending.retry_at <= now else None
        if not auto_recharge_is_due(account, now):
            return None
        method = account.auto_recharge_payment_method
        if method is None or method.removed_at is not None:
            return None
        if not purchase_eligibility(organization=account.organization).allowed:
            # Post-paid, partner or region-bound: no money comes in here, not even
            # automatically; the settings page lets an admin turn it off.
            logger.warning("auto-recharge of org %s skipped: it may not buy", organization_id)
            return None
        charge = auto_recharge_charge_now(account=account, now=now)
        return _auto_recharge_open(account=account, due=charge.due, method=method, now=now)


def _auto_recharge_open(*, account, due: RechargeDue, method, now) -> RechargeAttempt | None:
    """Under the account lock, with no automatic attempt in flight: the attempt that
    charges `due.amount`, or None when there is nothing to charge. When the daily cap cuts
    the recharge, the credit roles are told once per account per UTC day."""
    if due.capped:
        _capped_emit(account=account, due=due, now=now)
    if due.amount <= 0:
        if due.capped:
            logger.warning("auto-recharge of org %s stopped by the daily cap",
                           account.organization_id)
        return None
    try:
        with transaction.atomic():
            return RechargeAttempt.objects.create(
                organization_id=account.organization_id, account=account,
                kind=RechargeKind.AUTO_RECHARGE, amount=due.amount,
                currency=account.currency, payment_method=method,
                actor_label="auto-recharge", balance_before=account.balance,
                po_number=account.auto_recharge_po_number, created_at=now,
            )
    except IntegrityError:  # the database allows one in flight; another one is
        return None


def _capped_emit(*, account, due: RechargeDue, now) -> None:
    day = utc_day_start(now)
    event_emit(
        organization=account.organization, name="auto_recharge_capped",
        payload={"cap": str(money(due.cap)), "spent_today": str(money(due.spent_today)),
                 "amount": str(money(due.amount)), "balance": str(money(account.balance)),
                 "currency": account.currency,
                 "resumes_at": (day + timedelta(days=1)).isoformat()},
        dedupe_key=f"auto_recharge_capped:{account.pk}:{day.date().isoformat()}",
    )


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
    return recharge_attempt_finish(attempt_id=attempt.pk, result=result)


@transaction.atomic
def _note_transient(*, attempt_id) -> None:
    attempt = RechargeAttempt.objects.select_for_update(of=("self",), no_key=True).get(
        pk=attempt_id)
    attempt.gateway_tries += 1
    # Back-off grows with each try; the task's retry countdown matches it.
    attempt.retry_at = timezone.now() + timedelta(seconds=min(300, 2 ** attempt.gateway_tries))
    attempt.save(update_fields=["gateway_tries", "retry_at"])


def recharge_attempt_give_up(*, attempt_id, now=None) -> RechargeAttempt:
    """After the last transient error or time-out. A time-out leaves the outcome unknown,
    so the gateway is first asked (without charging) what it did under the attempt's key:
    a charge it made is credited; otherwise the attempt fails with processing_error. When
    the gateway cannot answer either, the attempt stays pending for the sweep, until
    UNCONFIRMED_AFTER from its order: then it fails as `unconfirmed`."""
    now = now or timezone.now()
    attempt = RechargeAttempt.objects.get(pk=attempt_id)
    try:
        known = get_gateway().charge_status(idempotency_key=str(attempt.pk))
    except GatewayTimeout:
        if attempt.status == RechargeStatus.PENDING \
                and now >= attempt.created_at + UNCONFIRMED_AFTER:
            logger.error("gateway never confirmed attempt %s; failed as unconfirmed",
                         attempt_id)
            result = ChargeResult(is_success=False, amount=attempt.amount,
                                  currency=attempt.currency, error_code="unconfirmed")
            return recharge_attempt_finish(attempt_id=attempt_id, result=result, now=now)
        logger.warning("gateway cannot say what became of attempt %s; left pending",
                       attempt_id)
        return attempt
    if known is not None and not known.is_transient:
        return recharge_attempt_finish(attempt_id=attempt_id, result=known)
    result = ChargeResult(is_success=False, amount=attempt.amount, currency=attempt.currency,
                          error_code="processing_error", is_transient=True)
    return recharge_attempt_finish(attempt_id=attempt_id, result=result)


def recharge_attempt_finish(*, attempt_id, result: ChargeResult, now=None) -> RechargeAttempt:
    """Record the gateway's final answer for a pending attempt (a finished one is returned
    as it is): a success credits the ledger and issues an invoice, anything else fails."""
    now = now or timezone.now()
    with transaction.atomic():
        attempt = RechargeAttempt.objects.select_related("payment_method").get(pk=attempt_id)
        # Only these rows: select_related would lock the organization (and the card) too.
        account = CreditAccount.objects.select_for_update(of=("self",), no_key=True) \
            .select_related("organization").get(pk=attempt.account_id)
        attempt = (RechargeAttempt.objects.select_for_update(of=("self",), no_key=True)
                   .select_related("payment_method").get(pk=attempt_id))
        if attempt.status != RechargeStatus.PENDING:
            return attempt  # finished by another run: credit exactly once
        attempt.gateway_tries += 1
        attempt.gateway_reference = result.reference
        attempt.completed_at = now
        attempt.retry_at = None
        mismatch = _mismatch(attempt, result) if result.is_success else ""
        if mismatch:
            logger.error("gateway confirmed %s %s for attempt %s of %s %s; not credited",
                         result.amount, result.currency, attempt.pk, attempt.amount,
                         attempt.currency)
            _attempt_failed(account=account, attempt=attempt, code=mismatch, now=now)
        elif result.is_success:
            _attempt_succeeded(account=account, attempt=attempt, now=now)
        else:
            _attempt_failed(account=account, attempt=attempt, code=result.error_code, now=now)
        return attempt


def _mismatch(attempt: RechargeAttempt, result: ChargeResult) -> str:
    """The reason code when the gateway confirmed another charge than the attempt's: the
    ledger credits only the amount ordered, in the account's currency."""
    if (result.currency or "").upper() != attempt.currency.upper():
        return "currency_mismatch"
    if result.amount is None or Decimal(result.amount) != attempt.amount:
        return "amount_mismatch"
    return ""


def _settled_late(attempt: RechargeAttempt) -> dict:
    """For the events of a purchase that was pending (an earlier try had no final answer,
    so the person who ordered it was told "not confirmed yet"): a flag for the words, and
    that person, who is told the outcome even without a credit-alerts role. Called after
    recharge_attempt_finish counted the final try."""
    if attempt.kind != RechargeKind.PURCHASE or attempt.gateway_tries <= 1:
        return {}
    return {"was_pending": True, "requester_person_id": attempt.actor_id}


def _attempt_succeeded(*, account, attempt, now) -> None:
    org = account.organization
    first_funding = not LedgerEntry.objects.filter(account=account, kind__in=LOT_KINDS).exists()
    actor = Actor(person=attempt.actor, label=attempt.actor_label or "auto-recharge",
                  ip=attempt.actor_ip)
    kind = LedgerKind.PURCHASE if attempt.kind == RechargeKind.PURCHASE \
        else LedgerKind.AUTO_RECHARGE
    description = (_("Communications Credits purchase") if kind == LedgerKind.PURCHASE
                   else _("Communications Credits auto-recharge"))
    with translation.override("en"):
        description = str(description) + f" ({attempt.payment_method.label})"
    entry = ledger_append(account=account, kind=kind, amount=attempt.amount,
                          key=f"recharge:{attempt.pk}", description=description, actor=actor,
                          attempt=attempt, expires_at=now + timedelta(days=LOT_LIFETIME_DAYS),
                          now=now)
    attempt.status = RechargeStatus.SUCCEEDED
    attempt.save()
    invoice = invoice_issue(attempt=attempt, entry=entry, now=now)
    if attempt.kind == RechargeKind.AUTO_RECHARGE and (account.declines_in_a_row
                                                       or account.next_attempt_at):
        account.declines_in_a_row = 0
        account.next_attempt_at = None
        account.save(update_fields=["declines_in_a_row", "next_attempt_at", "updated_at"])
    audit_record(organization=org, actor=actor, action=f"credits.{kind}", target=entry,
                 changes={"amount": str(attempt.amount), "card": attempt.payment_method.label,
                          "attempt": str(attempt.pk), "invoice": invoice.number,
                          "balance": str(account.balance)})
    event_emit(
        organization=org, name="recharge_succeeded",
        payload={"amount": str(money(attempt.amount)), "balance": str(money(account.balance)),
                 "currency": account.currency, "card": attempt.payment_method.label,
                 "kind": str(attempt.kind), "invoice_id": invoice.pk,
                 "attempt_id": str(attempt.pk),
                 # The first money in: credits.subscribers ensures the credits license.
                 "first_funding": first_funding, **_settled_late(attempt)},
        dedupe_key=f"recharge_succeeded:{attempt.pk}",
    )


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
        if attempt.reason_code not in NOT_A_DECLINE:
            account.declines_in_a_row += 1
        if account.declines_in_a_row >= MAX_DECLINES_IN_A_ROW:
            account.auto_recharge_enabled = False
            disabled = True
            next_at = None
        account.save(update_fields=["next_attempt_at", "declines_in_a_row",
                                    "auto_recharge_enabled", "updated_at"])
    actor = Actor(person=attempt.actor, label=attempt.actor_label or "auto-recharge",
                  ip=attempt.actor_ip)
    audit_record(organization=org, actor=actor, action=f"credits.{attempt.kind}_failed",
                 target=attempt,
                 changes={"amount": str(attempt.amount), "card": attempt.payment_method.label,
                          "reason_code": attempt.reason_code,
                          "declines_in_a_row": account.declines_in_a_row,
                          "auto_recharge_disabled": disabled})
    event_emit(
        organization=org, name="recharge_failed",
        payload={"amount": str(money(attempt.amount)), "currency": attempt.currency,
                 "card": attempt.payment_method.label, "reason_code": attempt.reason_code,
                 "reason": attempt.reason, "declines_in_a_row": account.declines_in_a_row,
                 "auto_recharge_disabled": disabled,
                 "next_attempt_at": next_at.isoformat() if next_at else None,
                 **_settled_late(attempt)},
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
                     "declines_in_a_row": account.declines_in_a_row},
            dedupe_key=f"auto_recharge_disabled:{attempt.pk}",
        )


def auto_recharge_run(*, organization_id: int) -> RechargeAttempt | None:
    """Start (or resume) the account's automatic recharge and charge it. Raises
    TransientGatewayError when the gateway asks for a retry of the same attempt."""
    attempt = auto_recharge_start(organization_id=organization_id)
    if attempt is None:
        return None
    return recharge_attempt_process(attempt_id=attempt.pk)
