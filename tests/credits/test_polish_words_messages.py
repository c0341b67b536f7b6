"""Issue 19 (polish): the API docs under the CSP, the report's range kept in step, messages
people read, numbers in their language, and `make run`'s settings."""

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from credits.selectors.licenses import month_start

pytestmark = pytest.mark.django_db

PASSWORD = "pass-word-123"


# --- /api/v1/docs ---------------------------------------------------------------------------

def test_api_docs_load_swagger_ui_from_the_app_under_its_policy(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'src="/static/ninja/swagger-ui-bundle.js"' in page
    assert 'src="/static/ninja/swagger-ui-init.js"' in page
    assert 'href="/static/ninja/swagger-ui.css"' in page
    assert "cdn" not in page.lower()
    # No script runs inline: the only inline <script> is JSON data.
    assert page.count("<script") == 3 and 'type="application/json"' in page
    assert "script-src 'self'" in response["Content-Security-Policy"]
    asset = client.get("/static/ninja/swagger-ui-bundle.js")
    assert asset.status_code == 200


# --- the report's date range ---------------------------------------------------------------

def test_a_preset_range_tells_the_page_its_dates_and_a_clean_address(admin_client):
    today = timezone.now().date()
    stale = {"range": "7", "from": (today - timedelta(days=27)).isoformat(),
             "to": today.isoformat()}
    response = admin_client.get("/reports/pstn-usage/", stale, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response["HX-Push-Url"] == "/reports/pstn-usage/?range=7"
    event = json.loads(response["HX-Trigger-After-Swap"])["cc:report-range"]
    assert event == {"range": "7", "from": (today - timedelta(days=6)).isoformat(),
                     "to": today.isoformat()}


def test_a_custom_range_keeps_its_dates_in_the_address(admin_client):
    query = {"range": "custom", "from": "2026-01-03", "to": "2026-01-09", "call_type": ""}
    response = admin_client.get("/reports/pstn-usage/", query, HTTP_HX_REQUEST="true")
    assert response["HX-Push-Url"] == (
        "/reports/pstn-usage/?range=custom&from=2026-01-03&to=2026-01-09")
    event = json.loads(response["HX-Trigger-After-Swap"])["cc:report-range"]
    assert (event["from"], event["to"]) == ("2026-01-03", "2026-01-09")


def test_a_full_page_load_sends_no_range_headers(admin_client):
    response = admin_client.get("/reports/pstn-usage/", {"range": "7"})
    assert "HX-Push-Url" not in response


# --- messages ------------------------------------------------------------------------------

def test_a_person_without_an_admin_role_is_told_why(client, make_person):
    person = make_person(upn="no.role@contoso.example", email="no.role@contoso.example")
    response = client.post("/accounts/login/", {"username": person.email,
                                                "password": PASSWORD})
    assert response.status_code == 200
    page = response.content.decode()
    assert "You have no admin role in Credits Center; ask your Global Administrator." in page
    assert "_auth_user_id" not in client.session


def test_a_wrong_password_still_gets_the_usual_answer(client, make_person):
    person = make_person(upn="no.role2@contoso.example", email="no.role2@contoso.example")
    response = client.post("/accounts/login/", {"username": person.email,
                                                "password": "wrong-password"})
    assert "no admin role" not in response.content.decode()


def test_an_admin_signs_in(client, make_person):
    person = make_person("global_reader", upn="reader@contoso.example",
                         email="reader@contoso.example")
    response = client.post("/accounts/login/", {"username": person.email,
                                                "password": PASSWORD})
    assert response.status_code == 302


def test_the_settings_gear_is_shown_only_to_who_may_open_settings(client_for, make_person):
    licenses_admin = make_person("license_administrator")
    page = client_for(licenses_admin).get("/").content.decode()
    assert 'class="topbar__icon" href="/settings/"' not in page
    reader = make_person("global_reader")
    page = client_for(reader).get("/").content.decode()
    assert 'class="topbar__icon" href="/settings/"' in page


def test_notifications_is_in_the_navigation_once(admin_client):
    page = admin_client.get("/").content.decode()
    labels = [part.split("<")[0] for part in page.split('class="leftnav__label">')[1:]]
    nav_links = page.split('id="leftnav"')[1].split("</nav>")[0]
    assert labels.count("Notifications") + nav_links.count(">Notifications</a>") == 1
    assert "Message center" in nav_links


def test_an_empty_past_month_of_minute_pools_says_there_is_no_data(admin_client):
    current = month_start()
    past = (current - timedelta(days=1)).replace(day=1)
    page = admin_client.get("/reports/minute-pools/", {"month": past.strftime("%Y-%m")})
    text = page.content.decode()
    assert "No data for this month." in text
    assert "no calling plan or Audio Conferencing license is assigned" not in text
    page = admin_client.get("/reports/minute-pools/").content.decode()
    assert "no calling plan or Audio Conferencing license is assigned" in page


def test_the_language_menu_names_each_language_in_itself(admin_client):
    page = admin_client.get("/").content.decode()
    assert ">Français</option>" in page
    assert ">French</option>" not in page


# --- numbers -------------------------------------------------------------------------------

def test_counts_carry_the_readers_thousands_separators():
    from django.utils import translation

    from credits.templatetags.numbers import num

    with translation.override("fr"):
        assert num(15000) == "15\u202f000"
    with translation.override("en"):
        assert num(15000) == "15,000"
        assert num(838.14, 1) == "838.1"


# --- make run ------------------------------------------------------------------------------

def _settings_under(env: dict) -> dict:
    code = ("import django, json, os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings';"
            "from django.conf import settings as s;"
            "print(json.dumps({'site': s.SITE_URL, 'mail': s.EMAIL_BACKEND, "
            "'debug': s.DEBUG, 'path': str(getattr(s, 'EMAIL_FILE_PATH', '')), "
            "'key': bool(s.SECRET_KEY)}))")
    clean = {k: v for k, v in os.environ.items()
             if k not in ("DEBUG", "LOCAL_RUN", "EMAIL_URL", "SITE_URL", "WEB_PORT",
                          "DJANGO_SETTINGS_MODULE")}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, check=True,
                         capture_output=True, text=True, cwd=settings.BASE_DIR)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_make_run_settings_file_emails_under_var_and_keep_error_pages_and_the_port():
    local = _settings_under({"LOCAL_RUN": "true", "WEB_PORT": "8123"})
    assert local["site"] == "http://127.0.0.1:8123"
    assert local["mail"] == "django.core.mail.backends.filebased.EmailBackend"
    assert local["path"].endswith("var/mail")
    assert local["debug"] is False and local["key"] is True
    asked = _settings_under({"LOCAL_RUN": "true", "DEBUG": "true"})
    assert asked["debug"] is True
    deployed = _settings_under({"SECRET_KEY": "x" * 50})
    assert deployed["mail"] == "django.core.mail.backends.console.EmailBackend"
    assert deployed["site"] == "http://127.0.0.1:8000"

