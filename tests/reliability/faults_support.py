"""Real processes for the fault tests: a private Redis, a private PostgreSQL cluster, the
web (gunicorn) and a Celery worker, each on a free loopback port, each stopped in a
finally block by its own process id (never the machine's shared servers)."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

BASE_DIR = Path(settings.BASE_DIR)
BIN = Path(sys.executable).parent


@pytest.fixture
def eager_celery():
    """Tasks enqueued by the test process run in it (config.settings_test's default),
    whatever an earlier test left in the Celery app's configuration; the real workers of
    these tests get their tasks with `send_task`, which always publishes."""
    from config.celery import app

    was = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = was


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, *, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll `predicate` until it returns a truthy value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def database_url(name: str | None = None, port: int | None = None, host: str | None = None):
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return (f"postgres://{auth}@{host or s['HOST'] or '127.0.0.1'}:"
            f"{port or s['PORT'] or 5432}/{name or s['NAME']}")


class Proc:
    """A subprocess in its own session (so that a kill reaches its children), its output in
    a log file that a failing assertion can show."""

    def __init__(self, name: str, args: list[str], env: dict, log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(args, cwd=BASE_DIR, env=env, stdout=self._log,
                                      stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, sig=signal.SIGKILL) -> None:
        """Signal the process group this process leads (the worker's pool children too)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 10) -> None:
        if self.alive():
            self.kill(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.popen.wait(10)
        else:
            self.kill(signal.SIGKILL)  # children left behind by a killed leader
        self._log.close()

    def log(self, tail: int = 4000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-tail:]


class Processes:
    """Starts and, at exit, stops everything a test started (in reverse order)."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.started: list = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for thing in reversed(self.started):
            with contextlib.suppress(Exception):
                thing.stop()
        return False

    def add(self, thing):
        self.started.append(thing)
        return thing

    # --- servers ------------------------------------------------------------------------

    def redis(self, port: int | None = None) -> "Redis":
        return self.add(Redis(self, port or free_port()))

    def postgres(self) -> "PostgresCluster":
        return self.add(PostgresCluster(self.log_dir))

    # --- the app ------------------------------------------------------------------------

    def app_env(self, *, database_url: str, redis_url: str, **extra) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DJANGO_", "PYTEST", "CC_TEST_", "CELERY_"))}
        env.update({
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "false",
            # The same key as the test process: its sessions sign in the web process.
            "SECRET_KEY": settings.SECRET_KEY,
            "SECURE_SSL_REDIRECT": "false",
            "SECURE_COOKIES": "false",
            "STATIC_MANIFEST": "false",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "EMAIL_URL": "consolemail://",
            "EXPORT_DIR": str(settings.EXPORT_DIR),
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        })
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def worker(self, env: dict, name: str = "worker") -> Proc:
        proc = Proc(name, [str(BIN / "celery"), "-A", "config", "worker", "--loglevel=INFO",
                           "--concurrency=1", "--without-gossip", "--without-mingle",
                           "--without-heartbeat", "-n", f"{name}-{time.monotonic_ns()}@%h"],
                    env, self.log_dir)
        self.add(proc)
        # Ready when it consumes: its log says so.
        wait_until(lambda: "ready." in proc.log(100000) or not proc.alive(), timeout=60,
                   what=f"{name} to start")
        assert proc.alive(), proc.log()
        return proc

    def web(self, env: dict, port: int | None = None) -> "Web":
        port = port or free_port()
        proc = Proc("web", [str(BIN / "gunicorn"), "config.wsgi", "-w", "2",
                            "-b", f"127.0.0.1:{port}", "--timeout", "60",
                            "--graceful-timeout", "5"], env, self.log_dir)
        self.add(proc)
        web = Web(proc, port)
        wait_until(lambda: web.ready() or not proc.alive(), timeout=60, what="web to start")
        assert proc.alive(), proc.log()
        return web


class Redis:
    def __init__(self, procs: Processes, port: int):
        self.procs = procs
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc = None
        self.start()

    def start(self) -> None:
        self.proc = Proc("redis", ["redis-server", "--port", str(self.port), "--bind",
                                   "127.0.0.1", "--save", "", "--appendonly", "no",
                                   "--daemonize", "no"], os.environ.copy(),
                         self.procs.log_dir)
        wait_until(self.ping, timeout=10, what="redis to start")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None


class PostgresCluster:
    """A throw-away PostgreSQL cluster owned by the `postgres` OS user, on a free port."""

    def __init__(self, log_dir: Path):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="cc-faults-pg-"))
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        assert binaries, "PostgreSQL server binaries not found"
        self.bin = binaries[-1].parent
        self._as_postgres([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust",
                           "-U", "postgres", "--no-sync", "-E", "UTF8"])
        self.start()

    def _as_postgres(self, args: list[str], timeout: float = 60) -> str:
        done = subprocess.run(["runuser", "-u", "postgres", "--", *args], cwd=self.dir,
                              capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def start(self) -> None:
        self._as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                           str(self.log), "-w", "-t", "30", "-o",
                           f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                           "-c fsync=off -c synchronous_commit=off", "start"])

    def stop_server(self, mode: str = "fast") -> None:
        self._as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode,
                           "-w", "-t", "30", "stop"])

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def copy_database(self, source_url: str, name: str) -> str:
        """Create `name` here holding a copy (schema and rows) of the source database."""
        psql = str(self.bin / "psql")
        subprocess.run([psql, self.url("postgres"), "-qc", f'CREATE DATABASE "{name}"'],
                       check=True, capture_output=True, timeout=30)
        dump = subprocess.Popen([str(self.bin / "pg_dump"), "--no-owner", source_url],
                                stdout=subprocess.PIPE)
        load = subprocess.run([psql, "-q", "-v", "ON_ERROR_STOP=1", self.url(name)],
                              stdin=dump.stdout, capture_output=True, timeout=120)
        dump.wait(60)
        assert dump.returncode == 0 and load.returncode == 0, load.stderr.decode()[-2000:]
        return self.url(name)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.stop_server("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class Web:
    def __init__(self, proc: Proc, port: int):
        self.proc = proc
        self.port = port
        self.base = f"http://127.0.0.1:{port}"

    def ready(self) -> bool:
        try:
            self.request("GET", "/healthz", timeout=5)
            return True
        except OSError:
            return False

    def request(self, method: str, path: str, *, body=None, headers=None,
                timeout: float = 30) -> tuple[int, bytes, float, dict]:
        """(status, body, seconds, headers); HTTP errors are answers, not exceptions."""
        data = None
        headers = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.base + path, data=data, headers=headers,
                                     method=method)
        started = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return (response.status, response.read(), time.monotonic() - started,
                        dict(response.headers))
        except urllib.error.HTTPError as error:
            return error.code, error.read(), time.monotonic() - started, dict(error.headers)


def session_cookie(user) -> str:
    """A signed-in session of `user` stored in the database the web process reads."""
    from django.test import Client

    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def send_task(broker_url: str, name: str, args=None) -> None:
    """Publish a task to a private broker, as beat (or a web process) would."""
    from celery.exceptions import AlwaysEagerIgnored

    from config.celery import app

    with app.connection_for_write(broker_url) as conn, warnings.catch_warnings():
        warnings.simplefilter("ignore", AlwaysEagerIgnored)  # send_task always publishes
        app.send_task(name, args=args or [], connection=conn)
