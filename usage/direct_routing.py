"""Direct Routing call rows from every source into one shape (no database).

Sources (domain/graph-direct-routing-log-row.md):
- Graph `directRoutingLogRow` (callRecords getDirectRoutingCalls pages, a JSON file, and
  `POST /api/v1/direct-routing-calls`), with Graph's field names;
- Microsoft's export member `DirectRouting.calls.<UTC date>.csv`, whose 22 columns are those
  of "Exported Direct Routing usage report" on Microsoft's PSTN usage report page
  (learn.microsoft.com/microsoftteams/teams-analytics-and-reports/pstn-usage-report), read
  into the Graph names by `EXPORT_COLUMNS`.

Each row becomes a `DirectRoutingRow` or a dict of errors naming the field (Graph's name)
and the reason. Field limits are Microsoft's documented column types. Graph writes
`0001-01-01T00:00:00Z` (.NET's empty DateTimeOffset) for a time that does not apply, as in
its own example: that is read as no time.

`kind_of_row` and `rows_by_kind` tell a Graph `directRoutingLogRow` from a `pstnCallLogRow`
(by the page's `@odata.context`, else by fields only one of them has).
"""

import uuid
from datetime import datetime
from typing import NamedTuple

from .ingest import (
    FUTURE_TOLERANCE,
    MAX_DURATION_S,
    FileError,
    canonical_id,
    parse_datetime,
    text_problem,
)
from .masking import mask_number

PSTN = "pstn"
DIRECT_ROUTING = "direct_routing"
KIND_LABELS = {PSTN: "PSTN", DIRECT_ROUTING: "Direct Routing"}

# Microsoft's export, in order: (column, Graph field). Three columns have no Graph field in
# v1.0 and keep a name of their own: User country, Shared correlation ID (CSV only), and
# the Graph id, which the export does not carry.
EXPORT_COLUMNS = [
    ("CorrelationId", "correlationId"),
    ("AAD ObjectId", "userId"),
    ("UPN", "userPrincipalName"),
    ("Display Name", "userDisplayName"),
    ("User country", "userCountryCode"),
    ("Invite time", "inviteDateTime"),
    ("Start time", "startDateTime"),
    ("Failure time", "failureDateTime"),
    ("End time", "endDateTime"),
    ("Duration (seconds)", "duration"),
    ("Success", "successfulCall"),
    ("Caller Number", "callerNumber"),
    ("Callee Number", "calleeNumber"),
    ("Call type", "callType"),
    ("Azure region for Media", "mediaPathLocation"),
    ("Azure region for Signaling", "signalingLocation"),
    ("Final SIP code", "finalSipCode"),
    ("Final Microsoft subcode", "callEndSubReason"),
    ("Final SIP Phrase", "finalSipCodePhrase"),
    ("SBC FQDN", "trunkFullyQualifiedDomainName"),
    ("Media bypass", "mediaBypassEnabled"),
    ("Shared correlation ID", "sharedCorrelationId"),
]
EXPORT_HEADER = [c for c, _f in EXPORT_COLUMNS]
_BY_HEADER = {c.casefold(): f for c, f in EXPORT_COLUMNS}

# Text fields: Graph name -> the column's documented length (nvarchar(n); a GUID is 36, 38
# with braces). Graph's own types have no length; its rows are the same data.
_TEXT_FIELDS = {
    "correlationId": 64,
    "sharedCorrelationId": 64,
    "userId": 64,
    "userPrincipalName": 128,
    "userDisplayName": 128,
    "callerNumber": 32,
    "calleeNumber": 32,
    "callType": 32,
    "mediaPathLocation": 8,
    "signalingLocation": 8,
    "finalSipCodePhrase": 256,
    "trunkFullyQualifiedDomainName": 64,
}
_CODES = ("userCountryCode", "otherPartyCountryCode")
MAX_INT32 = 2**31 - 1

# Fields only a directRoutingLogRow has, and only a pstnCallLogRow has.
DR_ONLY = frozenset({
    "correlationId", "inviteDateTime", "failureDateTime", "successfulCall", "finalSipCode",
    "callEndSubReason", "finalSipCodePhrase", "trunkFullyQualifiedDomainName",
    "mediaBypassEnabled", "mediaPathLocation", "signalingLocation",
})
PSTN_ONLY = frozenset({
    "charge", "connectionCharge", "currency", "licenseCapability", "destinationContext",
    "destinationName", "usageCountryCode", "tenantCountryCode", "callId", "conferenceId",
    "inventoryType", "operator", "callDurationSource",
})

_LEG_NAMESPACE = uuid.UUID("5b0e7c55-6d8a-4f3e-9a39-d1f1a3c0b7e2")


class DirectRoutingRow(NamedTuple):
    graph_id: str
    leg_key: str
    correlation_id: str
    shared_correlation_id: str
    user_id: str
    upn: str
    user_display_name: str
    user_country: str
    start: datetime
    invite: datetime | None
    failure: datetime | None
    end: datetime | None
    duration: int
    successful: bool
    call_type: str
    caller: str
    callee: str
    media_region: str
    signaling_region: str
    final_sip_code: int | None
    final_subcode: int | None
    final_sip_phrase: str
    sbc_fqdn: str
    media_bypass: bool | None
    other_party_country: str


def leg_key(correlation_id: str, call_type: str, invite: datetime | None,
            start: datetime, upn: str) -> str:
    """One call leg's key from what Graph and the CSV export both carry. The numbers are
    left out: an export masks them in the countries that require it."""
    parts = (correlation_id, call_type.casefold(), invite.isoformat() if invite else "",
             start.isoformat(), upn.casefold())
    return str(uuid.uuid5(_LEG_NAMESPACE, "\x1f".join(parts)))


def _time(value) -> datetime | None:
    """A Graph or export time, None when absent or .NET's empty value (year 1)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().startswith("0001-01-01"):
        return None
    return parse_datetime(value)


_YES, _NO = {"yes", "true", "1", "success"}, {"no", "false", "0", "attempt"}


def _bool(value) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().casefold()
        if word in _YES:
            return True
        if word in _NO:
            return False
    raise ValueError("expected true or false (Yes or No)")


def _int(value, low: int, high: int, what: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected {what}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if not (digits.isascii() and digits.isdigit()):
            raise ValueError(text_problem(value) or f"expected {what}")
        value = int(text)
    if not isinstance(value, int):
        raise ValueError(f"expected {what}")
    if not low <= value <= high:
        raise ValueError(f"must be from {low} to {high}")
    return value


def parse_row(row, now: datetime) -> tuple[DirectRoutingRow | None, dict[str, str]]:
    """One Graph-shaped dict -> (DirectRoutingRow, {}) or (None, {field: reason})."""
    if not isinstance(row, dict):
        return None, {"row": "expected a JSON object"}
    errors: dict[str, str] = {}
    get = row.get
    texts: dict[str, str] = {}
    for name, max_len in _TEXT_FIELDS.items():
        value = get(name)
        if value is None:
            texts[name] = ""
        elif not isinstance(value, str):
            errors[name] = "expected a string"
        elif len(value) > max_len:
            errors[name] = f"at most {max_len} characters"
        elif (problem := text_problem(value)) is not None:
            errors[name] = problem
        else:
            texts[name] = value.strip()
    graph_id = get("id")
    if graph_id is not None and graph_id != "":
        if not isinstance(graph_id, str) or not graph_id.strip():
            errors["id"] = "expected a string"
        elif len(graph_id) > 64:
            errors["id"] = "at most 64 characters"
        elif (problem := text_problem(graph_id)) is not None:
            errors["id"] = problem
        else:
            graph_id = canonical_id(graph_id.strip())
    else:
        graph_id = ""
        if not texts.get("correlationId") and "correlationId" not in errors:
            errors["id"] = "required: the call's id or its correlationId"
    codes = {}
    for name in _CODES:
        value = get(name)
        if value is None or value == "":
            codes[name] = ""
        elif isinstance(value, str) and len(value.strip()) == 2 and value.strip().isascii() \
                and value.strip().isalpha():
            codes[name] = value.strip().upper()
        else:
            errors[name] = "expected 2 letters"
    times = {}
    for name in ("startDateTime", "inviteDateTime", "failureDateTime", "endDateTime"):
        try:
            times[name] = _time(get(name))
        except ValueError as exc:
            errors[name] = str(exc)
            times[name] = None
    start = times["startDateTime"] or times["inviteDateTime"] or times["failureDateTime"]
    if start is None and not any(n in errors for n in times):
        errors["startDateTime"] = "required: the call's start (or invite) time"
    elif start is not None and start > now + FUTURE_TOLERANCE:
        errors["startDateTime"] = "is in the future"
    end = times["endDateTime"]
    if end is not None and start is not None and end < start and "endDateTime" not in errors:
        errors["endDateTime"] = "is before startDateTime"
    numbers = {}
    for name, low, high, what in (
            ("duration", 0, MAX_DURATION_S, "a whole number of seconds"),
            ("finalSipCode", 0, 999, "a SIP response code"),
            ("callEndSubReason", -MAX_INT32 - 1, MAX_INT32, "a whole number")):
        try:
            numbers[name] = _int(get(name), low, high, what)
        except ValueError as exc:
            errors[name] = str(exc)
    flags = {}
    for name in ("successfulCall", "mediaBypassEnabled"):
        try:
            flags[name] = _bool(get(name))
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        return None, errors
    correlation = canonical_id(texts["correlationId"])
    key = leg_key(correlation, texts["callType"], times["inviteDateTime"], start,
                  texts["userPrincipalName"])
    successful = flags["successfulCall"]
    if successful is None:  # Microsoft always says; a platform posting rows may not
        successful = times["failureDateTime"] is None
    return DirectRoutingRow(
        graph_id or key, key, correlation, canonical_id(texts["sharedCorrelationId"]),
        canonical_id(texts["userId"]), texts["userPrincipalName"], texts["userDisplayName"],
        codes["userCountryCode"], start, times["inviteDateTime"], times["failureDateTime"],
        end, numbers["duration"] or 0, successful, texts["callType"], texts["callerNumber"],
        texts["calleeNumber"], texts["mediaPathLocation"], texts["signalingLocation"],
        numbers["finalSipCode"], numbers["callEndSubReason"], texts["finalSipCodePhrase"],
        texts["trunkFullyQualifiedDomainName"], flags["mediaBypassEnabled"],
        codes["otherPartyCountryCode"],
    ), {}


def mask_dr_numbers(call_type: str, caller: str, callee: str,
                    digits: int) -> tuple[str, str]:
    """(caller, callee) with the external party's number masked: the caller of an inbound
    Direct Routing call (dr_in..., Microsoft's older "...In"), the callee of an outbound
    one, both when the type says neither."""
    if not digits:
        return caller, callee
    kind = call_type.casefold()
    inbound = kind.startswith("dr_in") or kind.endswith("in")
    outbound = kind.startswith("dr_out") or kind.startswith("dr_emergency_out") \
        or kind.endswith("out")
    return (caller if outbound and not inbound else mask_number(caller, digits),
            callee if inbound and not outbound else mask_number(callee, digits))


# --- the export CSV -----------------------------------------------------------------------


def header_fields(header: list[str], where: str = "") -> list[str | None]:
    """The Graph field of each column of a DirectRouting.calls CSV header (None for a
    column of no known name), matched without regard to case, surrounding spaces or a BOM.
    Raises FileError when a column that identifies a call is missing."""
    fields = [_BY_HEADER.get(h.strip().lstrip("\ufeff").strip().casefold()) for h in header]
    missing = [c for c in ("CorrelationId", "Start time")
               if _BY_HEADER[c.casefold()] not in fields]
    if missing:
        raise FileError(f"{where}not a Direct Routing export: the header must hold "
                        f"Microsoft's columns ({', '.join(EXPORT_HEADER)}); missing: "
                        f"{', '.join(missing)}")
    return fields


def is_header(header: list[str]) -> bool:
    """Whether a CSV header is a Direct Routing export's (its first column, CorrelationId)."""
    return bool(header) and header[0].strip().lstrip("\ufeff").strip().strip('"').strip() \
        .casefold() == "correlationid"


def graph_of(values: list[str], fields: list[str | None]) -> dict:
    """One CSV record as a Graph-shaped dict: an empty cell is None."""
    graph: dict = {}
    for field, value in zip(fields, values, strict=False):
        if field is not None:
            graph[field] = value if value != "" else None
    return graph


# --- Graph JSON: which kind of row --------------------------------------------------------


def kind_of_context(context) -> str | None:
    if not isinstance(context, str):
        return None
    lowered = context.casefold()
    if "directroutinglogrow" in lowered:
        return DIRECT_ROUTING
    if "pstncalllogrow" in lowered:
        return PSTN
    return None


def kind_of_row(row, default: str = PSTN) -> str:
    """DIRECT_ROUTING for a row holding a field only directRoutingLogRow has (and none only
    pstnCallLogRow has); otherwise `default`."""
    if isinstance(row, dict):
        odata_type = row.get("@odata.type")
        if isinstance(odata_type, str):
            kind = kind_of_context(odata_type)
            if kind:
                return kind
        keys = row.keys()
        if any(k in DR_ONLY for k in keys) and not any(k in PSTN_ONLY for k in keys):
            return DIRECT_ROUTING
    return default


def rows_by_kind(data) -> list[tuple[str, object]]:
    """(kind, row) of a Graph page `{"value": [...]}`, a list of rows or a list of pages. A
    page's `@odata.context` names its kind; rows of a page without one are told by their
    fields."""
    if isinstance(data, dict) and isinstance(data.get("value"), list):
        pages = [data]
    elif isinstance(data, list) and data and all(
            isinstance(p, dict) and isinstance(p.get("value"), list) for p in data):
        pages = data
    elif isinstance(data, list):
        pages = [{"value": data}]
    else:
        raise FileError('expected a Graph page {"value": [...]} or a list of rows')
    out = []
    for page in pages:
        kind = kind_of_context(page.get("@odata.context"))
        for row in page["value"]:
            out.append((kind or kind_of_row(row), row))
    return out
