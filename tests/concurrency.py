"""Running functions at the same moment, for the race tests on PostgreSQL."""

import threading

from django.db import connection


def run_threads(targets, *, timeout: float = 120) -> None:
    """Run each callable in its own thread (its own database connection), released together
    by a barrier so that they really race; fails with the exceptions any of them raised."""
    errors = []
    start = threading.Barrier(len(targets))

    def wrap(fn):
        def run():
            try:
                start.wait(30)
                fn()
            except Exception as exc:  # surfaced by the assertion below
                errors.append(exc)
            finally:
                connection.close()
        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert errors == []
