"""`make run` (config/run.py): the address and sign-in come last, and Ctrl-C stops the web
server, the worker and beat within 3 seconds, exiting 0 with no ERROR line."""

import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_run_prints_the_address_last_and_stops_on_ctrl_c(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DEBUG", "DJANGO_SETTINGS_MODULE", "REDIS_URL", "EMAIL_URL")}
    env.update(LOCAL_RUN="true", WEB_PORT=str(port), PYTHONUNBUFFERED="1",
               DATABASE_URL=f"sqlite:///{tmp_path / 'run.sqlite3'}")
    cwd = settings.BASE_DIR
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env=env,
                   cwd=cwd, check=True)
    proc = subprocess.Popen([sys.executable, "-m", "config.run"], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C stops"):
                break
        assert lines and lines[-1].startswith("Ctrl-C stops"), lines
        assert lines[-3] == f"Credits Center: http://127.0.0.1:{port}/"
        assert lines[-2].startswith("Sign in as megan.bowen@contoso.com")
        time.sleep(3)  # the worker and beat are up
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=10)
        elapsed = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest
    assert elapsed < 3.0, elapsed
    assert "ERROR" not in rest and "Traceback" not in rest, rest
    # Nothing printed after the address while it ran (as root, Celery warned about it).
    assert "SecurityWarning" not in rest and "superuser" not in rest, rest
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # the web server is gone
