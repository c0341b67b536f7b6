"""`{% load money %}` then `{{ amount|money:currency }}`: an amount in the person's
language (Babel), e.g. "$1,234.50" in English and "1 234,50 $US" in French."""

from decimal import Decimal, InvalidOperation

from babel import Locale
from babel.numbers import format_currency
from django import template
from django.utils.translation import get_language, to_locale

register = template.Library()


def format_money(amount, currency: str, language: str | None = None) -> str:
    if amount is None or amount == "":
        return ""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return str(amount)
    locale = to_locale(language or get_language() or "en")
    try:
        return format_currency(value, currency or "USD", locale=locale)
    except Exception:  # an unknown locale: fall back to English rather than fail a page
        return format_currency(value, currency or "USD", locale="en")


@register.filter(name="money")
def money(amount, currency="USD"):
    return format_money(amount, currency)


@register.filter(name="money_whole")
def money_whole(amount, currency="USD"):
    """Whole amounts (recharge settings) without the cents."""
    if amount is None or amount == "":
        return ""
    locale = to_locale(get_language() or "en")
    try:
        return format_currency(Decimal(str(amount)), currency or "USD", locale=locale,
                               format_type="standard", currency_digits=False,
                               format="¤#,##0" if locale.startswith("en") else "#,##0 ¤")
    except Exception:
        return format_money(amount, currency)


RATE_DIGITS = 4


def format_rate(amount, currency: str, language: str | None = None) -> str:
    """A price per minute: always 4 decimals ("$0.0240", "0,0300 $US"), the precision of
    the rate decks, so rates line up and compare in every table."""
    if amount is None or amount == "":
        return ""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return str(amount)
    locale = to_locale(language or get_language() or "en")
    try:
        pattern = Locale.parse(locale).currency_formats["standard"].pattern
    except Exception:
        locale, pattern = "en", Locale.parse("en").currency_formats["standard"].pattern
    pattern = pattern.split(";")[0].replace("0.00", "0." + "0" * RATE_DIGITS)
    return format_currency(value, currency or "USD", format=pattern, locale=locale,
                           currency_digits=False)


@register.filter(name="rate")
def rate(amount, currency="USD"):
    return format_rate(amount, currency)
