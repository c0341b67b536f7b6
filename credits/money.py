"""The money rules, defined once: the account currency's places, zero, the bounds of an
amount a person may enter (one-time funding, both auto-recharge fields), and how such an
amount is read and rounded.

Forms, services, model constraints, selectors and messages all read them from here.
"""

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.utils.translation import gettext as _

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
# Whole units of the account currency (DESIGN.md section 4).
MIN_AMOUNT = Decimal(50)
MAX_AMOUNT = Decimal(100000)
# Longer than any amount within the bounds, even written "100,000.00".
AMOUNT_MAX_LENGTH = 12

# Digits 0-9 only. Python reads "５０", "١٠٠" and "1e5" as numbers, but an amount typed in
# another script or in exponent form is more likely a slip than meant: refuse it, naming
# the field, rather than charge or store a number the person did not see.
PLAIN_INTEGER = re.compile(r"[+-]?[0-9]+")
PLAIN_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
THOUSANDS = re.compile(r"[0-9]{1,3}(,[0-9]{3})+(\.[0-9]*)?")


def money(value) -> Decimal:
    """`value` in the account currency, rounded half up to the cent."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


class AmountError(ValueError):
    """An amount a person entered is refused; `message` names the field."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.message = message
        self.code = code


def _max_words() -> str:
    return f"{MAX_AMOUNT:,}"


def parse_whole_amount(value, *, label) -> Decimal:
    """A whole number of at least MIN_AMOUNT and at most MAX_AMOUNT, typed by a person
    ("1,000", "1 000" and a leading currency sign are fine) or passed as a number.
    Raises AmountError with a message naming `label`."""
    if isinstance(value, float):  # money is Decimal: a float has lost cents already
        raise TypeError(f"{label}: amount must be a Decimal, not float")
    invalid = AmountError(
        _("%(field)s: enter a whole number, for example 100.") % {"field": label}, "invalid")
    if isinstance(value, (Decimal, int)):
        amount = Decimal(value)
    else:
        text = str(value)
        if len(text.strip()) > AMOUNT_MAX_LENGTH:
            raise AmountError(_("%(field)s must be at most %(max)s.")
                              % {"field": label, "max": _max_words()}, "max")
        if "\x00" in text:
            raise invalid
        # Spaces (also no-break ones) group thousands in French: "1 000".
        text = "".join(ch for ch in text.strip().lstrip("$€£") if not ch.isspace())
        if "," in text:
            # Only as a thousands separator ("1,000"): "100,50" is 100.50 to a French
            # reader, and reading it as 10,050 would charge a hundred times too much.
            if not THOUSANDS.fullmatch(text):
                raise invalid
            text = text.replace(",", "")
        if not PLAIN_DECIMAL.fullmatch(text):
            if any(ch.isdigit() for ch in text) and not text.isascii():
                raise AmountError(_("%(field)s: type the number with the digits 0-9.")
                                  % {"field": label}, "not_ascii")
            raise invalid
        try:
            amount = Decimal(text)
        except InvalidOperation as exc:
            raise invalid from exc
    if not amount.is_finite() or amount != amount.to_integral_value():
        raise AmountError(_("%(field)s must be a whole number, without cents.")
                          % {"field": label}, "not_whole")
    if amount < MIN_AMOUNT:
        raise AmountError(_("%(field)s must be at least %(min)s.")
                          % {"field": label, "min": MIN_AMOUNT}, "min")
    if amount > MAX_AMOUNT:
        raise AmountError(_("%(field)s must be at most %(max)s.")
                          % {"field": label, "max": _max_words()}, "max")
    return amount.quantize(Decimal(1))
