from django.shortcuts import render

from .access import public


@public
def forbidden(request, exception=None):
    return render(request, "403.html", status=403)


@public
def not_found(request, exception=None):
    return render(request, "404.html", status=404)


@public
def server_error(request):
    # No context processors that touch the database: the database may be what failed.
    import sys

    from django.http import HttpResponse, HttpResponseServerError
    from django.template import loader

    if database_unavailable(sys.exc_info()[1]):
        # The database is down or restarting: a temporary condition, not a bug; say so
        # (503 with Retry-After) so that people, proxies and clients try again.
        response = HttpResponse(loader.get_template("503.html").render(), status=503)
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response
    return HttpResponseServerError(loader.get_template("500.html").render())


RETRY_AFTER_S = 5


def database_unavailable(exc) -> bool:
    """True for the errors of a database that cannot be reached or went away (Django's
    OperationalError and InterfaceError: refused connections, restarts, closed ones)."""
    from django.db import InterfaceError, OperationalError

    return isinstance(exc, OperationalError | InterfaceError)


def locked_out(request, original_response=None, credentials=None):
    """django-axes' answer to a sign-in from a username + address that failed too often
    (AXES_LOCKOUT_CALLABLE): says what happened and how long to wait, with status 429."""
    from django.conf import settings

    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    return render(request, "registration/locked_out.html",
                  {"failure_limit": settings.AXES_FAILURE_LIMIT, "minutes": minutes},
                  status=429)
