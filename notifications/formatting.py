"""Money, dates and times in a reader's language (Babel), for e-mails and the message center.

Payload amounts are strings ("123.45"); they become Decimal here, never float.
"""

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal

from credits.templatetags.money import format_money

# The locale whose conventions a language's readers expect.
LOCALES = {"en": "en_US", "fr": "fr_FR"}


def locale_for(language: str | None) -> str:
    return LOCALES.get((language or "en")[:2], "en_US")


def to_decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def money(value, currency: str, language: str | None) -> str:
    amount = to_decimal(value)
    if amount is None:
        return ""
    # The money filter of the billing pages, so e-mails and pages agree.
    return format_money(amount, currency or "USD", locale_for(language))


def number(value, language: str | None) -> str:
    amount = to_decimal(value)
    if amount is None:
        return ""
    return format_decimal(amount, locale=locale_for(language))


def long_date(value, language: str | None) -> str:
    """'2026-05-03' -> 'May 3, 2026' / '3 mai 2026'."""
    if not value:
        return ""
    try:
        day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    except ValueError:
        return str(value)
    return format_date(day, format="long", locale=locale_for(language))


def date_time(value, language: str | None) -> str:
    """An ISO instant in UTC, as the reader writes it, with 'UTC' after it."""
    if not value:
        return ""
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = format_datetime(moment, format="medium", tzinfo=UTC, locale=locale_for(language))
    return f"{text} UTC"


def month(value, language: str | None) -> str:
    """'2026-05' -> 'May 2026' / 'mai 2026'."""
    try:
        first = date.fromisoformat(f"{str(value)[:7]}-01")
    except ValueError:
        return str(value or "")
    return format_date(first, format="LLLL y", locale=locale_for(language))
