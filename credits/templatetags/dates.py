"""`{% load dates %}`: one rule for every date a page shows, in the reader's language.

- `{{ moment|when }}`: a date and time, e.g. "Nov 3, 2026, 2:05 PM" in English and
  "3 nov. 2026, 14:05" in French, in UTC (the time zone every page and export uses; the
  table headers say so). The month is written out, so 03/11 and 11/03 cannot be confused.
- `{{ day|day }}`: the date alone, the same way ("Nov 3, 2026", "3 nov. 2026").

Tables, details and home cards use these two filters and nothing else; machine-readable
values (exports, API, <time datetime>) stay ISO 8601.
"""

from datetime import UTC, date, datetime

from babel import Locale
from babel.dates import format_date, format_time
from django import template
from django.utils.translation import get_language, to_locale

register = template.Library()


def _locale(language: str | None = None) -> str:
    return to_locale(language or get_language() or "en")


def format_day(value, language: str | None = None) -> str:
    if not value:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(UTC).date() if value.tzinfo else value.date()
    return format_date(value, "medium", locale=_locale(language))


def format_when(value, language: str | None = None) -> str:
    if not value:
        return ""
    if not isinstance(value, datetime):
        return format_day(value, language) if isinstance(value, date) else str(value)
    if value.tzinfo:
        value = value.astimezone(UTC)
    locale = _locale(language)
    # A "medium" date and a "short" time, joined by the language's own pattern.
    return str(Locale.parse(locale).datetime_formats["medium"]).format(
        format_time(value, "short", locale=locale), format_date(value, "medium", locale=locale))


@register.filter(name="when")
def when(value):
    return format_when(value)


@register.filter(name="day")
def day(value):
    return format_day(value)
