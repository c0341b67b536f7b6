"""What the API's two call-record endpoints share (PSTN calls in usage.api, Direct Routing
calls in usage.direct_routing_api): their error answers, the shape of a rejected row, and
how a range of call start times and a page cursor are read."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.utils import timezone
from ninja import Field, Schema
from ninja.errors import HttpError

from credits.platform.api import Error

MAX_RANGE = timedelta(days=90)
PAGE_SIZE = 1000

# 503: the database went away; nothing was stored and the same request may be sent again.
ERRORS = {400: Error, 401: Error, 422: Error, 429: Error, 503: Error}
BODY_ERRORS = {**ERRORS, 413: Error}  # a body over DATA_UPLOAD_MAX_MEMORY_SIZE


class RejectedRow(Schema):
    index: int = Field(..., description="Position of the row in `value`, from 0.")
    id: str | None = Field(None, description="The row's `id` (a Direct Routing row without "
                                             "one: its correlationId), when it had one.")
    errors: dict[str, str] = Field(..., description="Field name -> reason.")


def _utc(value: datetime) -> datetime:
    if timezone.is_naive(value):
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def start_range(from_at: datetime, to_at: datetime) -> tuple[datetime, datetime]:
    """The range of call start times asked for, in UTC; 400 when it is no range of at most
    MAX_RANGE."""
    try:
        # In UTC: an offset such as +22:48 is valid ISO 8601 but not for PostgreSQL, and
        # a year-1 date with an offset does not fit a datetime once moved to UTC.
        start, end = _utc(from_at), _utc(to_at)
    except OverflowError:
        raise HttpError(400, "fromDateTime and toDateTime must be real dates.") from None
    if end < start:
        raise HttpError(400, "toDateTime must not be before fromDateTime.")
    if end - start > MAX_RANGE:
        raise HttpError(400, "The range is over 90 days; ask for at most 90 days at a time.")
    return start, end


def page_after(skiptoken: str | None, decode: Callable[[str], tuple]) -> tuple | None:
    """The position a `$skiptoken` from `@odata.nextLink` continues after; 400 when it is
    not one of ours."""
    if not skiptoken:
        return None
    try:
        return decode(skiptoken)
    except ValueError:
        raise HttpError(400, "Invalid $skiptoken: use the @odata.nextLink as given.") from None
