"""E-mails and the message center name pools, languages and decline reasons in the
reader's words: never an internal code (`domestic`, `conference`, `US`, `fr`,
`card_declined`) nor the English label an event stored."""

import re

import pytest
from django.core import mail

from notifications.models import Delivery, Notification
from tests.factories import PersonFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def readers(org):
    def person(name, language):
        return PersonFactory(organization=org, display_name=name, preferred_language=language,
                             roles=["billing_administrator"], with_user=True)

    return {"en": person("Ann English", "en"), "fr": person("Alex Français", "fr")}


def _mail_to(person):
    [message] = [m for m in mail.outbox if m.to == [person.email]]
    return message


def _text(html: str) -> str:
    # Thousands separators vary by locale data (U+202F, U+00A0): any space reads the same.
    return " ".join(re.sub(r"<[^>]+>", " ", html).replace("\u202f", " ").split())


def test_pool_alert_email_names_the_pool_and_country_in_each_readers_language(
    org, readers, emit
):
    emit(org, "pool_80")  # the payload's stored label: "Domestic calling, US"
    en, fr = _mail_to(readers["en"]), _mail_to(readers["fr"])
    assert en.subject == ("[Contoso] Minute pool 80% used: "
                          "Domestic calling (United States)")
    assert "Domestic calling (United States)" in _text(en.alternatives[0][0])
    assert fr.subject == ("[Contoso] Forfait de minutes utilisé à 80 % : "
                          "Appels nationaux (États-Unis)")
    for part in (fr.body, _text(fr.alternatives[0][0])):
        assert "Appels nationaux (États-Unis)" in part
        assert "Domestic calling" not in part
        assert ", US" not in part and "domestic" not in part


def test_conference_pool_alert_reads_its_name_without_a_code(org, readers, emit):
    emit(org, "pool_100", pool="Audio Conferencing dial-out", kind="conference", country="",
         used=420, total=420, left=0)
    fr = _mail_to(readers["fr"])
    assert "Appels sortants d'audioconférence" in fr.subject
    assert "Audio Conferencing" not in fr.body and "conference" not in fr.body


def test_message_center_lists_the_pool_in_the_readers_language(
    client, org, readers, emit
):
    emit(org, "pool_80")
    client.force_login(readers["fr"].user)
    page = _text(client.get("/notifications/").content.decode())
    assert ("Appels nationaux (États-Unis) : 2 400 minutes sur 3 000 utilisées en "
            "mai 2026, il en reste 600.") in page
    assert "Domestic calling" not in page
    client.force_login(readers["en"].user)
    page = _text(client.get("/notifications/").content.decode())
    assert "Domestic calling (United States): 2,400 of 3,000 minutes used in May 2026" in page


def test_message_center_gives_a_decline_reason_not_its_code(client, org, readers, emit):
    emit(org, "recharge_failed", reason_code="card_declined", reason="The bank declined.")
    client.force_login(readers["fr"].user)
    page = _text(client.get("/notifications/").content.decode())
    assert "la carte a été refusée par sa banque" in page
    assert "card_declined" not in page


def test_notification_detail_names_each_recipients_language(
    client, org, readers, emit, make_person
):
    emit(org, "pool_80")
    notification = Notification.objects.get(organization=org, name="pool_80")
    assert set(Delivery.objects.filter(notification=notification)
               .values_list("language", flat=True)) >= {"en", "fr"}
    admin = make_person("global_administrator", display_name="Global Admin")
    client.force_login(admin.user)
    page = client.get(f"/notifications/{notification.pk}/").content.decode()
    cells = re.findall(r"<td>([^<]*)</td>", page)
    assert "English" in cells and "French" in cells
    assert "en" not in cells and "fr" not in cells
