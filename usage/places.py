"""Country names of call destinations, from Babel's territory names (CLDR).

Stored names are canonical, in English as Microsoft writes them ("United States",
"France"); pages show them in the reader's language. A name Microsoft gave that is not the
English name of the call's country (a region, "Mobile") is shown as given.
"""

from babel import Locale, UnknownLocaleError

_TERRITORIES: dict[str, dict] = {}


def _territories(locale: str) -> dict:
    names = _TERRITORIES.get(locale)
    if names is None:
        try:
            names = dict(Locale.parse(locale).territories)
        except (UnknownLocaleError, ValueError):
            names = dict(Locale("en").territories)
        _TERRITORIES[locale] = names
    return names


def country_name(code: str, locale: str = "en") -> str:
    """The name of ISO 3166 alpha-2 `code` ("" when unknown or empty)."""
    if not code:
        return ""
    return _territories(locale).get(code.upper(), "")


def destination_label(name: str, country: str, locale: str) -> str:
    """A stored destination as a page shows it: a canonical country name (or none, with the
    country known) in the reader's language, any other name as it is."""
    if country and (not name or name == country_name(country)):
        return country_name(country, locale) or name
    return localized_name(name, locale)


_CODES_BY_NAME: dict[str, str] = {}


def localized_name(name: str, locale: str) -> str:
    """`name` in the reader's language when it is a canonical (English) country name, as it
    is otherwise (where no country is at hand: the report's destination sums)."""
    if not _CODES_BY_NAME:
        _CODES_BY_NAME.update({v: k for k, v in _territories("en").items()
                               if len(k) == 2 and k.isalpha()})
    code = _CODES_BY_NAME.get(name)
    return country_name(code, locale) if code else name
