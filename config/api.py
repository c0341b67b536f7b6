"""The JSON API under /api/v1/ (django-ninja), with its OpenAPI schema at
/api/v1/openapi.json. Each app contributes a router from its api.py.

Every endpoint needs a bearer token of one organization (usage.api_auth): `request.auth`
is that Organization. Errors share one shape, `credits.api.Error`
(`{"detail", "code", "errors"}`), so a client never has to parse an HTML 500 page:
malformed JSON and wrong types are 400/422, a bad token 401, too many requests 429.
"""

import logging

from django.db import InterfaceError, OperationalError
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

from credits.api import router as credits_router
from credits.errors import RETRY_AFTER_S
from usage.api import router as usage_router
from usage.api_auth import OrganizationToken, TokenRateThrottle

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

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 413: "too_large", 422: "validation_error",
          429: "rate_limited", 503: "unavailable"}


def _error(request, status: int, detail: str, errors=None, code: str | None = None):
    body = {"detail": detail, "code": code or _CODES.get(status, "error"), "errors": errors}
    return api.create_response(request, body, status=status)


def _clean(errors) -> list[dict]:
    out = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ()) if part not in ("body", "query")]
        out.append({"loc": loc, "msg": str(err.get("msg", "invalid")),
                    "type": str(err.get("type", ""))})
    return out


@api.exception_handler(ValidationError)
def on_validation_error(request, exc):
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
    return _error(request, 429, "Too many requests for this token; retry after the "
                                "Retry-After delay.")


@api.exception_handler(HttpError)
def on_http_error(request, exc):
    return _error(request, exc.status_code, str(exc))


@api.exception_handler(Http404)
def on_not_found(request, exc):
    return _error(request, 404, "Not found.")


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def on_database_unavailable(request, exc):
    # The database is down or restarting (or a transaction lost a deadlock): nothing was
    # stored, so the client may send the same request again.
    logger.error("API request failed: database unavailable", exc_info=exc)
    response = _error(request, 503, "The service is temporarily unavailable; retry the "
                                    "same request shortly.", code="unavailable")
    response["Retry-After"] = str(RETRY_AFTER_S)
    return response


api.add_router("/", usage_router)

api.add_router("/", credits_router)
