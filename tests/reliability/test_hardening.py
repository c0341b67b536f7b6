"""Hardening: CSRF on every form, sign-in throttling (django-axes), password validators,
production cookie/HSTS settings, the Content Security Policy header, and no secret in the
repository. (The API's hashed tokens, per-organization scope and rate limit are tested in
tests/usage/test_api.py; `check --deploy` in tests/credits/test_health.py.)"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client

from .test_permission_matrix import EXPECT, post_data
from .world import build_world, fingerprint, url_of

ROOT = Path(__file__).resolve().parents[2]


# --- CSRF -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_form_refuses_a_post_without_the_csrf_token(admin_person):
    world = build_world(admin_person.organization, admin_person)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_person.user)
    accepted = []
    targets = [name for name, rules in EXPECT.items() if "POST" in rules]
    targets += ["login", "password_reset"]
    assert len(targets) >= 20
    for name in targets:
        before = fingerprint()
        data = post_data(name, world) if "POST" in EXPECT[name] else {
            "username": admin_person.email, "password": "x", "email": admin_person.email}
        response = client.post(url_of(name, world), data)
        if response.status_code != 403 or fingerprint() != before:
            accepted.append((name, response.status_code))
    # Django's admin sign-in form too.
    if Client(enforce_csrf_checks=True).post("/admin/login/", {
            "username": "x", "password": "y"}).status_code != 403:
        accepted.append(("admin:login", "no 403"))
    assert accepted == []


@pytest.mark.django_db
def test_a_form_with_its_csrf_token_is_accepted(admin_person):
    """The refusals above are the CSRF check, not a form that refuses everything."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_person.user)
    page = client.get("/settings/api-tokens/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post("/settings/api-tokens/", {"name": "ok", "csrfmiddlewaretoken": token})
    assert response.status_code == 200 and "cc_" in response.content.decode()


# --- sign-in throttling (django-axes) ------------------------------------------------------------


@pytest.mark.django_db
def test_five_failed_sign_ins_lock_that_username_from_that_address(client, make_person,
                                                                   settings):
    assert settings.AUTHENTICATION_BACKENDS[0].startswith("axes.")
    person = make_person("billing_administrator")
    other = make_person("global_reader")
    for _ in range(4):
        response = client.post("/accounts/login/", {"username": person.email,
                                                    "password": "wrong-password"})
        assert response.status_code == 200  # the form again, with its error
    fifth = client.post("/accounts/login/", {"username": person.email, "password": "nope"})
    assert fifth.status_code == 429  # the fifth failure locks
    # Even the right password is refused now, with a page that says why and for how long.
    locked = client.post("/accounts/login/", {"username": person.email,
                                              "password": "pass-word-123"})
    page = locked.content.decode()
    assert locked.status_code == 429
    assert "Sign-in locked" in page and "Wait 15 minutes" in page
    assert "_auth_user_id" not in client.session
    # Another person at the same address is not locked out.
    response = client.post("/accounts/login/", {"username": other.email,
                                                "password": "pass-word-123"})
    assert response.status_code == 302 and client.session["_auth_user_id"]
    # The same person from another address is not locked out either.
    fresh = Client(REMOTE_ADDR="10.9.8.7")
    assert fresh.post("/accounts/login/", {"username": person.email,
                                           "password": "pass-word-123"}).status_code == 302


@pytest.mark.django_db
def test_a_successful_sign_in_resets_the_failure_count(client, make_person):
    person = make_person("billing_administrator")
    for _ in range(4):
        client.post("/accounts/login/", {"username": person.email, "password": "nope"})
    assert client.post("/accounts/login/", {"username": person.email,
                                            "password": "pass-word-123"}).status_code == 302
    client.logout()
    for _ in range(4):
        client.post("/accounts/login/", {"username": person.email, "password": "nope"})
    assert client.post("/accounts/login/", {"username": person.email,
                                            "password": "pass-word-123"}).status_code == 302


# --- passwords and production settings -----------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("password", ["short1", "password123", "12345678901"])
def test_weak_passwords_are_refused(password, make_person):
    with pytest.raises(ValidationError):
        validate_password(password, user=make_person().user)


def test_production_settings_use_secure_cookies_hsts_and_axes():
    env = {"PATH": "/usr/bin:/bin", "DEBUG": "false", "ALLOWED_HOSTS": "credits.example.com",
           "SECRET_KEY": "k" * 20 + "-production-like-key-0123456789-ABCDEFGHIJ",
           "DJANGO_SETTINGS_MODULE": "config.settings"}
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({k: getattr(s, k) for k in ['SESSION_COOKIE_SECURE', "
        "'CSRF_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', 'SECURE_HSTS_SECONDS', "
        "'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SECURE_SSL_REDIRECT', 'SECURE_CONTENT_TYPE_NOSNIFF',"
        " 'X_FRAME_OPTIONS', 'AUTHENTICATION_BACKENDS', 'AXES_FAILURE_LIMIT', 'MIDDLEWARE',"
        " 'INSTALLED_APPS', 'AUTH_PASSWORD_VALIDATORS', 'DEBUG']}, default=str))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    s = json.loads(result.stdout.strip().splitlines()[-1])
    assert s["DEBUG"] is False
    assert s["SESSION_COOKIE_SECURE"] and s["CSRF_COOKIE_SECURE"] and s["SESSION_COOKIE_HTTPONLY"]
    assert s["SECURE_HSTS_SECONDS"] >= 31536000 and s["SECURE_HSTS_INCLUDE_SUBDOMAINS"]
    assert s["SECURE_SSL_REDIRECT"] and s["SECURE_CONTENT_TYPE_NOSNIFF"]
    assert s["X_FRAME_OPTIONS"] == "DENY"
    assert s["AUTHENTICATION_BACKENDS"][0] == "axes.backends.AxesStandaloneBackend"
    assert s["AXES_FAILURE_LIMIT"] == 5
    assert "axes" in s["INSTALLED_APPS"] and s["MIDDLEWARE"][-1] == "axes.middleware.AxesMiddleware"
    assert "credits.platform.middleware.ContentSecurityPolicyMiddleware" in s["MIDDLEWARE"]
    assert len(s["AUTH_PASSWORD_VALIDATORS"]) >= 4


@pytest.mark.django_db
def test_pages_send_a_strict_content_security_policy(admin_client):
    policy = admin_client.get("/").headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


# --- no secret in the repository ----------------------------------------------------------

SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?"
                              r"PRIVATE KEY(?: BLOCK)?-----"),
    "AWS access key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}"),
    "Stripe live key": re.compile(r"\b[sr]k_live_[A-Za-z0-9]{16,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    "password in a URL": re.compile(r"\b[a-z+]+://[^\s:/@'\"]+:(?!pass@|password@|PASSWORD@)"
                                    r"[^\s@/'\"]{6,}@(?!smtp\.example\.com|example\.)"),
}
# A literal Django signing key outside the known development and test ones.
SECRET_KEY_LITERAL = re.compile(r"SECRET_KEY\s*[=:]\s*[\"']([^\"']{20,})[\"']")
ALLOWED_KEY_WORDS = ("dev-only", "test-only", "insecure")


def _repository_files() -> list[Path]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
            capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in listed if (ROOT / name).is_file()]


def test_no_secret_is_committed():
    found = []
    files = _repository_files()
    assert len(files) > 100
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        if rel == ".env" or rel.endswith((".pem", ".key", ".p12", ".pfx")):
            found.append((rel, "secret file"))
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for label, pattern in SECRET_PATTERNS.items():
            for match in pattern.finditer(text):
                found.append((rel, label, match.group(0)[:24]))
        if not rel.startswith("tests/"):
            for match in SECRET_KEY_LITERAL.finditer(text):
                if not any(word in match.group(1) for word in ALLOWED_KEY_WORDS):
                    found.append((rel, "SECRET_KEY literal"))
    assert found == []


def test_the_secret_scan_finds_a_planted_key():
    """The scan above can fail: its patterns match real-looking secrets."""
    planted = "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIE...\n"
    assert SECRET_PATTERNS["private key"].search(planted)
    assert SECRET_PATTERNS["AWS access key"].search("key = AKIA" + "ABCDEFGHIJKLMNOP")
    assert SECRET_PATTERNS["password in a URL"].search("postgres://app:" + "s3cr3t-pw@db/x")
    assert SECRET_KEY_LITERAL.search('SECRET_KEY = "' + "r" * 40 + '"')
