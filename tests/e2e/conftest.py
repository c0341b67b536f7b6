"""Browser end-to-end tests: the real app in a live server, a real Celery worker, Debian's
Chromium driven by Playwright (sync API).

Each test gets the demo organization of `seed_demo` in a `transactional_db` (flushed after
the test); the server (pytest-django's `live_server`), the worker and the browser are
shared by the tests of a module.

Skipped (not failed) when Chromium or Playwright is missing. Screenshots go to
var/screenshots/ (git-ignored).
"""

import io
import os
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings

CHROMIUM = Path(os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 900}
MOBILE = {"width": 390, "height": 844}


def _missing_browser() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _missing_browser()
    if reason:
        skip = pytest.mark.skip(reason=f"browser tests need Chromium: {reason}")
        for item in items:
            if "tests/e2e/" in item.nodeid.replace("\\", "/"):
                item.add_marker(skip)


# --- the app: database, live server, worker ------------------------------------------------

class SerialDatabase:
    """With SQLite in memory, the test, the server threads and the worker share one
    connection (the only way they see one database); one lock makes them take turns, so
    one thread's transaction never interleaves with another's. On PostgreSQL every thread
    has its own connection and nothing is serialized."""

    def __init__(self, connection):
        self.connection = connection
        self.shared = connection.vendor == "sqlite" and connection.is_in_memory_db()
        self.lock = threading.RLock()
        self.held_for_flush = False

    def hold_for_flush(self):
        """Keep the worker off the connection while `transactional_db` flushes it (after
        the test's own fixtures end); released by the next test or the module's end."""
        if self.shared and not self.held_for_flush:
            self.lock.acquire()
            self.held_for_flush = True

    def release_after_flush(self):
        if self.held_for_flush:
            self.held_for_flush = False
            self.lock.release()

    @contextmanager
    def turn(self):
        if not self.shared:
            yield
            return
        with self.lock:
            yield

    def wrap_wsgi(self, app):
        if not self.shared:
            return app
        def locked(environ, start_response):
            # Static files too: every request runs Django's connection checks.
            with self.lock:
                # The whole response inside the turn (a file download streams), and its
                # close(), which sends request_finished.
                result = app(environ, start_response)
                try:
                    return list(result)
                finally:
                    if hasattr(result, "close"):
                        result.close()

        return locked

    # Celery signals: a task takes its turn from prerun to postrun, on the shared connection.
    def task_prerun(self, **kwargs):
        from django.db import connections

        connections[self.connection.alias] = self.connection
        self.lock.acquire()

    def task_postrun(self, **kwargs):
        try:
            self.lock.release()
        except RuntimeError:  # prerun never ran for this task
            pass


class TaskTracker:
    """Tasks published and not yet finished, so a test can wait for the worker to be idle
    before its database is flushed (tasks delayed by an hour or more are not waited for)."""

    def __init__(self):
        self.pending = set()
        self.lock = threading.Lock()

    def published(self, sender=None, headers=None, **kwargs):
        headers = headers or {}
        if headers.get("eta") or headers.get("countdown"):
            return
        with self.lock:
            self.pending.add(headers.get("id"))

    def finished(self, task_id=None, **kwargs):
        with self.lock:
            self.pending.discard(task_id)

    def wait_idle(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if not self.pending:
                    return True
            time.sleep(0.05)
        return False


@pytest.fixture(scope="module")
def celery_worker(django_db_setup):
    """A real worker in a thread (solo pool). Redis when REDIS_URL is set; otherwise the
    in-memory transport, since the worker shares the process (the filesystem broker's
    folders under var/ belong to `make run`). Yields (app, serial, tracker)."""
    from celery import signals
    from celery.contrib.testing.worker import start_worker
    from django.db import DEFAULT_DB_ALIAS, connections

    from config.celery import app

    serial = SerialDatabase(connections[DEFAULT_DB_ALIAS])
    tracker = TaskTracker()
    saved = {key: app.conf[key] for key in
             ("task_always_eager", "broker_url", "broker_transport_options")}

    def reset_pools():
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.task_always_eager = False
    if not settings.REDIS_URL:
        app.conf.broker_url = "memory://"
        app.conf.broker_transport_options = {}
    reset_pools()
    app.control.purge()
    handlers = [(signals.after_task_publish, tracker.published),
                (signals.task_postrun, tracker.finished)]
    if serial.shared:
        serial.connection.inc_thread_sharing()
        handlers += [(signals.task_prerun, serial.task_prerun),
                     (signals.task_postrun, serial.task_postrun)]
    for signal, handler in handlers:
        signal.connect(handler, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING",
                          shutdown_timeout=20):
            yield app, serial, tracker
            serial.release_after_flush()
    finally:
        for signal, handler in handlers:
            signal.disconnect(handler)
        if serial.shared:
            serial.connection.dec_thread_sharing()
        for key, value in saved.items():
            app.conf[key] = value
        reset_pools()


@pytest.fixture
def e2e_app(live_server, transactional_db, celery_worker):
    """The demo organization of `seed_demo` behind pytest-django's live server, with the
    worker running. Yields an object with `url`, `org` and `serial` (wrap ORM reads made
    while the browser works in `with e2e_app.serial.turn():`)."""
    from django.core.management import call_command

    from credits.models import Organization

    _app, serial, tracker = celery_worker
    serial.release_after_flush()
    httpd = live_server.thread.httpd
    if not getattr(httpd, "_e2e_serial", False):
        httpd.set_app(serial.wrap_wsgi(httpd.get_app()))
        httpd._e2e_serial = True
    with serial.turn():
        call_command("seed_demo", stdout=io.StringIO())
        org = Organization.objects.get(slug="contoso")

    class App:
        url = live_server.url

    env = App()
    env.org, env.serial, env.tracker = org, serial, tracker
    try:
        yield env
    finally:
        # The worker finishes what the test started before the database is flushed, and
        # waits while it is.
        tracker.wait_idle()
        serial.hold_for_flush()


# --- the browser ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the ORM calls the tests
    # make between browser steps (and the flush after each test) are ordinary
    # synchronous code, which Django would otherwise refuse.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


class Session:
    """One signed-in person in one browser context, with helpers for the steps."""

    def __init__(self, e2e, context, name):
        self.e2e = e2e
        self.context = context
        self.page = context.new_page()
        self.page.set_default_timeout(15_000)
        self.name = name
        self.console_errors = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.console_errors.append(str(exc)))

    def _console(self, message):
        if message.type == "error":
            self.console_errors.append(message.text)

    def go(self, path):
        response = self.page.goto(self.e2e.url + path)
        assert response is not None and response.status < 400, (path, response and
                                                                  response.status)
        return response

    def sign_in(self, email, password=None):
        from credits.demo import DEMO_PASSWORD

        self.go("/accounts/login/")
        self.page.get_by_label(re.compile("^(E-mail|Adresse e-mail|E-mail)$")).fill(email)
        self.page.locator("#id_password").fill(password or DEMO_PASSWORD)
        self.page.locator("form button[type=submit]").click()
        self.page.wait_for_url(self.e2e.url + "/")

    def shot(self, name, *, full_page=True):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def axe(self, *, exclude_rules=()):
        """Serious and critical axe-core violations of the current page (WCAG 2.x A/AA)."""
        self.page.add_script_tag(path=str(AXE))
        result = self.page.evaluate(
            """async (disabled) => {
                const rules = {};
                for (const id of disabled) rules[id] = {enabled: false};
                const r = await axe.run(document, {
                    runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a',
                                                     'wcag21aa', 'best-practice']},
                    rules});
                return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: '
                        + n.failureSummary)}));
            }""",
            list(exclude_rules),
        )
        return [v for v in result if v["impact"] in ("serious", "critical")]


@pytest.fixture
def open_session(e2e_app, browser):
    """`open_session(email, language="en", viewport=DESKTOP, csp=True)` -> a signed-in
    Session. `csp=False` lets the tests inject axe-core (an inline script the app's
    policy rightly refuses)."""
    contexts = []

    def open_(email, *, language="en", viewport=None, csp=True, name=None):
        context = browser.new_context(
            viewport=viewport or DESKTOP, locale="fr-FR" if language == "fr" else "en-US",
            accept_downloads=True, bypass_csp=not csp, timezone_id="UTC",
        )
        contexts.append(context)
        session = Session(e2e_app, context, name or email.split("@")[0])
        if email:
            session.sign_in(email)
        return session

    yield open_
    for context in contexts:
        context.close()
