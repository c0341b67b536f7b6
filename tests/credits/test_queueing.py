"""credits.queueing.enqueue: a task found by its registered name in every process, run at
once under eager mode, and a broker outage logged instead of raised."""

import subprocess
import sys
from pathlib import Path

import pytest
from celery import current_app
from kombu.exceptions import OperationalError

from credits import queueing
from usage import tasks as usage_tasks


def test_a_fresh_web_process_finds_every_apps_tasks_by_name():
    # Nothing in a web process imports the tasks modules: autodiscovery is the worker's.
    code = (
        "import django, sys; django.setup()\n"
        "from credits.queueing import _task\n"
        "assert 'usage.tasks' not in sys.modules\n"
        "for name in ('usage.tasks.run_export', 'usage.tasks.run_import',\n"
        "             'notifications.tasks.send_delivery'):\n"
        "    assert _task(name).name == name\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"DJANGO_SETTINGS_MODULE": "config.settings_test",
                               "PATH": "/usr/bin:/bin"},
                          cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert done.returncode == 0, done.stderr


def test_under_eager_mode_the_task_runs_at_once(monkeypatch, settings):
    assert current_app.conf.task_always_eager
    ran = []
    monkeypatch.setattr(usage_tasks, "export_run", lambda export_id: ran.append(export_id))
    assert queueing.enqueue("usage.tasks.run_export", 42) is True
    assert ran == [42]


@pytest.mark.parametrize("failure", [OperationalError("broker down"), RuntimeError("boom")],
                         ids=["broker-down", "eager-task-failed"])
def test_a_task_not_handed_over_is_logged_not_raised(monkeypatch, caplog, failure):
    def delay(*args):
        raise failure

    monkeypatch.setattr(current_app.tasks["usage.tasks.run_import"], "delay", delay)
    assert queueing.enqueue("usage.tasks.run_import", 7) is False
    assert "could not enqueue usage.tasks.run_import(7,)" in caplog.text


def test_an_unknown_task_name_is_an_error():
    with pytest.raises(KeyError):
        queueing.enqueue("usage.tasks.no_such_task", 1)
