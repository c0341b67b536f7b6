"""Settings > Microsoft connection, "Last test": the outcome is kept as facts and worded in
the reader's language at display time, its date by the `when` rule of every page."""

import re
from datetime import UTC, datetime

import pytest
from django.urls import reverse
from django.utils import translation

from credits.templatetags.dates import format_when
from usage.microsoft import pull
from usage.microsoft.errors import ConnectorError, describe
from usage.models import MicrosoftConnection

pytestmark = pytest.mark.django_db


class StubClient:
    def __init__(self, outcome):
        self.outcome = outcome

    def check(self, now):
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


@pytest.fixture
def connection(org):
    return MicrosoftConnection.objects.create(
        organization=org, tenant_id="contoso.onmicrosoft.com",
        client_id="11111111-2222-3333-4444-555555555555")


@pytest.fixture
def admins(make_person):
    return {language: make_person("global_administrator", preferred_language=language,
                                  display_name=f"Admin {language}")
            for language in ("en", "fr")}


def _words(text: str) -> str:
    return " ".join(text.split())


def _last_test(client_for, person) -> str:
    html = client_for(person).get(reverse("settings_microsoft")).content.decode()
    cell = re.search(r"<dd>(.*?)</dd>", html[html.index("Last test" if person.preferred_language
                                                        == "en" else "Dernier test"):], re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", cell.group(1)).replace("&#x27;", "'").split())


def _run_test(client_for, person, monkeypatch, outcome):
    monkeypatch.setattr(pull, "CLIENT_FACTORY", lambda conn, **kw: StubClient(outcome))
    response = client_for(person).post(reverse("settings_microsoft_test"))
    assert response.status_code == 302


def test_a_test_run_in_english_reads_in_french(client_for, admins, connection, monkeypatch):
    _run_test(client_for, admins["en"], monkeypatch, 7)
    connection.refresh_from_db()
    assert connection.last_test_ok is True
    assert connection.last_test_facts == {"code": "ok", "calls": 7}
    with translation.override("fr"):
        when = _words(format_when(connection.last_test_at))
    text = _last_test(client_for, admins["fr"])
    assert text == (
        f"Réussi le {when} UTC Connexion à Microsoft réussie et enregistrements d'appels lus "
        "(7 appels dans la dernière heure) : l'application a CallRecords.Read.All avec le "
        "consentement administrateur.")
    assert "Signed in" not in text
    text = _last_test(client_for, admins["en"])
    when = _words(format_when(connection.last_test_at))
    assert text.startswith(f"Passed on {when} UTC Signed in to Microsoft and read the call "
                           "records (7 calls")


def test_a_failed_test_gives_its_reason_in_the_readers_language(
    client_for, admins, connection, monkeypatch
):
    _run_test(client_for, admins["en"], monkeypatch,
              ConnectorError("permission", "AADSTS650057: Invalid resource."))
    connection.refresh_from_db()
    assert connection.last_test_ok is False
    assert connection.last_test_facts == {"code": "permission",
                                          "detail": "AADSTS650057: Invalid resource."}
    text = _last_test(client_for, admins["fr"])
    assert text.startswith("Échec le ")
    with translation.override("fr"):
        words = _words(describe("permission", "AADSTS650057: Invalid resource."))
    assert text.endswith(words)
    assert words.endswith("(AADSTS650057: Invalid resource.)") and "The app lacks" not in text


def test_a_test_kept_as_a_sentence_only_reads_in_french_when_it_is_ours(
    client_for, admins, connection
):
    # The demo's connection (and a test recorded before its facts were kept).
    MicrosoftConnection.objects.filter(pk=connection.pk).update(
        last_test_at=datetime(2026, 5, 3, 11, 0, tzinfo=UTC), last_test_ok=True,
        last_test_message="Signed in to Microsoft and read the call records (demo data).")
    text = _last_test(client_for, admins["fr"])
    assert text == ("Réussi le 3 mai 2026, 11:00 UTC Connexion à Microsoft réussie et "
                    "enregistrements d'appels lus (données de démonstration).")
