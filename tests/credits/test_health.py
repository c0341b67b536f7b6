import subprocess
import sys

import pytest


@pytest.mark.django_db
def test_healthz_reports_database_and_broker_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["ok"] and body["broker"]["ok"] and body["down"] == []


@pytest.mark.django_db
def test_healthz_answers_503_naming_the_broker_when_it_is_down(client, settings):
    # Nothing listens on port 1: a real refused connection, not a mock.
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["broker"]
    assert body["database"]["ok"] is True


def test_production_settings_pass_check_deploy_without_warning(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "DEBUG": "false",
        "SECRET_KEY": "x7!kq2Lr9#zPw4@Vn8$Tb3%Hm6^Jc1&Fd5*Gs0(Ya2)Ue7-Qi9+Ro4=Wl8_Xk3",
        "ALLOWED_HOSTS": "credits.example.com",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        capture_output=True, text=True, env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.django_db
def test_pages_carry_a_content_security_policy_without_inline_scripts(admin_client):
    response = admin_client.get("/")
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "<script>" not in response.content.decode()


@pytest.mark.django_db
def test_healthz_does_not_reveal_where_the_broker_is(client, settings):
    settings.CELERY_BROKER_URL = "redis://:secret-pass@127.0.0.1:1/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    body = client.get("/healthz").content.decode()
    assert "secret-pass" not in body and "127.0.0.1" not in body


@pytest.mark.django_db
def test_a_page_form_posted_without_the_csrf_token_is_refused_and_the_api_needs_none(
        admin_person, org):
    """MIDDLEWARE lists the platform's CsrfViewMiddleware (it skips /api/): pages are still
    protected, which is why Django's security.W003 is silenced."""
    from django.test import Client
    from django.urls import reverse

    from credits.models import Person
    from credits.platform.services import Actor
    from usage.services import api_token_create

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_person.user)
    url = reverse("set_language")
    refused = browser.post(url, {"language": "fr", "next": "/"})
    assert refused.status_code == 403
    assert Person.objects.get(pk=admin_person.pk).preferred_language != "fr"
    token = browser.get("/").cookies["csrftoken"].value
    accepted = browser.post(url, {"language": "fr", "next": "/"},
                            HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 302
    assert Person.objects.get(pk=admin_person.pk).preferred_language == "fr"

    _token, raw = api_token_create(organization=org, name="csrf", actor=Actor.system("t"))
    api = Client(enforce_csrf_checks=True).post(
        "/api/v1/calls/authorize", {"userPrincipalName": "nobody@example.com",
                                    "calleeNumber": "+33123456789", "callType": "user_out"},
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.status_code == 200


def test_the_csrf_checks_know_the_platforms_middleware(settings):
    from config.checks import check_csrf_cookie_secure, check_csrf_middleware

    assert check_csrf_middleware() == []
    settings.CSRF_COOKIE_SECURE, settings.CSRF_USE_SESSIONS = False, False
    assert [c.id for c in check_csrf_cookie_secure()] == ["config.W016"]
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "Csrf" not in m]
    assert [c.id for c in check_csrf_middleware()] == ["config.E002"]
