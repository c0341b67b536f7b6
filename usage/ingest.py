"""Reading call rows from every source into one shape (no database).

Sources: Graph `pstnCallLogRow` JSON (the API, a JSON file: a page `{"value": [...]}` or a
list), Microsoft's PSTN usage export CSV (domain/pstn-export-columns.csv), and the export
zip holding such CSVs. Each row becomes a `CallRow` or a dict of errors naming the field
(Graph's field name) and the reason.
"""

import csv
import io
import json
import zipfile
import zlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

MAX_ROWS_PER_BATCH = 1000
MAX_DURATION_S = 7 * 24 * 3600
FUTURE_TOLERANCE = timedelta(days=1)
MIN_YEAR, MAX_YEAR = 2000, 2999
# An export zip is read into memory: refuse one that unpacks to more than this (zip bomb).
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

# Graph string fields: name -> max length.
_TEXT_FIELDS = {
    "callId": 128,
    "conferenceId": 128,
    "userId": 64,
    "userPrincipalName": 128,
    "userDisplayName": 128,
    "calleeNumber": 64,
    "callerNumber": 64,
    "destinationContext": 16,
    "destinationName": 100,
    "licenseCapability": 32,
    "inventoryType": 32,
    "operator": 64,
    "callDurationSource": 16,
}


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


class FileError(Exception):
    """The file cannot be read at all (exit code 2 of import_pstn_calls)."""


def parse_datetime(value) -> datetime:
    if not isinstance(value, str) or not value:
        raise ValueError("expected an ISO 8601 date and time")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"expected an ISO 8601 date and time, got {value[:40]!r}") from None
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
            raise ValueError("expected a number") from None
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
        raise ValueError("expected a whole number of seconds")
    if number < 0 or number > MAX_DURATION_S:
        raise ValueError(f"must be from 0 to {MAX_DURATION_S}")
    return number


def parse_row(row, now: datetime) -> tuple[CallRow | None, dict[str, str]]:
    """One Graph-shaped dict -> (CallRow, {}) or (None, {field: reason})."""
    if not isinstance(row, dict):
        return None, {"row": "expected a JSON object"}
    errors: dict[str, str] = {}
    get = row.get
    graph_id = get("id")
    if not isinstance(graph_id, str) or not graph_id.strip():
        errors["id"] = "required: the unique id of the usage record"
        graph_id = ""
    elif len(graph_id) > 64:
        errors["id"] = "at most 64 characters"
    elif "\x00" in graph_id:
        errors["id"] = "contains a NUL character"
    graph_id = graph_id.strip()
    texts = {}
    for name, max_len in _TEXT_FIELDS.items():
        value = get(name)
        if value is None:
            texts[name] = ""
        elif value.__class__ is str and len(value) <= max_len and "\x00" not in value:
            texts[name] = value.strip()  # the common case first: one test per field
        elif not isinstance(value, str):
            errors[name] = "expected a string"
        elif len(value) > max_len:
            errors[name] = f"at most {max_len} characters"
        elif "\x00" in value:
            # PostgreSQL text cannot hold NUL: refuse the row, not the whole batch.
            errors[name] = "contains a NUL character"
        else:
            texts[name] = value.strip()
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
    call_type = get("callType")
    if not isinstance(call_type, str) or not call_type.strip():
        errors["callType"] = "required"
        call_type = ""
    elif len(call_type) > 32:
        errors["callType"] = "at most 32 characters"
    elif "\x00" in call_type:
        errors["callType"] = "contains a NUL character"
    codes = {}
    for name, size in (("usageCountryCode", 2), ("tenantCountryCode", 2), ("currency", 3)):
        value = get(name)
        if value is None or value == "":
            codes[name] = ""
        elif value.__class__ is str and len(value) == size and value.isascii() \
                and value.isalpha():
            codes[name] = value.upper()
        elif not isinstance(value, str) or len(value.strip()) != size \
                or not (value.strip().isascii() and value.strip().isalpha()):
            # ASCII only: "ß".upper() is "SS", which would not fit the column.
            errors[name] = f"expected {size} letters"
        else:
            codes[name] = value.strip().upper()
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
        call_type.strip(), texts["callerNumber"], texts["calleeNumber"],
        codes["usageCountryCode"], codes["tenantCountryCode"], texts["destinationContext"],
        texts["destinationName"], texts["inventoryType"], texts["operator"],
        texts["callDurationSource"], codes["currency"], money["charge"],
        money["connectionCharge"], texts["licenseCapability"],
    ), {}


# --- files --------------------------------------------------------------------------------


def export_row_to_graph(row: dict) -> dict:
    """A row of Microsoft's PSTN export CSV as a Graph pstnCallLogRow dict."""
    graph = {}
    for column, field in EXPORT_COLUMNS:
        value = row.get(column)
        graph[field] = value if value != "" else None
    return graph


def rows_from_export_csv(text: str) -> list[dict]:
    try:
        return _rows_from_export_csv(text)
    except csv.Error as exc:  # e.g. a field over the csv module's size limit
        raise FileError(f"not a readable CSV file: {exc}") from None


def _rows_from_export_csv(text: str) -> list[dict]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if header != EXPORT_HEADER:
        missing = [c for c in EXPORT_HEADER if c not in header]
        raise FileError(
            "not a PSTN usage export: the header must be the columns of Microsoft's export "
            f"in order ({', '.join(EXPORT_HEADER)})"
            + (f"; missing: {', '.join(missing)}" if missing else "")
        )
    reader.fieldnames = header
    return [export_row_to_graph(row) for row in reader]


def rows_from_json(data) -> list:
    if isinstance(data, dict) and isinstance(data.get("value"), list):
        return data["value"]
    if isinstance(data, list):
        # A list of rows, or a list of Graph pages.
        if data and all(isinstance(p, dict) and isinstance(p.get("value"), list) for p in data):
            return [row for page in data for row in page["value"]]
        return data
    raise FileError('expected a Graph page {"value": [...]} or a list of rows')


def rows_from_file(name: str, content: bytes) -> list:
    """Every row of a CSV export, an export zip or a Graph JSON file, as Graph dicts.
    Raises FileError when the file cannot be read at all."""
    if zipfile.is_zipfile(io.BytesIO(content)):
        rows: list = []
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                members = sorted(n for n in archive.namelist() if n.lower().endswith(".csv"))
                if not members:
                    raise FileError("the zip holds no .csv file")
                if sum(archive.getinfo(m).file_size for m in members) > MAX_UNZIPPED_BYTES:
                    raise FileError("the zip unpacks to more than 1 GB; split the export")
                for member in members:
                    rows.extend(rows_from_export_csv(_text(archive.read(member))))
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise FileError(f"damaged zip: {exc}") from None
        except (NotImplementedError, RuntimeError) as exc:  # encrypted, unknown compression
            raise FileError(f"unsupported zip: {exc}") from None
        return rows
    text = _text(content)
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise FileError(f"not valid JSON: {exc}") from None
        except RecursionError:
            raise FileError("not valid JSON: nested too deeply") from None
        return rows_from_json(data)
    return rows_from_export_csv(text)


def _text(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileError("the file is not UTF-8 text") from None
