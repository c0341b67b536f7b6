"""`{% load countries %}` then `{{ code|country_name }}`: a country or region by name in the
page's language (Babel), e.g. "GB" -> "United Kingdom" in English, "Royaume-Uni" in French.
An unknown code is shown as it is."""

from django import template

from ..forms.licenses import country_name as _country_name

register = template.Library()


@register.filter(name="country_name")
def country_name(code) -> str:
    return _country_name(str(code or "").upper())
