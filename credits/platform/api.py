"""The API's shared pieces: the text type of every input field, the one error shape
(`Error`) and the error answers that the API (config/api.py) and the site's error pages
under /api/ (credits.platform.errors) give."""

from typing import Annotated, Any

from django.conf import settings
from django.http import JsonResponse
from ninja import Field, Schema
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError


def storable_text(value: str) -> str:
    """Refuses what no text column can hold: PostgreSQL text has no NUL character, and a
    lone surrogate (JSON's "\\ud800" alone) is not encodable as UTF-8. Caught here, either
    is a 422 naming the field instead of a database error deep in the request."""
    if "\x00" in value:
        raise PydanticCustomError("string_nul", "must not contain a NUL character (\\u0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PydanticCustomError(
            "string_surrogate", "must be valid Unicode (no unpaired surrogate)") from None
    return value


# The type of every string field of the API's input schemas and query parameters. The
# pattern states the NUL rule in the OpenAPI schema, for clients and schema-driven tests;
# the validator enforces it, with its own message.
ApiText = Annotated[str, AfterValidator(storable_text),
                    Field(json_schema_extra={"pattern": "^[^\\u0000]*$"})]


class Error(Schema):
    """Every 4xx answer of the API has this shape (config/api.py makes them; usage/api.py
    declares it for its endpoints too)."""

    detail: str = Field(..., description="What is wrong, in plain words.")
    code: str = Field(..., description="A stable code: validation_error, bad_request, "
                                       "unauthorized, not_found, rate_limited, ...")
    errors: list[dict[str, Any]] | None = Field(
        None, description="For validation errors: one item per problem, with `loc` (where) "
                          "and `msg` (why).")


RETRY_AFTER_S = 5

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 413: "too_large", 422: "validation_error",
          429: "rate_limited", 500: "server_error", 503: "unavailable"}


def error_response(status: int, detail: str, errors=None,
                   code: str | None = None) -> JsonResponse:
    """An answer in the API's one error shape, `Error`: the API's handlers (config/api.py)
    and the site's error handlers under /api/ (credits/platform/errors.py) all answer with it."""
    body = {"detail": detail, "code": code or _CODES.get(status, "error"), "errors": errors}
    return JsonResponse(body, status=status)


def unavailable_response() -> JsonResponse:
    # The database is down or restarting, or dropped this request's connection: nothing
    # was stored, so the client may send the same request again.
    response = error_response(503, "The service is temporarily unavailable; retry the "
                                   "same request shortly.", code="unavailable")
    response["Retry-After"] = str(RETRY_AFTER_S)
    return response


def too_large_response() -> JsonResponse:
    return error_response(413, "The request body is too large: at most "
                               f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.")
