"""The JSON API under /api/v1/ (django-ninja), with its OpenAPI schema at
/api/v1/openapi.json. Each app contributes a router from its api.py.

Every endpoint needs a bearer token of one organization (usage.api_auth): `request.auth`
is that Organization. Errors share one shape, `credits.platform.api.Error`
(`{"detail", "code", "errors"}`), so a client never has to parse an HTML 500 page:
malformed JSON and wrong types are 400/422, a bad token 401, a body over the upload limit
413, too many requests 429, a database that went away 503 (with Retry-After). Unknown
paths and wrong methods under /api/ answer 404 and 405 in the same shape
(`credits.platform.api.error_response`).
"""

import functools
import logging
import math

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpResponseNotAllowed
from django.urls import URLPattern
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

from credits.api import router as credits_router
from credits.platform.api import error_response, too_large_response, unavailable_response
from credits.platform.errors import DATABASE_UNAVAILABLE
from usage.api import router as usage_router
from usage.api_auth import OrganizationToken, TokenRateThrottle, presented_token_admitted

api = NinjaAPI(
    title="Credits Center API",
    version="1",
    description="Prepaid communications credits: post PSTN call records, ask whether a call "
                "may start, read the balance. Bearer token per organization.",
    urls_namespace="api",
    openapi_url="/openapi.json",
    docs_url="/docs",
    auth=OrganizationToken(),
    throttle=[TokenRateThrottle()],
)

logger = logging.getLogger(__name__)

def _error(request, status: int, detail: str, errors=None, code: str | None = None):
    return error_response(status, detail, errors, code)


def _clean(errors) -> list[dict]:
    out = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ()) if part not in ("body", "query")]
        out.append({"loc": loc, "msg": str(err.get("msg", "invalid")),
                    "type": str(err.get("type", ""))})
    return out


def _token_refused(request):
    """The 401 or 429 of a request refused for its input before its operation checked its
    token (usage.api_auth.presented_token_admitted); None when the token is fine."""
    try:
        presented_token_admitted(request)
    except AuthenticationError as exc:
        return on_unauthorized(request, exc)
    except Throttled as exc:
        return on_throttled(request, exc)
    return None


@api.exception_handler(ValidationError)
def on_validation_error(request, exc):
    if refused := _token_refused(request):
        return refused
    errors = _clean(exc.errors)
    first = errors[0] if errors else {"loc": [], "msg": "invalid"}
    where = ".".join(first["loc"]) or "body"
    return _error(request, 422, f"Invalid request: {where}: {first['msg']}", errors)


@api.exception_handler(AuthenticationError)
def on_unauthorized(request, exc):
    response = _error(request, 401, "Missing, unknown or revoked API token. Send "
                                    "`Authorization: Bearer <token>`.")
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(Throttled)
def on_throttled(request, exc):
    response = _error(request, 429, "Too many requests for this token; retry after the "
                                    "Retry-After delay.")
    if exc.wait is not None:  # raised by an operation (usage.api_auth.token_admitted)
        response["Retry-After"] = str(math.ceil(exc.wait))
    return response


@api.exception_handler(HttpError)
def on_http_error(request, exc):
    if refused := _token_refused(request):
        return refused
    return _error(request, exc.status_code, str(exc))


@api.exception_handler(Http404)
def on_not_found(request, exc):
    return _error(request, 404, "Not found.")


@api.exception_handler(RequestDataTooBig)
def on_too_large(request, exc):
    if refused := _token_refused(request):
        return refused
    return too_large_response()


def on_database_unavailable(request, exc):
    # Django's errors and psycopg's own: an error raised inside psycopg's COPY (a backend
    # terminated mid-ingest) reaches here unwrapped by Django.
    logger.error("API request failed: database unavailable", exc_info=exc)
    return unavailable_response()


for _cls in DATABASE_UNAVAILABLE:
    api.add_exception_handler(_cls, on_database_unavailable)


def _json_not_allowed(view):
    """ninja answers a method an operation does not serve with a plain-text 405."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if isinstance(response, HttpResponseNotAllowed):
            allowed = response["Allow"]
            response = _error(request, 405, f"Method {request.method} is not allowed here; "
                                            f"allowed: {allowed}.")
            response["Allow"] = allowed
        return response

    return wrapped


def urls():
    """`api.urls`, with the operations' 405 answers in the API's error shape."""
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        if isinstance(pattern, URLPattern) and getattr(
                pattern.callback, "__module__", "").startswith("ninja."):
            pattern.callback = _json_not_allowed(pattern.callback)
    return patterns, app_name, namespace


api.add_router("/", usage_router)

api.add_router("/", credits_router)
