"""Platform hardening: concurrent people imports, the sign-in lockout behind a proxy, the
purchase message after a provider error, and refusing to start without a SECRET_KEY."""

import html
import io
import ipaddress
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.db import connections
from django.test import Client, RequestFactory, override_settings
from django.utils import translation
from hypothesis import given
from hypothesis import settings as settings_h
from hypothesis import strategies as st

from credits.models import LicenseAssignment, Person, PersonRole, User
from credits.people_import import import_csv
from credits.platform.client_ip import client_ip
from credits.platform.services import Actor
from tests.conftest import requires_postgres
from tests.factories import OrganizationFactory, PersonFactory

ROOT = Path(__file__).resolve().parents[2]
HEADER = "userPrincipalName,displayName,email,usageLocation,preferredLanguage,roles,licenses\n"
IMPORTS = 6


def _people_csv(n: int, *, prefix: str) -> str:
    rows = []
    for i in range(n):
        upn = f"{prefix}{i}@race.example"
        # Every other person gets a role (and so a sign-in account), every third a seat;
        # those with a role have no usage location, so that the role is the first change.
        role = "Billing Administrator" if i % 2 == 0 else ""
        country = "" if role else "US"
        licenses = "MCOPSTNC;MCOEV" if i % 3 == 0 else "MCOPSTNC"
        # Mixed case: the directory compares user names without case.
        shown = upn.upper() if i % 4 == 1 else upn
        rows.append(f"{shown},Person {i},{upn},{country},en,{role},{licenses}")
    return HEADER + "\n".join(rows) + "\n"


def _run_concurrently(org, text, tmp_path):
    """Import `text` IMPORTS times at once, half through the command and half as the upload
    page does; returns one list of (upn, ok, message) per import, and any exception."""
    path = tmp_path / "people.csv"
    path.write_text(text, encoding="utf-8")
    barrier = threading.Barrier(IMPORTS)
    outcomes: list[list[tuple[str, bool, str]]] = []
    errors: list[BaseException] = []

    def by_upload():
        barrier.wait()
        report = import_csv(organization=org, data=text.encode(), grow_seats=True,
                            actor=Actor.system("race-upload"))
        assert not report.fatal, report.fatal
        return [(r.upn, r.ok, str(r.message)) for r in report.rows]

    def by_command():
        out = io.StringIO()
        barrier.wait()
        try:
            call_command("import_people", str(path), "--org", org.slug, stdout=out)
        except SystemExit as exc:  # exit 1: some rows rejected; the rows say which
            assert exc.code == 1, out.getvalue()
        rows = []
        for line in out.getvalue().splitlines():
            if line.startswith("line "):
                _line, upn, status, message = line.split(": ", 3)
                rows.append((upn, status == "ok", message))
        return rows

    def run(fn):
        try:
            outcomes.append(fn())
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(by_command if i % 2 else by_upload,))
               for i in range(IMPORTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert errors == []
    assert len(outcomes) == IMPORTS
    return outcomes


def _assert_each_person_once(org, upns):
    for upn in upns:
        person = Person.objects.get(organization=org, upn__iexact=upn)
        held = Counter(LicenseAssignment.objects.filter(person=person, removed_at__isnull=True)
                       .values_list("sku", flat=True))
        assert held and set(held.values()) == {1}, (upn, held)
    assert Person.objects.filter(organization=org).count() == len(upns)


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_imports_of_the_same_new_people_create_each_person_once(tmp_path):
    org = OrganizationFactory(slug="race-import")
    n = 12
    text = _people_csv(n, prefix="new")
    upns = [f"new{i}@race.example" for i in range(n)]
    outcomes = _run_concurrently(org, text, tmp_path)

    created = Counter()
    for rows in outcomes:
        assert [u for u, _ok, _m in rows] == upns  # every row reported, in order
        for upn, ok, message in rows:
            assert ok, (upn, message)
            assert message.startswith(("created", "updated")), message
            if message.startswith("created"):
                created[upn] += 1
    assert created == Counter(dict.fromkeys(upns, 1))
    _assert_each_person_once(org, upns)
    with_role = [f"new{i}@race.example" for i in range(0, n, 2)]
    assert User.objects.filter(email__in=with_role).count() == len(with_role)
    assert all(Person.objects.get(upn=u).user.email == u for u in with_role)
    assert PersonRole.objects.filter(person__organization=org).count() == len(with_role)


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_imports_giving_existing_people_roles_create_one_account_each(tmp_path):
    org = OrganizationFactory(slug="race-roles")
    n = 10
    upns = [f"old{i}@race.example" for i in range(n)]
    for i, upn in enumerate(upns):
        PersonFactory(organization=org, upn=upn, email=upn, display_name=f"Person {i}",
                      usage_location="US" if i % 2 else "")
    text = _people_csv(n, prefix="old")
    outcomes = _run_concurrently(org, text, tmp_path)

    for rows in outcomes:
        assert [u for u, _ok, _m in rows] == upns
        assert all(ok and message.startswith("updated") for _u, ok, message in rows), rows
    _assert_each_person_once(org, upns)
    with_role = upns[::2]
    assert User.objects.filter(email__in=upns).count() == len(with_role)
    assert PersonRole.objects.filter(person__organization=org).count() == len(with_role)


# --- the sign-in lockout behind a proxy -------------------------------------------------------

LOGIN = "/accounts/login/"
PROXY = "10.0.0.1"


def _fail_five_times(client, email):
    codes = [client.post(LOGIN, {"username": email, "password": "wrong-password"}).status_code
             for _ in range(5)]
    assert codes == [200] * 4 + [429]


@pytest.mark.django_db
def test_without_trusted_proxies_a_forged_forwarded_for_does_not_escape_the_lockout(
        make_person, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    person = make_person("billing_administrator")
    for i in range(5):  # a new forged address with every try
        Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").post(
            LOGIN, {"username": person.email, "password": "wrong-password"})
    forged = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.77")
    assert forged.post(LOGIN, {"username": person.email,
                               "password": "pass-word-123"}).status_code == 429


@pytest.mark.django_db
def test_behind_one_trusted_proxy_each_client_has_its_own_lockout(make_person, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    person = make_person("billing_administrator")
    attacker = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.5")
    _fail_five_times(attacker, person.email)
    # The attacker cannot get a fresh counter by forging the left part of the header: the
    # proxy appends the address it saw, and only that one is read.
    forged = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.5")
    assert forged.post(LOGIN, {"username": person.email,
                               "password": "pass-word-123"}).status_code == 429
    # The person, at another address behind the same proxy, still signs in.
    owner = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert owner.post(LOGIN, {"username": person.email,
                              "password": "pass-word-123"}).status_code == 302
    assert AccessAttempt.objects.filter(ip_address="203.0.113.5").exists()
    assert not AccessAttempt.objects.filter(ip_address=PROXY).exists()


@pytest.mark.django_db
def test_behind_a_proxy_the_audit_log_records_the_client_address(make_person, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    admin = make_person("global_administrator")
    client = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.5")
    client.force_login(admin.user)
    actor = Actor.from_request(client.get("/").wsgi_request)
    assert actor.ip == "203.0.113.5"


_header_part = st.one_of(
    st.ip_addresses().map(str),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40),
    st.sampled_from(["", " ", "unknown", "1.2.3.4:8080", "[2001:db8::1]:443", "fe80::1%eth0",
                     "999.1.1.1", "::ffff:10.0.0.1"]),
)


@given(parts=st.lists(_header_part, max_size=5), hops=st.integers(0, 3),
       forwarded=st.booleans())
@settings_h(max_examples=300, deadline=None)
def test_client_ip_is_a_valid_address_or_the_peer(parts, hops, forwarded):
    request = RequestFactory().get("/", REMOTE_ADDR=PROXY)
    if forwarded:
        request.META["HTTP_X_FORWARDED_FOR"] = ",".join(parts)
    with override_settings(TRUSTED_PROXY_COUNT=hops):
        address = client_ip(request)
    if hops == 0 or not forwarded:
        assert address == PROXY
    else:
        parsed = ipaddress.ip_address(address)
        assert str(parsed) == address and "%" not in address
        chain = [p.strip() for p in ",".join(parts).split(",") if p.strip()]
        assert address == PROXY or (len(chain) >= hops and
                                    ipaddress.ip_address(chain[-hops]) == parsed)


# --- a purchase given up after a provider error ----------------------------------------------

CC = "/billing/communications-credits/"


@pytest.fixture
def default_language_after():
    # The middleware activates the person's language in the test's thread; the tests that
    # follow expect the default one.
    yield
    translation.deactivate()


@pytest.mark.django_db
@pytest.mark.parametrize("language,pending,reason", [
    ("en", "We could not confirm this payment yet. Do not pay again: we will finish it "
     "and tell you.",
     "The payment provider could not process the card, and nothing was charged. "
     "Try again later or use another card."),
    ("fr", "Nous n'avons pas encore pu confirmer ce paiement. Ne payez pas une "
     "deuxième fois : nous allons le finaliser et vous tenir informé.",
     "Le prestataire de paiement n'a pas pu traiter la carte et rien n'a été débité. "
     "Réessayez plus tard ou utilisez une autre carte."),
])
def test_a_purchase_after_a_provider_error_stays_pending_then_says_what_to_do(
        client, make_person, org, language, pending, reason, default_language_after):
    """The request makes one try (no sleeping in the web request): the page says the
    payment is not confirmed yet and must not be paid again; when the retries are given up
    the attempt fails with words that say what to do."""
    from django.utils import translation

    from credits.models import LedgerEntry, RechargeAttempt, SimulatedGatewayCharge
    from credits.payments.reasons import recharge_failure_reason
    from credits.services.recharges import recharge_attempt_give_up
    from tests.factories import saved_card

    person = make_person("billing_administrator", preferred_language=language)
    client.force_login(person.user)
    card = saved_card(org, "4000000000000119")  # every charge: processing_error
    response = client.post(f"{CC}add-funds/confirm/", {
        "amount": "100", "payment_method": card.pk, "request_key": "k1"})
    page = html.unescape(response.content.decode())
    assert response.status_code == 200
    assert pending in page
    assert "declined" not in page and "refusé" not in page
    attempt = RechargeAttempt.objects.get()
    assert attempt.status == "pending"
    assert SimulatedGatewayCharge.objects.get().tries == 1  # one try in the request
    attempt = recharge_attempt_give_up(attempt_id=attempt.pk)
    assert (attempt.status, attempt.reason_code) == ("failed", "processing_error")
    assert attempt.reason.startswith("The payment provider could not process the card, and "
                                     "nothing was charged.")
    with translation.override(language):
        assert recharge_failure_reason(kind=attempt.kind, code=attempt.reason_code) == reason
    assert not LedgerEntry.objects.exists()
    assert "tried again" not in html.unescape(client.get("/billing/bills/").content.decode())



# --- refusing to start without a SECRET_KEY ------------------------------------------------------


def _production_env(**extra):
    # Only what the server would have: no key (unless given), DEBUG off, the real settings.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DEBUG": "false",
           "DJANGO_SETTINGS_MODULE": "config.settings", "ALLOWED_HOSTS": "credits.example.com",
           "HOME": os.environ.get("HOME", "/tmp")}
    env.update(extra)
    return env


def _dotenv_sets_a_key() -> bool:
    dotenv = ROOT / ".env"
    return dotenv.exists() and "SECRET_KEY" in dotenv.read_text(errors="replace")


needs_no_dotenv_key = pytest.mark.skipif(_dotenv_sets_a_key(),
                                         reason="a local .env sets SECRET_KEY")


@needs_no_dotenv_key
@pytest.mark.parametrize("key", [None, ""])
def test_manage_py_check_deploy_refuses_a_deployment_without_a_secret_key(key):
    from config.checks import MISSING_SECRET_KEY

    env = _production_env() if key is None else _production_env(SECRET_KEY=key)
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy"],
                            capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert result.returncode != 0
    assert "config.E001" in result.stderr and MISSING_SECRET_KEY in result.stderr


@needs_no_dotenv_key
def test_a_plain_check_of_a_checkout_needs_no_secret_key():
    """`manage.py check` checks the code (models, URLs, settings that are not secrets): a
    fresh checkout passes it before any key exists."""
    result = subprocess.run([sys.executable, "manage.py", "check"], capture_output=True,
                            text=True, env=_production_env(), cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "config.E001" not in result.stderr


@needs_no_dotenv_key
def test_runserver_refuses_to_serve_without_a_secret_key(monkeypatch):
    from config import checks

    monkeypatch.setattr(sys, "argv", ["manage.py", "runserver"])
    monkeypatch.setattr(checks, "secret_key_missing", lambda: True)
    assert [e.id for e in checks.check_secret_key_to_serve()] == ["config.E001"]
    monkeypatch.setattr(sys, "argv", ["manage.py", "migrate"])
    assert checks.check_secret_key_to_serve() == []


@needs_no_dotenv_key
def test_commands_that_sign_nothing_run_without_a_secret_key():
    """A command that signs nothing (here makemigrations) needs no key: a release migrates
    before its key is set, and tools inspect a checkout without one."""
    result = subprocess.run([sys.executable, "manage.py", "makemigrations", "--check",
                             "--dry-run"], capture_output=True, text=True,
                            env=_production_env(), cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "config.E001" not in result.stderr


@needs_no_dotenv_key
def test_the_wsgi_application_refuses_to_start_without_a_secret_key():
    from config.checks import MISSING_SECRET_KEY

    result = subprocess.run([sys.executable, "-c", "import config.wsgi"], capture_output=True,
                            text=True, env=_production_env(), cwd=ROOT, timeout=120)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and MISSING_SECRET_KEY in result.stderr


def test_with_a_secret_key_the_checks_pass_and_the_wsgi_application_loads():
    key = "k" * 20 + "-production-like-key-0123456789-ABCDEFGHIJ"
    env = _production_env(SECRET_KEY=key)
    check = subprocess.run([sys.executable, "manage.py", "check"], capture_output=True,
                           text=True, env=env, cwd=ROOT, timeout=120)
    assert check.returncode == 0, check.stderr
    wsgi = subprocess.run([sys.executable, "-c", "import config.wsgi as w; "
                           "print(callable(w.application))"], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)
    assert wsgi.returncode == 0, wsgi.stderr
    assert wsgi.stdout.strip().endswith("True")
