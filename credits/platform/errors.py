"""The error answers of the site (Django's handler400/403/404/500) and of a database that
went away. Under /api/ they answer in the API's JSON error shape (config.api), so an API
client never has to parse an HTML page."""

import sys

import psycopg
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, HttpResponseServerError
from django.shortcuts import render
from django.template import loader
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

from .access import public
from .api import RETRY_AFTER_S, error_response, too_large_response, unavailable_response

# A database that cannot be reached or went away: refused connections, restarts, closed or
# terminated connections. Django wraps what psycopg raises through its cursors; what psycopg
# raises on its own (inside a COPY, say) arrives unwrapped, hence its base classes too.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, psycopg.OperationalError,
                        psycopg.InterfaceError)


def database_unavailable(exc) -> bool:
    """True for the errors of a database that cannot be reached or went away."""
    return isinstance(exc, DATABASE_UNAVAILABLE)


def is_api(request) -> bool:
    # path_info, as URL resolution reads it: without the prefix the site is served under
    # (SCRIPT_NAME), which `request.path` includes.
    path = request.path_info
    return path == "/api" or path.startswith("/api/")


@public
def bad_request(request, exception=None):
    if is_api(request):
        if isinstance(exception, RequestDataTooBig):
            return too_large_response()
        return error_response(400, "Bad request.")
    return defaults.bad_request(request, exception)


@public
def forbidden(request, exception=None):
    if is_api(request):
        return error_response(403, "Forbidden.")
    return render(request, "403.html", status=403)


@public
def not_found(request, exception=None):
    if is_api(request):
        return error_response(404, "No such API path; see /api/v1/docs.")
    return render(request, "404.html", status=404)


@public
@csrf_exempt  # answers every method with a 404 and changes nothing
def api_not_found(request, *args, **kwargs):
    """Any path under /api/ that no API route serves."""
    return not_found(request)


@public
def server_error(request):
    # No context processors that touch the database: the database may be what failed.
    unavailable = database_unavailable(sys.exc_info()[1])
    if is_api(request):
        if unavailable:
            return unavailable_response()
        return error_response(500, "Internal error; it has been logged.")
    if unavailable:
        # The database is down or restarting: a temporary condition, not a bug; say so
        # (503 with Retry-After) so that people, proxies and clients try again.
        response = HttpResponse(loader.get_template("503.html").render(), status=503)
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response
    return HttpResponseServerError(loader.get_template("500.html").render())


def locked_out(request, original_response=None, credentials=None):
    """django-axes' answer to a sign-in from a username + address that failed too often
    (AXES_LOCKOUT_CALLABLE): says what happened and how long to wait, with status 429."""
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    return render(request, "registration/locked_out.html",
                  {"failure_limit": settings.AXES_FAILURE_LIMIT, "minutes": minutes},
                  status=429)
