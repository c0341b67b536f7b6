"""`{{ value|num }}`: a count in the reader's language, with its thousands separators
("15,000" in English, "15 000" in French); `{{ value|num:1 }}` keeps one decimal."""

from babel.numbers import format_decimal
from django import template
from django.utils.translation import get_language, to_locale

register = template.Library()


@register.filter(name="num")
def num(value, digits=0):
    if value is None or value == "":
        return ""
    try:
        digits = int(digits)
    except (TypeError, ValueError):
        digits = 0
    fmt = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    return format_decimal(value, format=fmt, locale=to_locale(get_language() or "en"))
