"""Hypothesis strategies, one per class of hostile input, and the bookkeeping shared by the
tests of tests/reliability/test_fuzz_text_fields.py and test_fuzz_api_edges.py.

Classes: a lone UTF-16 surrogate or a NUL put into an otherwise valid value, a value past
a field's limit, a forged paging cursor, a request body past Django's
DATA_UPLOAD_MAX_MEMORY_SIZE, an /api/ path or method nobody serves, and the spellings of
one GUID (case, braces).

Each example runs in a savepoint that is rolled back, so examples do not see each other's
rows, and a database error in one example does not abort the test's transaction for the
next ones.
"""

import base64
import csv
import io
import json
import unicodedata

from django.db import transaction
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st


def fuzz_settings(examples: int):
    # No shrinking: every example already puts one bad value in each field and the
    # failure message names each field with its value, so shrinking would only add time.
    return settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                    suppress_health_check=list(HealthCheck),
                    phases=(Phase.explicit, Phase.reuse, Phase.generate))


# --- counting cases and server errors into the suite's tally -------------------------------


class Tally:
    """One test's cases, and those that ended in a server error: an HTTP 5xx or an
    exception other than a failed assertion (a command or service that crashed)."""

    def __init__(self, reliability):
        self.reliability, self.cases, self.errors = reliability, 0, 0

    def run(self, fn, *args, expected: tuple = (), **kwargs):
        """fn(*args, **kwargs), counted; `expected` are the exception types that are a
        clear answer (a file error, a command's error), not a server error."""
        self.cases += 1
        try:
            out = fn(*args, **kwargs)
        except (AssertionError, *expected):
            raise
        except Exception:
            self.errors += 1
            raise
        if getattr(out, "status_code", 0) >= 500:
            self.errors += 1
        return out

    def close(self):
        self.reliability.fuzz(self.cases, server_errors=self.errors)


def assert_api_error(response, status: int, code: str, context) -> dict:
    """`response` is the API's error answer: `status`, JSON, {"detail", "code", "errors"}."""
    assert response.status_code == status, (context, response.status_code,
                                             response.content[:300])
    assert response["Content-Type"].startswith("application/json"), (
        context, response["Content-Type"], response.content[:200])
    body = response.json()
    assert {"detail", "code", "errors"} <= set(body) and body["code"] == code, (context, body)
    return body


def export_csv_text(rows: list[dict]) -> str:
    """Graph rows (dicts of strings) as Microsoft's PSTN usage export CSV."""
    from usage.ingest import EXPORT_COLUMNS, EXPORT_HEADER

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_HEADER)
    for row in rows:
        writer.writerow([row.get(field, "") for _column, field in EXPORT_COLUMNS])
    return out.getvalue()


class _Undo(Exception):
    def __init__(self, value):
        super().__init__("rolled back")
        self.value = value


def rolled_back(fn, *args, **kwargs):
    """fn(...) inside a savepoint that is then rolled back; its value is returned."""
    try:
        with transaction.atomic():
            raise _Undo(fn(*args, **kwargs))
    except _Undo as done:
        return done.value


# --- class: a lone surrogate or a NUL inside an otherwise valid value ------------------------

# Each class draws, per value, the strategy of its bad characters.
NUL = st.just(st.just("\x00"))
# What a JSON "\\udXXX" escape or a WTF-8 byte sequence (ED A0 80 .. ED BF BF) decodes to.
# One value takes all its surrogates from one half: a high one followed by a low one
# would be a valid pair (one character) in JSON, not a lone surrogate.
SURROGATE = st.sampled_from([st.integers(0xD800, 0xDBFF).map(chr),
                             st.integers(0xDC00, 0xDFFF).map(chr)])
BAD_CHARS = {"nul": NUL, "surrogate": SURROGATE}


def poisoned(valid: str, bad: st.SearchStrategy) -> st.SearchStrategy:
    """`valid` with one to three bad characters (from the strategy `bad` draws) put in at
    drawn places: the bad characters are the only thing wrong with the value."""

    @st.composite
    def build(draw):
        chars = draw(bad)
        text = valid
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(chars) + text[at:]
        return text

    return build()


def has_bad_char(text: str) -> bool:
    return any(ch == "\x00" or unicodedata.category(ch) == "Cs" for ch in str(text))


# --- class: a value past a field's limit ------------------------------------------------------

# Python's csv module refuses a field longer than this (csv.field_size_limit()).
CSV_FIELD_LIMIT = 131_072


def oversized(valid: str, limit: int, extra: int = 64) -> st.SearchStrategy:
    """`valid` padded with non-blank characters to a length from limit + 1 to
    limit + extra: stripping blanks cannot bring it back under the limit."""
    return st.tuples(st.integers(limit + 1, limit + extra), st.sampled_from("x9é中")).map(
        lambda pair: (valid + pair[1] * pair[0])[: pair[0]])


# --- class: a forged paging cursor --------------------------------------------------------------


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Text that survives a URL (the test client encodes the query as UTF-8).
URL_TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
HOSTILE_TIMES = st.sampled_from([
    "2026-11-02T09:00:00+00:00", "2026-11-02T09:00:00", "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00", "2026-11-02T09:00:00+23:59",
    "2026-02-30T00:00:00+00:00", "2026-11-02\x00", "", "NaN", "1e400"])
HOSTILE_NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70), st.sampled_from([2**63, 2**63 - 1, -(2**63) - 1, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
    st.sampled_from(["1", "x", "1e999999", "\x00", "NaN"]))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | URL_TEXT,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(URL_TEXT, kids, max_size=3),
    max_leaves=6)


@st.composite
def forged_skiptokens(draw) -> str:
    """A $skiptoken of GET /api/v1/pstn-calls that the server never issued: garbage text,
    base64 of random bytes or JSON, or the cursor's own shape [start time, id] with
    values out of range, of the wrong type or with a NUL."""
    shape = draw(st.integers(0, 3))
    if shape == 0:
        return draw(URL_TEXT.filter(bool))
    if shape == 1:
        return b64(draw(st.binary(min_size=1, max_size=40)))
    if shape == 2:
        return b64(json.dumps(draw(JSON_VALUES)).encode())
    return b64(json.dumps([draw(st.one_of(HOSTILE_TIMES, JSON_VALUES)),
                           draw(HOSTILE_NUMBERS)]).encode())


def skiptoken_is_well_formed(token: str) -> bool:
    """True when `token` has the shape of a cursor the server issues: base64 of
    [ISO 8601 time with an offset, a bigint id], the time from year 2000 to 2999. A
    forged token of this shape cannot be told from a real one (it names a place in
    the list): 200 or 400 are both right for it; any other token must get a 400."""
    from datetime import UTC, datetime

    try:
        start, pk = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        when = datetime.fromisoformat(start)
        if when.tzinfo is None or not 2000 <= when.astimezone(UTC).year <= 2999:
            return False
        return type(pk) is int and -(2**63) <= pk < 2**63
    except Exception:
        return False


@st.composite
def forged_report_cursors(draw, sorts) -> tuple[str, str]:
    """(sort, cursor) for the PSTN usage report's ?after= / ?before=: the report's shape
    [sort, '[kind, value]', id] with a value of the wrong type, out of range or with a
    NUL, or garbage."""
    sort = draw(st.sampled_from([*sorts, *(f"-{s}" for s in sorts)]))
    if draw(st.integers(0, 4)) == 0:
        return sort, draw(st.one_of(URL_TEXT.filter(bool),
                                    st.binary(min_size=1, max_size=30).map(b64)))
    kind = draw(st.sampled_from(["t", "d", "v", "x", ""]))
    value = draw(st.one_of(HOSTILE_TIMES, HOSTILE_NUMBERS, JSON_VALUES,
                           st.sampled_from(["Infinity", "-Infinity", "sNaN", "1e999999",
                                            "9" * 40, "a\x00b"])))
    inner = json.dumps([kind, value]) if draw(st.integers(0, 5)) else json.dumps(value)
    cursor_sort = sort if draw(st.integers(0, 5)) else draw(URL_TEXT)
    return sort, b64(json.dumps([cursor_sort, inner, draw(HOSTILE_NUMBERS)]).encode())


# --- class: a request body past DATA_UPLOAD_MAX_MEMORY_SIZE ----------------------------------


@st.composite
def oversized_bodies(draw, limit: int) -> tuple[bytes, str]:
    """(body, content type) of limit + 1 to limit + 64 KiB bytes: well-formed JSON (a
    batch whose rows are padded), JSON cut short, or bytes that are no JSON at all."""
    size = draw(st.integers(limit + 1, limit + 64 * 1024))
    shape = draw(st.integers(0, 2))
    if shape == 0:
        pad = "x" * size
        body = json.dumps({"value": [{"id": "big", "userDisplayName": pad}]}).encode()
    elif shape == 1:
        body = (b'{"value": [' + b'{"id": "x"},' * (size // 12 + 1))[:size]
    else:
        pattern = draw(st.binary(min_size=1, max_size=16))
        body = (pattern * (size // len(pattern) + 1))[:size]
    content_type = draw(st.sampled_from(["application/json", "application/octet-stream",
                                         "text/plain", "application/json; charset=utf-8"]))
    return body, content_type


# --- class: an /api/ path or a method nobody serves ----------------------------------------

_SEGMENT = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-_.~"), min_size=1,
                   max_size=12).filter(lambda s: s not in (".", ".."))


@st.composite
def unknown_api_paths(draw, served: set[str]) -> str:
    """A path under /api/ that no route serves (versions, endpoints, sub-paths)."""
    base = draw(st.sampled_from(["/api/", "/api/v1/", "/api/v2/", "/api/v1/pstn-calls/",
                                 "/api/v1/credits/", "/api/v1/calls/"]))
    path = base + "/".join(draw(st.lists(_SEGMENT, min_size=0, max_size=3)))
    path += draw(st.sampled_from(["", "/"]))
    return path if path.rstrip("/") not in {p.rstrip("/") for p in served} else path + "x/"


# --- class: one GUID spelled several ways ----------------------------------------------------


@st.composite
def guid_spellings(draw) -> tuple[str, list[str]]:
    """(the GUID in lower case, 2 to 5 of its spellings: case changed letter by letter,
    with or without braces); the first spelling is the one stored first."""
    guid = str(draw(st.uuids()))
    spellings = []
    for _ in range(draw(st.integers(2, 5))):
        style = draw(st.sampled_from(["lower", "upper", "mixed"]))
        text = guid.upper() if style == "upper" else guid if style == "lower" else "".join(
            ch.upper() if draw(st.booleans()) else ch for ch in guid)
        if draw(st.booleans()):
            text = "{" + text + "}"
        spellings.append(text)
    return guid, spellings
