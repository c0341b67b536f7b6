"""How much one automatic recharge charges, defined once and without a database: the two
modes, the daily cap and its default rule, and the sanity rules of the settings.

| mode | charge when the balance B falls below the trigger T |
|---|---|
| add amount A | the smallest whole multiple of A that brings B to T or above |
| recharge to target G (G >= T + 50) | G - B, rounded up to a whole unit |

Automatic recharges of one UTC day add up to at most the daily cap (the account's own, or
ten times the usual charge, at least 1,000, at most MAX_AMOUNT). A recharge the cap cuts
short charges what still fits: whole multiples of A, or whole units toward G, never less
than MIN_AMOUNT. The service that opens an attempt and the page that asks a person to
confirm a charge both call `recharge_due`, so the page shows what the card is charged.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from django.utils import formats
from django.utils.translation import gettext as _

from .models.billing import DAILY_CAP_FLOOR, PO_NUMBER_MAX_LENGTH, TARGET_MARGIN, AutoRechargeMode
from .money import MAX_AMOUNT, MIN_AMOUNT, ZERO, money

__all__ = [
    "DAILY_CAP_TIMES",
    "DAILY_CAP_FLOOR",
    "TRIGGER_MAX_TIMES_AMOUNT",
    "TARGET_MARGIN",
    "RechargeSettings",
    "RechargeDue",
    "recharge_amount_for_gap",
    "recharge_amount_to_target",
    "daily_cap_default",
    "daily_cap_of",
    "recharge_due",
    "utc_day_start",
    "SettingError",
    "recharge_settings_errors",
    "trigger_above_max_message",
    "clean_po_number",
]

DAILY_CAP_TIMES = 10
# A trigger more than this many times the amount added is a slip (swapped fields, a zero
# too many): each recharge would charge many times the amount.
TRIGGER_MAX_TIMES_AMOUNT = 20


@dataclass(frozen=True)
class RechargeSettings:
    """What decides an automatic recharge's amount (whole amounts, account currency)."""

    mode: str
    trigger: Decimal
    amount: Decimal | None = None  # add_amount
    target: Decimal | None = None  # target_balance
    daily_cap: Decimal | None = None  # None: daily_cap_default

    @classmethod
    def of_account(cls, account) -> "RechargeSettings":
        return cls(mode=account.auto_recharge_mode, trigger=account.auto_recharge_trigger,
                   amount=account.auto_recharge_amount, target=account.auto_recharge_target,
                   daily_cap=account.auto_recharge_daily_cap)

    @property
    def step(self) -> Decimal:
        """The usual size of one recharge: A, or what lifts the trigger to the target."""
        if self.mode == AutoRechargeMode.TARGET_BALANCE:
            return self.target - self.trigger
        return self.amount


@dataclass(frozen=True)
class RechargeDue:
    amount: Decimal  # to charge now (0.00: nothing)
    wanted: Decimal  # before the daily cap
    cap: Decimal
    spent_today: Decimal

    @property
    def capped(self) -> bool:
        """The cap cut this recharge short (or stopped it)."""
        return self.amount < self.wanted


def recharge_amount_for_gap(*, balance: Decimal, trigger: Decimal, amount: Decimal) -> Decimal:
    """The smallest whole multiple of `amount` that lifts `balance` to `trigger` or above."""
    gap = trigger - balance
    if gap <= 0:
        return ZERO
    times = (gap / amount).to_integral_value(rounding=ROUND_CEILING)
    return money(max(times, 1) * amount)


def recharge_amount_to_target(*, balance: Decimal, trigger: Decimal, target: Decimal) -> Decimal:
    """G - B rounded up to a whole unit, when the balance is below the trigger."""
    if balance >= trigger:
        return ZERO
    return money((target - balance).to_integral_value(rounding=ROUND_CEILING))


def daily_cap_default(step: Decimal) -> Decimal:
    """Ten times the usual recharge, at least DAILY_CAP_FLOOR, at most MAX_AMOUNT."""
    return min(MAX_AMOUNT, max(Decimal(DAILY_CAP_FLOOR), step * DAILY_CAP_TIMES))


def daily_cap_of(settings: RechargeSettings) -> Decimal:
    if settings.daily_cap is not None:
        return settings.daily_cap
    return daily_cap_default(settings.step)


def recharge_due(*, settings: RechargeSettings, balance: Decimal,
                 spent_today: Decimal) -> RechargeDue:
    """What one automatic recharge charges now, given today's automatic recharges so far
    (pending and succeeded ones)."""
    cap = daily_cap_of(settings)
    if settings.mode == AutoRechargeMode.TARGET_BALANCE:
        wanted = recharge_amount_to_target(balance=balance, trigger=settings.trigger,
                                           target=settings.target)
    else:
        wanted = recharge_amount_for_gap(balance=balance, trigger=settings.trigger,
                                         amount=settings.amount)
    room = max(ZERO, cap - spent_today)
    amount = wanted
    if wanted > room:
        if settings.mode == AutoRechargeMode.TARGET_BALANCE:
            amount = money(room.to_integral_value(rounding=ROUND_FLOOR))
        else:
            amount = money((room / settings.amount).to_integral_value(rounding=ROUND_FLOOR)
                           * settings.amount)
        if amount < MIN_AMOUNT:
            amount = ZERO
    return RechargeDue(amount=amount, wanted=wanted, cap=cap, spent_today=spent_today)


def utc_day_start(now: datetime) -> datetime:
    """The start of `now`'s UTC day: the daily cap counts from there."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


# --- the settings' rules across fields, for the form (all at once) and the service --------


class SettingError(ValueError):
    """A setting a person entered is refused; `message` names the field and says why."""

    def __init__(self, message: str, *, field: str, code: str):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


def _whole(value: Decimal) -> str:
    return formats.number_format(int(value), use_l10n=True, force_grouping=True)


def trigger_above_max_message() -> str:
    return _("When balance is below must be at most %(max)s: one day of automatic "
             "recharges adds at most %(max)s, so a higher balance could never be "
             "reached.") % {"max": _whole(MAX_AMOUNT)}


def recharge_settings_errors(*, mode: str, trigger: Decimal | None, amount: Decimal | None,
                             target: Decimal | None,
                             daily_cap: Decimal | None) -> list[SettingError]:
    """What is wrong across fields with settings whose fields each parsed (None: missing or
    refused already). Each error names its field and says why."""
    errors = []
    if trigger is not None and trigger > MAX_AMOUNT:
        errors.append(SettingError(trigger_above_max_message(), field="trigger", code="max"))
    if mode == AutoRechargeMode.TARGET_BALANCE:
        if target is not None and trigger is not None and target < trigger + TARGET_MARGIN:
            errors.append(SettingError(
                _("Recharge to this balance must be at least %(min)s, %(margin)s above the "
                  "trigger: closer to it, a recharge would add little and the next call "
                  "would charge the card again.") % {
                    "min": _whole(trigger + TARGET_MARGIN), "margin": _whole(TARGET_MARGIN)},
                field="target", code="target_too_low"))
        step = None if target is None or trigger is None else target - trigger
    else:
        if (amount is not None and trigger is not None
                and trigger > amount * TRIGGER_MAX_TIMES_AMOUNT):
            errors.append(SettingError(
                _("When balance is below (%(trigger)s) is more than %(times)s times the "
                  "amount to add (%(amount)s): every recharge would charge the card many "
                  "times that amount at once. Lower the trigger or raise the amount; are "
                  "the two fields swapped?") % {
                    "trigger": _whole(trigger), "amount": _whole(amount),
                    "times": TRIGGER_MAX_TIMES_AMOUNT},
                field="trigger", code="trigger_too_high"))
        step = amount
    if daily_cap is not None:
        if daily_cap < DAILY_CAP_FLOOR:
            errors.append(SettingError(
                _("Daily cap must be at least %(min)s, or a busy day would stop "
                  "auto-recharge.") % {"min": _whole(DAILY_CAP_FLOOR)},
                field="daily_cap", code="min"))
        elif step is not None and step > 0 and daily_cap < step:
            errors.append(SettingError(
                _("Daily cap (%(cap)s) is less than one recharge (%(step)s): no recharge "
                  "could ever run. Raise the cap or lower the recharge.") % {
                    "cap": _whole(daily_cap), "step": _whole(step)},
                field="daily_cap", code="below_one_recharge"))
    return errors


def clean_po_number(value) -> str:
    """The buyer's purchase order number: optional, printable, at most
    PO_NUMBER_MAX_LENGTH characters once trimmed."""
    text = " ".join(str(value or "").split())
    if len(text) > PO_NUMBER_MAX_LENGTH:
        raise SettingError(_("PO number must be at most %(n)s characters.")
                           % {"n": PO_NUMBER_MAX_LENGTH}, field="po_number", code="max")
    if any(not ch.isprintable() for ch in text):
        raise SettingError(_("PO number: use letters, digits and punctuation only."),
                           field="po_number", code="invalid")
    return text
