"""Reading call rows from every source into one shape (no database).

Sources: Graph `pstnCallLogRow` JSON (the API, a JSON file: a page `{"value": [...]}` or a
list), Microsoft's PSTN usage export CSV (domain/pstn-export-columns.csv), and the export
zip holding such CSVs. Each row becomes a `CallRow` or a dict of errors naming the field
(Graph's field name) and the reason.

Two rules keep one bad row from costing the batch or a customer:
- every text a row brings passes `text_problem` (NUL, lone UTF-16 surrogates): such a row
  is refused with the field named, instead of failing the whole batch in the database;
- GUID-shaped ids are stored in one form (`canonical_id`), so `AB12...`, `ab12...` and
  `{ab12...}` are one call, charged once.
"""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from credits.platform.text import LONE_SURROGATE, NUL_CHARACTER, text_problem  # noqa: F401

# Rows per batch, each batch one transaction. The API takes Graph's pages of up to
# MAX_ROWS_PER_BATCH rows; file imports (import_pstn_calls, the upload page) commit
# FILE_ROWS_PER_BATCH rows at a time: measured, 10,000-row batches import about 1.5 times
# as fast as 1,000-row ones, and each stays atomic and durable. The credit account is
# locked only for the charge at the end of a batch (usage.services.calls_ingest), so a big
# batch does not hold it any longer than a small one would for its share.
MAX_ROWS_PER_BATCH = 1000
FILE_ROWS_PER_BATCH = 10_000
MAX_DURATION_S = 7 * 24 * 3600
FUTURE_TOLERANCE = timedelta(days=1)
MIN_YEAR, MAX_YEAR = 2000, 2999
# The most an export zip may unpack to (checked while it is read: usage.import_files).
MAX_UNZIPPED_BYTES = 1024 * 1024 * 1024

# domain/pstn-export-columns.csv, in order, and the Graph field each one fills.
EXPORT_COLUMNS = [
    ("UsageId", "id"),
    ("Call ID", "callId"),
    ("Conference ID", "conferenceId"),
    ("User Location", "usageCountryCode"),
    ("AAD ObjectId", "userId"),
    ("UPN", "userPrincipalName"),
    ("User Display Name", "userDisplayName"),
    ("Caller ID", "callerNumber"),
    ("Call Type", "callType"),
    ("Number Type", "inventoryType"),
    ("Domestic/International", "destinationContext"),
    ("Destination Dialed", "destinationName"),
    ("Destination Number", "calleeNumber"),
    ("Start Time", "startDateTime"),
    ("End Time", "endDateTime"),
    ("Duration Seconds", "duration"),
    ("Connection Fee", "connectionCharge"),
    ("Charge", "charge"),
    ("Currency", "currency"),
    ("Capability", "licenseCapability"),
]
EXPORT_HEADER = [c for c, _g in EXPORT_COLUMNS]
# Columns an import also reads when a file has them (never written to Microsoft's format):
# Graph's otherPartyCountryCode, which the report shows under Microsoft's name for it.
EXTRA_IMPORT_COLUMNS = [("From country or region", "otherPartyCountryCode")]
IMPORT_COLUMNS = [*EXPORT_COLUMNS, *EXTRA_IMPORT_COLUMNS]


def header_key(name: str) -> str:
    """A header cell as compared: without a BOM or surrounding spaces, in any case."""
    return name.replace("\ufeff", "").strip().casefold()


# The longest value each Graph text field may hold: Microsoft's own types, kept here and
# nowhere else. Export columns follow "Fields in the export" (SQL Server types, nvarchar(n))
# of Microsoft's PSTN usage report page,
# https://learn.microsoft.com/microsoftteams/teams-analytics-and-reports/pstn-usage-report
# (Call ID and Conference ID nvarchar(64), UPN and User Display Name nvarchar(128), Caller ID
# nvarchar(128), Call Type nvarchar(32), Number Type nvarchar(16), Domestic/International
# nvarchar(16), Destination Dialed nvarchar(64), Destination Number nvarchar(32), Capability
# nvarchar(32)); UsageId and AAD ObjectId are uniqueidentifier (36 characters, 38 with
# braces). Fields found only in Graph's pstnCallLogRow
# (https://learn.microsoft.com/graph/api/resources/callrecords-pstncalllogrow) are Strings
# without a documented length: `operator` gets a generous bound.
FIELD_LIMITS = {
    "id": 64,
    "callId": 64,
    "conferenceId": 64,
    "userId": 64,
    "userPrincipalName": 128,
    "userDisplayName": 128,
    "callerNumber": 128,
    "callType": 32,
    "inventoryType": 16,
    "destinationContext": 16,
    "destinationName": 64,
    "calleeNumber": 32,
    "licenseCapability": 32,
    "operator": 64,
}
# Graph's pstnCallDurationSource enum (the same page).
CALL_DURATION_SOURCES = ("microsoft", "operator")
# Graph string fields read as text: name -> max length (id and callType are checked apart).
_TEXT_FIELDS = {name: size for name, size in FIELD_LIMITS.items()
                if name not in ("id", "callType")}
# ISO codes: name -> letters (ISO 3166-1 alpha-2 countries, ISO 4217 currency).
_CODE_FIELDS = (("usageCountryCode", 2), ("tenantCountryCode", 2), ("currency", 3),
                ("otherPartyCountryCode", 2))


class CallRow(NamedTuple):
    graph_id: str
    call_id: str
    conference_id: str
    user_id: str
    upn: str
    user_display_name: str
    start: datetime
    end: datetime | None
    duration: int
    call_type: str
    caller: str
    callee: str
    usage_country: str
    tenant_country: str
    destination_context: str
    destination_name: str
    inventory_type: str
    operator: str
    call_duration_source: str
    currency: str
    reported_charge: Decimal | None
    reported_connection_charge: Decimal | None
    reported_capability: str
    other_party_country: str = ""


class FileError(Exception):
    """The file cannot be read at all (exit code 2 of import_pstn_calls)."""


def _text_error(value, max_len: int) -> str | None:
    """The error of a text field of a row, or None."""
    if not isinstance(value, str):
        return "expected a string"
    if len(value) > max_len:
        return f"at most {max_len} characters"
    return text_problem(value)


# A GUID as Microsoft writes one (8-4-4-4-12 hex digits, either case), without its braces.
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def canonical_id(value: str) -> str:
    """A GUID-shaped id (optionally in braces) in lower case without braces; any other id
    as it is. Graph and Microsoft's CSV export may spell one GUID in different cases, and
    the id is the idempotency key: `id`/`UsageId`, `callId`, Direct Routing's
    `correlationId` all go through here."""
    if len(value) == 38 and value[0] == "{" and value[-1] == "}":
        inner = value[1:-1]
    elif len(value) == 36:
        inner = value
    else:
        return value
    return inner.lower() if _GUID.fullmatch(inner) else value


def id_spellings(canonical: str) -> tuple[str, ...]:
    """The forms a stored row may hold the canonical id `canonical` in: rows stored before
    ids were made canonical kept the GUID as it came (upper case, braces). Mixed-case
    spellings are not guessed; migration 0002 reports any collision that exists."""
    if len(canonical) == 36 and _GUID.fullmatch(canonical) and canonical.islower():
        upper = canonical.upper()
        return canonical, upper, "{" + canonical + "}", "{" + upper + "}"
    return (canonical,)


def parse_datetime(value) -> datetime:
    if not isinstance(value, str) or not value:
        raise ValueError("expected an ISO 8601 date and time")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        # No date holds a NUL or a surrogate: only a refused value needs the check.
        raise ValueError(text_problem(value)
                         or f"expected an ISO 8601 date and time, got {value[:40]!r}") from None
    if parsed.tzinfo is None:
        # Microsoft's export writes UTC; a time without offset is read as UTC.
        parsed = parsed.replace(tzinfo=UTC)
    # Years 1 and 9999 with an offset fall outside what a datetime holds in UTC, and
    # nothing near them is a call: refuse them here rather than overflow later.
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise ValueError(f"the year must be from {MIN_YEAR} to {MAX_YEAR}")
    return parsed.astimezone(UTC)


_MONEY_LIMIT = Decimal("1e10")
_MONEY_PLACES = Decimal("0.00001")
_MONEY_ZERO = Decimal("0.00000")


def _decimal_or_none(value) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("expected a number")
    if value == 0 and isinstance(value, int | float):
        return _MONEY_ZERO  # Graph reports 0.0 for most rows: no Decimal to build
    if isinstance(value, int | float):
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(text_problem(value) or "expected a number") from None
    else:
        raise ValueError("expected a number")
    if not number.is_finite() or abs(number) >= _MONEY_LIMIT:
        raise ValueError("expected a finite number below 10^10")
    return number.quantize(_MONEY_PLACES)


def _duration(value) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a whole number of seconds")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise ValueError(isinstance(value, str) and text_problem(value)
                         or "expected a whole number of seconds")
    if number < 0 or number > MAX_DURATION_S:
        raise ValueError(f"must be from 0 to {MAX_DURATION_S}")
    return number


def parse_row(row, now: datetime) -> tuple[CallRow | None, dict[str, str]]:
    """One Graph-shaped dict -> (CallRow, {}) or (None, {field: reason})."""
    if not isinstance(row, dict):
        return None, {"row": "expected a JSON object"}
    errors: dict[str, str] = {}
    get = row.get
    texts = {}
    graph_id = get("id")
    if not isinstance(graph_id, str) or not graph_id.strip():
        errors["id"] = "required: the unique id of the usage record"
    elif len(graph_id) > FIELD_LIMITS["id"]:
        errors["id"] = f"at most {FIELD_LIMITS['id']} characters"
    else:
        texts["id"] = graph_id.strip()
    call_type = get("callType")
    if not isinstance(call_type, str) or not call_type.strip():
        errors["callType"] = "required"
    elif len(call_type) > FIELD_LIMITS["callType"]:
        errors["callType"] = f"at most {FIELD_LIMITS['callType']} characters"
    else:
        texts["callType"] = call_type.strip()
    for name, max_len in _TEXT_FIELDS.items():
        value = get(name)
        if value is None:
            texts[name] = ""
        elif value.__class__ is str and len(value) <= max_len:
            texts[name] = value.strip()  # the common case first: checked below
        elif (error := _text_error(value, max_len)) is not None:
            errors[name] = error
        else:
            texts[name] = value.strip()  # a str subclass, checked already
    # Every text field through text_problem, at once: a NUL or a lone surrogate in any part
    # is one in the whole (the hot path of ingestion). Only a row that has one looks for
    # the field that has it.
    if text_problem("".join(texts.values())) is not None:
        for name, value in list(texts.items()):
            problem = text_problem(value)
            if problem is not None:
                errors[name] = problem
                del texts[name]
    graph_id = canonical_id(texts.get("id", ""))
    call_type = texts.get("callType", "")
    if "callId" in texts:
        texts["callId"] = canonical_id(texts["callId"])
    start = end = None
    try:
        start = parse_datetime(get("startDateTime"))
        if start > now + FUTURE_TOLERANCE:
            errors["startDateTime"] = "is in the future"
    except ValueError as exc:
        errors["startDateTime"] = str(exc)
    if get("endDateTime") not in (None, ""):
        try:
            end = parse_datetime(get("endDateTime"))
            if start is not None and end < start:
                errors["endDateTime"] = "is before startDateTime"
        except ValueError as exc:
            errors["endDateTime"] = str(exc)
    duration = 0
    try:
        duration = _duration(get("duration"))
    except ValueError as exc:
        errors["duration"] = str(exc)
    codes = {}
    for name, size in _CODE_FIELDS:
        value = get(name)
        if value is None or value == "":
            codes[name] = ""
        elif value.__class__ is str and len(value) == size and value.isascii() \
                and value.isalpha():
            codes[name] = value.upper()  # ASCII letters: text by construction
        elif not isinstance(value, str):
            errors[name] = f"expected {size} letters"
        elif (problem := text_problem(value)) is not None:
            errors[name] = problem
        elif len(value.strip()) != size \
                or not (value.strip().isascii() and value.strip().isalpha()):
            # ASCII only: "ß".upper() is "SS", which would not fit the column.
            errors[name] = f"expected {size} letters"
        else:
            codes[name] = value.strip().upper()
    source = get("callDurationSource")
    if source is None or source == "":
        source = ""
    elif not isinstance(source, str) or source.strip().lower() not in CALL_DURATION_SOURCES:
        errors["callDurationSource"] = (isinstance(source, str) and text_problem(source)
                                        or "expected microsoft or operator")
    else:
        source = source.strip().lower()
    money = {}
    for name in ("charge", "connectionCharge"):
        try:
            money[name] = _decimal_or_none(get(name))
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        return None, errors
    return CallRow(
        graph_id, texts["callId"], texts["conferenceId"], texts["userId"],
        texts["userPrincipalName"], texts["userDisplayName"], start, end, duration,
        call_type, texts["callerNumber"], texts["calleeNumber"],
        codes["usageCountryCode"], codes["tenantCountryCode"], texts["destinationContext"],
        texts["destinationName"], texts["inventoryType"], texts["operator"],
        source, codes["currency"], money["charge"],
        money["connectionCharge"], texts["licenseCapability"],
        codes["otherPartyCountryCode"],
    ), {}


# --- files --------------------------------------------------------------------------------


def export_row_to_graph(row: dict) -> dict:
    """A row of Microsoft's PSTN export CSV as a Graph pstnCallLogRow dict."""
    graph = {}
    for column, field in EXPORT_COLUMNS:
        value = row.get(column)
        graph[field] = value if value != "" else None
    return graph


def rows_from_json(data) -> list:
    if isinstance(data, dict) and isinstance(data.get("value"), list):
        return data["value"]
    if isinstance(data, list):
        # A list of rows, or a list of Graph pages.
        if data and all(isinstance(p, dict) and isinstance(p.get("value"), list) for p in data):
            return [row for page in data for row in page["value"]]
        return data
    raise FileError('expected a Graph page {"value": [...]} or a list of rows')
