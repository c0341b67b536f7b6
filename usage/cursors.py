"""Keyset-paging cursors: the API's `$skiptoken` and the usage report's `after`/`before`.

A cursor is the last row's sort values, handed to the client and read back as query
values. It is signed (django.core.signing), so a client can only send back a cursor this
server made, and the values are checked again when read: a cursor from an older key or
code, or one crafted by hand, is refused as a cursor (InvalidCursor), never sent to the
database where an out-of-range date or integer would fail as a server error.
"""

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django.core import signing

_SALT = "usage.cursor:"
# A value read back must fit the column it is compared with: a BIGINT id or integer, a
# NUMERIC amount of the ledger's size, a timestamp PostgreSQL accepts.
MAX_INT = 2**63 - 1
MAX_DECIMAL = Decimal("1e18")
MAX_TEXT = 1000


class InvalidCursor(ValueError):
    """Not a cursor this server made for this listing."""


def _pack(value):
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return ["t", value.astimezone(UTC).isoformat()]
    if isinstance(value, Decimal):
        return ["d", str(value)]
    if isinstance(value, bool) or not isinstance(value, int | str | None):
        raise TypeError(f"a cursor cannot hold {type(value).__name__}")
    return ["v", value]


def _unpack(item):
    if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
        raise InvalidCursor("malformed value")
    kind, value = item
    if kind == "t" and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                raise InvalidCursor("naive time")
            return moment.astimezone(UTC)
        except (ValueError, OverflowError) as exc:
            raise InvalidCursor("bad time") from exc
    if kind == "d" and isinstance(value, str) and len(value) <= 64:
        try:
            amount = Decimal(value)
        except InvalidOperation as exc:
            raise InvalidCursor("bad amount") from exc
        if not amount.is_finite() or abs(amount) >= MAX_DECIMAL:
            raise InvalidCursor("amount out of range")
        return amount
    if kind == "v":
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and -MAX_INT <= value <= MAX_INT:
            return value
        if isinstance(value, str) and len(value) <= MAX_TEXT and "\x00" not in value:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InvalidCursor("bad text") from exc
            return value
    raise InvalidCursor("bad value")


def encode_cursor(scope: str, *values) -> str:
    """A signed cursor of `values` (datetimes, Decimals, ints, strings, None) that only
    `decode_cursor` with the same `scope` reads back."""
    return signing.dumps([_pack(v) for v in values], salt=_SALT + scope, compress=False)


def decode_cursor(token: str, scope: str, arity: int) -> tuple:
    """The `arity` values of a cursor made by `encode_cursor(scope, ...)`. Raises
    InvalidCursor for anything else."""
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise InvalidCursor("empty or too long")
    try:
        items = signing.loads(token, salt=_SALT + scope)
    except (signing.BadSignature, ValueError, UnicodeError) as exc:
        raise InvalidCursor("not signed by this server") from exc
    if not isinstance(items, list) or len(items) != arity:
        raise InvalidCursor("wrong shape")
    return tuple(_unpack(item) for item in items)


def decode_row_cursor(token: str, scope: str) -> tuple[object, int]:
    """(sort value, id) of a keyset cursor whose last value is a row id."""
    value, pk = decode_cursor(token, scope, 2)
    if not isinstance(pk, int) or not 0 < pk <= MAX_INT:
        raise InvalidCursor("bad id")
    return value, pk
