"""Running functions at the same moment, for the race tests on PostgreSQL."""

import threading

from celery import result
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
    clear_celery_join_flag()
    assert errors == []


def clear_celery_join_flag() -> None:
    """Celery runs each eager task with a process-wide "joining a result would block" flag
    set, and restores what it saw on entry: threads running eager tasks at once can leave
    it set, and every later `.get()` in the process then fails. Called once no task runs."""
    result._set_task_join_will_block(False)
