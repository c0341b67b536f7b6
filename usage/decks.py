"""Reading and writing rate deck CSV files (domain/rate-deck-format.md).

Pure: text in, `rating.Rate` rows and per-line errors out. Line numbers count the header
as line 1, as a spreadsheet shows them.
"""

import csv
import io
import re
from collections.abc import Iterable
from datetime import date
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext as _

from credits.platform import csvsafe
from credits.platform.text import TEXT_PROBLEM_WORDS, text_problem

from . import rating

COLUMNS = [
    "direction",
    "prefix",
    "destination",
    "country",
    "number_type",
    "rate_per_minute",
    "connection_fee",
    "first_increment_s",
    "next_increment_s",
    "currency",
    "effective_from",
]
MAX_INCREMENT_S = 3600
# The most a row may ask; see usage.rating's bounds.
MAX_PER_COLUMN = {
    "rate_per_minute": rating.MAX_RATE_PER_MINUTE,
    "connection_fee": rating.MAX_CONNECTION_FEE,
}
_PREFIX = re.compile(r"^[1-9][0-9]{0,14}$")
_ISO2 = re.compile(r"^[A-Z]{2}$")


class DeckError(Exception):
    """The file cannot be read as a deck at all (encoding, header, a line the CSV reader
    cannot read)."""


def _decimal(value: str, field: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(_("%(field)s: %(value)r is not a number") % {
            "field": field, "value": value}) from None
    if not number.is_finite():
        raise ValueError(_("%(field)s: %(value)r is not a number") % {
            "field": field, "value": value})
    if number < 0:
        raise ValueError(_("%(field)s: must not be negative") % {"field": field})
    if number > MAX_PER_COLUMN[field]:
        raise ValueError(_("%(field)s: must be at most %(max)s") % {
            "field": field, "max": MAX_PER_COLUMN[field]})
    if number.as_tuple().exponent < -5:
        raise ValueError(_("%(field)s: at most 5 decimal places") % {"field": field})
    return number


def _increment(value: str, field: str) -> int:
    # ASCII only: "²".isdigit() is true, and int("²") raises.
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_INCREMENT_S:
        raise ValueError(_("%(field)s: a whole number of seconds from 1 to %(max)s") % {
            "field": field, "max": MAX_INCREMENT_S})
    return int(value)


def parse_row(row: dict, currency: str) -> rating.Rate:
    """One CSV row -> a Rate, or ValueError naming the field and the reason."""
    # A downloaded deck quotes text a spreadsheet would take for a formula: undo that.
    get = {k: csvsafe.restore((row.get(k) or "").strip()) for k in COLUMNS}
    for name, value in get.items():
        problem = text_problem(value)
        if problem:
            # Refused here, with the line, rather than by the database with the whole file.
            raise ValueError(_("%(field)s: %(reason)s") % {
                "field": name, "reason": TEXT_PROBLEM_WORDS[problem]})
    if get["direction"] not in rating.DIRECTIONS:
        raise ValueError(_("direction: must be one of %(choices)s") % {
            "choices": ", ".join(rating.DIRECTIONS)})
    if not _PREFIX.match(get["prefix"]):
        raise ValueError(_("prefix: 1 to 15 digits of an E.164 number, without +"))
    if not get["destination"] or len(get["destination"]) > 100:
        raise ValueError(_("destination: required, at most 100 characters"))
    if not _ISO2.match(get["country"]):
        raise ValueError(_("country: an ISO 3166 alpha-2 code such as FR"))
    if get["number_type"] not in rating.NUMBER_TYPES:
        raise ValueError(_("number_type: must be one of %(choices)s") % {
            "choices": ", ".join(rating.NUMBER_TYPES)})
    rate = _decimal(get["rate_per_minute"], "rate_per_minute")
    fee = _decimal(get["connection_fee"], "connection_fee")
    first = _increment(get["first_increment_s"], "first_increment_s")
    nxt = _increment(get["next_increment_s"], "next_increment_s")
    if get["currency"] != currency:
        raise ValueError(_("currency: %(got)r, but the billing currency is %(cur)s") % {
            "got": get["currency"], "cur": currency})
    try:
        effective = date.fromisoformat(get["effective_from"])
    except ValueError:
        raise ValueError(_("effective_from: a date such as 2026-01-01")) from None
    return rating.Rate(get["direction"], get["prefix"], get["destination"], get["country"],
                       get["number_type"], rate, fee, first, nxt, currency, effective)


def parse_deck(data: bytes | str, currency: str) -> tuple[list[rating.Rate],
                                                           list[tuple[int, str]]]:
    """All rows and the errors of the bad ones, as (line number, reason)."""
    if isinstance(data, bytes):
        try:
            # A lone surrogate written as UTF-8 would encode it (ED A0 80 .. ED BF BF, what
            # a broken exporter writes) is read as that surrogate, so that the line holding
            # it is refused by name (credits.platform.text.text_problem) and the others still load.
            data = data.decode("utf-8-sig", "surrogatepass")
        except UnicodeDecodeError as exc:
            raise DeckError(_("Line %(n)s: the file is not UTF-8 text.") % {
                "n": data[:exc.start].count(b"\n") + 1}) from exc
    reader = csv.DictReader(io.StringIO(data))
    try:
        return _parse_rows(reader, currency)
    except csv.Error as exc:
        # A line the reader cannot take (a value over the csv module's field limit of
        # 131,072 characters): the file is refused, naming the line, and nothing is loaded.
        line = reader.reader.line_num
        if "field limit" in str(exc):
            message = _("Line %(n)s: a value is longer than %(max)s characters.") % {
                "n": line, "max": csv.field_size_limit()}
        else:
            message = _("Line %(n)s: not readable as CSV (%(error)s).") % {
                "n": line, "error": exc}
        raise DeckError(message) from None


def _parse_rows(reader: csv.DictReader, currency: str) -> tuple[list[rating.Rate],
                                                                list[tuple[int, str]]]:
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DeckError(_("Line 1: missing columns: %(cols)s") % {"cols": ", ".join(missing)})
    reader.fieldnames = header
    rates: list[rating.Rate] = []
    errors: list[tuple[int, str]] = []
    seen: dict[tuple, int] = {}
    for row in reader:
        line = reader.line_num
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # blank line
        if None in row:
            errors.append((line, _("too many values")))
            continue
        try:
            rate = parse_row(row, currency)
        except ValueError as exc:
            errors.append((line, str(exc)))
            continue
        key = (rate.direction, rate.prefix, rate.effective_from)
        if key in seen:
            errors.append((line, _("same direction, prefix and effective_from as line %(n)s")
                           % {"n": seen[key]}))
            continue
        seen[key] = line
        rates.append(rate)
    return rates, errors


def write_deck(rates: Iterable, out) -> None:
    """Write rows (rating.Rate or usage.models.Rate) in the format they were loaded from."""
    writer = csvsafe.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rates:
        writer.writerow([
            r.direction, r.prefix, r.destination, r.country, r.number_type,
            f"{r.rate_per_minute:.5f}", f"{r.connection_fee:.2f}"
            if r.connection_fee == r.connection_fee.quantize(Decimal("0.01"))
            else f"{r.connection_fee.normalize()}",
            r.first_increment_s, r.next_increment_s, r.currency,
            r.effective_from.isoformat(),
        ])
