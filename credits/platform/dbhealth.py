"""Django's per-request database health check (CONN_HEALTH_CHECKS: a `SELECT 1` before a
reused connection's first query in a request), skipped where the connection's recent use
makes it redundant.

With persistent connections (CONN_MAX_AGE > 0) each request that reuses a connection pays
one more round trip for the check. A connection that served a request without error less
than RECHECK_AFTER_IDLE_S ago is taken as alive: a busy process, the API's case, pays no
check. One idle for longer (a quiet night, a database restarted meanwhile, a proxy that
dropped it) is still checked before use, and replaced if it is dead. If the database went
away within that moment, the request fails cleanly (503, credits.platform.errors), and the
connection, having had an error, is closed at the end of the request, as Django does.
Without persistent connections (CONN_MAX_AGE = 0, SQLite) there is nothing to check."""

import time

from django.core.signals import request_finished, request_started
from django.db import connections

RECHECK_AFTER_IDLE_S = 5.0


def _skip_check_if_recently_used(**kwargs) -> None:
    now = time.monotonic()
    for conn in connections.all(initialized_only=True):
        used = getattr(conn, "_cc_last_ok", None)
        if (conn.connection is not None and conn.health_check_enabled and used is not None
                and now - used < RECHECK_AFTER_IDLE_S and not conn.errors_occurred):
            conn.health_check_done = True


def _remember_use(**kwargs) -> None:
    now = time.monotonic()
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and not conn.errors_occurred:
            conn._cc_last_ok = now
        else:
            conn._cc_last_ok = None


def connect() -> None:
    """Called once at start-up (credits.apps), after Django's own receivers, which reset
    the check at the start and end of each request."""
    request_started.connect(_skip_check_if_recently_used, dispatch_uid="cc.db_health.skip")
    request_finished.connect(_remember_use, dispatch_uid="cc.db_health.used")
