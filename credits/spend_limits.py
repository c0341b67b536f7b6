"""Monthly credits spend limits, defined once and without a database: what counts as spend,
the month, the alert levels, and how a typed limit is read.

- **Spend** is the settled credits usage of a month: the sum of the `usage` ledger entries
  whose call ended (`occurred_at`) in that UTC calendar month. Nothing is taken off it:
  refunds, adjustments, expired funds and purchases move the balance, not the spend.
- **Month**: the UTC calendar month, from the 1st at 00:00 UTC.
- **Limits**: one for the organization (`CreditAccount.monthly_spend_limit`) and one per
  person (`Person.credits_monthly_limit`), each optional. A new call that credits would
  pay is refused once the month's spend reached a limit (`spend_limit_reached`,
  `person_limit_reached`), and is authorized for at most what is left of the smaller one.
- **Settled spend**: as with the zero-balance rule, a call in progress settles in full.
  Each call in progress can carry the spend past a limit by at most what its
  `maxDurationSeconds` pays for.
- **Alerts**: the credit roles are told at 80 % and at 100 % of each limit, once per month
  and level (the event's dedupe key names the organization or the person, the month and
  the level).
"""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_FLOOR, Decimal, InvalidOperation

from django.utils.translation import gettext as _

from .money import ZERO

__all__ = [
    "LEVELS",
    "NEAR_PERCENT",
    "MAX_LIMIT",
    "month_of",
    "month_key",
    "left_of",
    "percent_of",
    "crossed_levels",
    "reached_level",
    "LimitError",
    "parse_limit",
    "SpendLine",
]

LEVELS = (80, 100)
NEAR_PERCENT = 80
MAX_LIMIT = Decimal(1_000_000)
OFF_WORDS = {"off", "none", "no", "-"}

_DECIMAL = re.compile(r"-?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_THOUSANDS = re.compile(r"-?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]*)?")


def month_of(at: datetime | date) -> date:
    """The first day of the UTC month of `at` (an aware datetime, or a date)."""
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError("month_of() needs an aware datetime")
        at = at.astimezone(UTC)
    return date(at.year, at.month, 1)


def month_key(month: date) -> str:
    return f"{month:%Y-%m}"


def left_of(limit: Decimal | None, spent: Decimal) -> Decimal | None:
    """What the month may still spend under `limit` (may be negative); None: no limit."""
    return None if limit is None else limit - spent


def percent_of(limit: Decimal | None, spent: Decimal) -> int | None:
    """Whole percent of the limit spent, rounded down (79.99 % is 79); None: no limit."""
    if limit is None:
        return None
    if limit <= 0:
        return 100 if spent >= 0 else 0
    return int((spent * 100 / limit).to_integral_value(rounding=ROUND_FLOOR))


def _threshold(limit: Decimal, level: int) -> Decimal:
    return limit * level / 100


def crossed_levels(limit: Decimal | None, before: Decimal, after: Decimal) -> list[int]:
    """The alert levels that spend going from `before` to `after` crosses."""
    if limit is None or limit <= 0:
        return []
    return [level for level in LEVELS
            if before < _threshold(limit, level) <= after]


def reached_level(limit: Decimal | None, spent: Decimal) -> int | None:
    """The highest alert level `spent` has reached, or None."""
    if limit is None or limit <= 0:
        return None
    reached = [level for level in LEVELS if spent >= _threshold(limit, level)]
    return reached[-1] if reached else None


class LimitError(ValueError):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def parse_limit(value, *, label: str) -> Decimal | None:
    """A monthly limit typed by a person or passed as a number: None for "off" or blank,
    else an amount from 0 to MAX_LIMIT with at most 2 decimal places ("1,000.50" is fine;
    "100,50" is refused rather than guessed). Raises LimitError naming `label`."""
    if value is None:
        return None
    if isinstance(value, float):
        raise TypeError(f"{label}: a limit must be a Decimal, not float")
    if isinstance(value, (Decimal, int)) and not isinstance(value, bool):
        amount = Decimal(value)
    else:
        text = "".join(ch for ch in str(value).strip().lstrip("$€£") if not ch.isspace())
        if not text or text.lower() in OFF_WORDS:
            return None
        if _THOUSANDS.fullmatch(text):
            text = text.replace(",", "")
        if not _DECIMAL.fullmatch(text):
            raise LimitError(_("%(field)s: enter an amount such as 250 or 99.50, or off.")
                             % {"field": label})
        try:
            amount = Decimal(text)
        except InvalidOperation as exc:
            raise LimitError(_("%(field)s: enter an amount such as 250 or 99.50, or off.")
                             % {"field": label}) from exc
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        raise LimitError(_("%(field)s: at most 2 decimal places.") % {"field": label})
    if amount.is_signed():  # "-0" too: a minus sign is not a limit of zero
        raise LimitError(_("%(field)s cannot be negative.") % {"field": label})
    if amount > MAX_LIMIT:
        raise LimitError(_("%(field)s must be at most %(max)s.")
                         % {"field": label, "max": f"{MAX_LIMIT:,}"})
    return amount.quantize(Decimal("0.01"))


@dataclass(frozen=True)
class SpendLine:
    """Month-to-date spend against one limit, as the pages show it."""

    month: date
    spent: Decimal
    limit: Decimal | None
    currency: str

    @property
    def left(self) -> Decimal | None:
        left = left_of(self.limit, self.spent)
        return None if left is None else max(left, ZERO)

    @property
    def percent(self) -> int | None:
        return percent_of(self.limit, self.spent)

    @property
    def status(self) -> str:
        """"none" (no limit), "ok", "near" (>= 80 %) or "over" (>= 100 %)."""
        percent = self.percent
        if percent is None:
            return "none"
        if percent >= 100:
            return "over"
        return "near" if percent >= NEAR_PERCENT else "ok"
