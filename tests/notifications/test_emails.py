"""Who is e-mailed about each event, in which language, saying what (locmem backend)."""

import pytest
from django.core import mail
from django.utils import translation
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from notifications import catalog, summaries
from notifications.models import Delivery, DeliveryStatus, Notification
from notifications.services import event_routing_set
from tests.factories import PersonFactory

pytestmark = pytest.mark.django_db

CREDIT_EVENTS = [
    "recharge_succeeded", "recharge_failed", "balance_zero", "balance_low",
    "funds_expiring", "auto_recharge_disabled",
]
POOL_EVENTS = ["pool_80", "pool_100"]


@pytest.fixture
def people(org, other_org):
    """One person per interesting role (credit_alerts / pool_alerts from roles.csv)."""

    def person(name, *roles, organization=org, **kw):
        return PersonFactory(organization=organization, display_name=name, roles=list(roles),
                             **kw)

    return {
        # credit_alerts yes, pool_alerts no
        "global": person("Megan Global", "global_administrator"),
        # credit_alerts yes, pool_alerts yes
        "billing": person("Alex Billing", "billing_administrator", preferred_language="fr"),
        # credit_alerts yes, pool_alerts no
        "lync": person("Lee Lync", "lync_service_administrator"),
        # credit_alerts no, pool_alerts no
        "reader": person("Gail Reader", "global_reader"),
        "nobody": person("Nora Norole"),
        # Someone else's billing administrator
        "stranger": person("Fab Billing", "billing_administrator", organization=other_org),
    }


def recipients():
    return sorted(m.to[0] for m in mail.outbox)


@pytest.mark.parametrize("name", CREDIT_EVENTS)
def test_credit_events_email_every_credit_alerts_role_holder_of_the_organization(
    org, people, emit, name
):
    emit(org, name)
    expected = sorted(people[k].email for k in ("global", "billing", "lync"))
    assert recipients() == expected


@pytest.mark.parametrize("name", POOL_EVENTS)
def test_pool_events_email_only_pool_alerts_role_holders(org, people, emit, name):
    emit(org, name)
    assert recipients() == [people["billing"].email]


def test_export_ready_emails_its_requester_only(org, people, emit):
    emit(org, "export_ready", requester_person_id=people["nobody"].pk)
    assert recipients() == [people["nobody"].email]
    notification = Notification.objects.get(name="export_ready")
    assert notification.audience_person == people["nobody"]


def test_export_ready_of_another_organizations_person_emails_nobody(org, people, emit):
    emit(org, "export_ready", requester_person_id=people["stranger"].pk)
    assert mail.outbox == []
    assert not Notification.objects.filter(name="export_ready").exists()


def test_person_without_email_is_skipped_and_the_delivery_log_says_so(org, people, emit):
    PersonFactory(organization=org, display_name="No Mail", email="",
                  roles=["billing_administrator"])
    emit(org, "balance_zero")
    skipped = Delivery.objects.get(recipient_name="No Mail")
    assert skipped.status == DeliveryStatus.SKIPPED
    assert skipped.reason == "No e-mail address"
    assert len(mail.outbox) == 3
    assert Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 3


def test_roles_chosen_in_settings_replace_the_defaults_for_that_event_only(
    org, people, emit, admin_person
):
    from credits.platform.services import Actor

    event_routing_set(
        organization=org,
        routing={"recharge_failed": ["global_reader"]},
        actor=Actor.system("test"),
    )
    emit(org, "recharge_failed")
    assert recipients() == [people["reader"].email]
    mail.outbox.clear()
    emit(org, "balance_zero")
    assert people["reader"].email not in recipients()
    assert people["billing"].email in recipients()


def test_recipients_are_resolved_when_the_event_happens(org, people, emit):
    emit(org, "balance_zero")
    first = {d.email for d in Delivery.objects.all()}
    people["lync"].roles.all().delete()
    emit(org, "balance_zero")
    second = Delivery.objects.filter(notification__in=Notification.objects.order_by("-id")[:1])
    assert people["lync"].email in first
    assert people["lync"].email not in {d.email for d in second}


# --- Language and content ------------------------------------------------------------------


def _mail_to(person):
    [message] = [m for m in mail.outbox if m.to == [person.email]]
    return message


def _html(message):
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return html


def test_recharge_failed_says_the_reason_and_links_to_the_card_in_english(
    org, people, emit, settings
):
    settings.SITE_URL = "https://credits.example.com"
    emit(org, "recharge_failed")
    message = _mail_to(people["global"])
    assert message.subject == (
        "[Contoso] Action needed: a Communications Credits recharge failed"
    )
    assert "A recharge of $100.00 with Visa •••• 0069 was declined: the card has expired." in (
        message.body
    )
    assert "The next attempt is at May 3, 2026, 11:00:00\u202fAM UTC." in message.body
    link = "https://credits.example.com/billing/communications-credits/payment-methods/"
    assert f"Update the payment method: {link}" in message.body
    assert f'href="{link}"' in _html(message)
    assert "the card has expired" in _html(message)


def test_recharge_failed_is_in_french_for_a_french_reader(org, people, emit):
    emit(org, "recharge_failed")
    message = _mail_to(people["billing"])
    assert message.subject == (
        "[Contoso] Action requise : la recharge de vos crédits de communication a échoué"
    )
    assert "Bonjour Alex Billing," in message.body
    assert (
        "Une recharge de 100,00\xa0$US avec Visa •••• 0069 a été refusée : la carte a expiré."
        in message.body
    )
    assert "La prochaine tentative aura lieu le 3 mai 2026, 11:00:00 UTC." in message.body
    assert 'lang="fr"' in _html(message)
    assert "Mettre à jour le moyen de paiement" in _html(message)


def test_a_decline_reason_reads_in_the_readers_language_in_mail_and_message_center(
    org, people, emit
):
    # The payload keeps billing's English sentence; readers get the reason in their words.
    emit(org, "recharge_failed", reason_code="generic_decline",
         reason="The bank declined the card.")
    body = _mail_to(people["billing"]).body  # a French reader
    assert "a été refusée : la carte a été refusée par sa banque. Aucun montant" in body
    notification = Notification.objects.get(organization=org, name="recharge_failed")
    with translation.override("fr"):
        assert summaries.summary(notification, "fr") == (
            "Une recharge de 100,00\xa0$US avec Visa •••• 0069 a été refusée : la carte a "
            "été refusée par sa banque.")
    with translation.override("en"):
        assert summaries.summary(notification, "en") == (
            "A recharge of $100.00 with Visa •••• 0069 was declined: the card was declined "
            "by its bank.")


def test_recharge_failed_that_switched_auto_recharge_off_says_so(org, people, emit):
    emit(org, "recharge_failed", declines_in_a_row=3, auto_recharge_disabled=True,
         next_attempt_at=None)
    body = _mail_to(people["global"]).body
    assert "Auto-recharge is now switched off after 3 declines in a row." in body
    assert "next attempt" not in body


def test_recharge_succeeded_gives_amount_balance_card_and_invoice_link(org, people, emit):
    emit(org, "recharge_succeeded")
    english = _mail_to(people["global"])
    assert english.subject == "[Contoso] Communications Credits recharged: $100.00"
    assert "$100.00 was added to the Communications Credits of Contoso by auto-recharge." in (
        english.body
    )
    assert "New balance: $1,234.56" in english.body
    assert "Payment method: Visa •••• 4242" in english.body
    assert "View the invoice: http://127.0.0.1:8000/billing/invoices/17/" in english.body
    french = _mail_to(people["billing"])
    assert "Nouveau solde : 1\u202f234,56\xa0$US" in french.body


def test_balance_zero_names_the_stopped_calls_and_links_to_add_funds(org, people, emit):
    emit(org, "balance_zero")
    message = _mail_to(people["global"])
    assert message.subject == (
        "[Contoso] Your Communications Credits balance is -$2.40: calls are stopped"
    )
    assert "toll-free numbers, international calls, meeting dial-out" in message.body
    assert "Add funds: http://127.0.0.1:8000/billing/communications-credits/add-funds/" in (
        message.body
    )


def test_balance_low_gives_the_level_and_the_days_left(org, people, emit):
    emit(org, "balance_low")
    body = _mail_to(people["global"]).body
    assert "is $42.10, below the warning level of $50.00." in body
    assert "it lasts about 3 days." in body
    assert "il durera environ 3 jours." in _mail_to(people["billing"]).body


def test_funds_expiring_gives_amount_and_date_in_the_readers_language(org, people, emit):
    emit(org, "funds_expiring")
    assert "$75.25 of the Communications Credits of Contoso expire on June 1, 2026." in (
        _mail_to(people["global"]).body
    )
    assert "expirent le 1 juin 2026" in _mail_to(people["billing"]).body


def test_pool_alert_gives_pool_used_and_left(org, people, emit):
    emit(org, "pool_80")
    message = _mail_to(people["billing"])
    assert message.subject == (
        "[Contoso] Forfait de minutes utilisé à 80 % : Appels nationaux (États-Unis)")
    assert "a utilisé 2\u202f400 de ses 3\u202f000 minutes en mai 2026. Il reste 600 minutes." in (
        message.body
    )
    assert "http://127.0.0.1:8000/reports/minute-pools/" in message.body


def test_export_ready_links_to_the_file_and_gives_its_expiry(org, people, emit):
    emit(org, "export_ready", requester_person_id=people["global"].pk)
    message = _mail_to(people["global"])
    assert message.subject == "[Contoso] Your PSTN usage export (Excel) is ready"
    assert (
        "Download the export: http://127.0.0.1:8000/reports/downloads/#export-5" in message.body
    )
    assert "The link works until May 10, 2026, 8:00:00\u202fAM UTC" in message.body
    assert "because you asked for this export" in message.body


# Each event's link, from the ids of conftest.PAYLOADS.
LINKS = {
    "recharge_succeeded": "/billing/invoices/17/",
    "recharge_failed": "/billing/communications-credits/payment-methods/",
    "auto_recharge_disabled": "/billing/communications-credits/payment-methods/",
    "balance_zero": "/billing/communications-credits/add-funds/",
    "balance_low": "/billing/communications-credits/add-funds/",
    "funds_expiring": "/billing/communications-credits/",
    "pool_80": "/reports/minute-pools/",
    "pool_100": "/reports/minute-pools/",
    "export_ready": "/reports/downloads/#export-5",
}
PATH_FIELDS = ["invoice_path", "add_funds_path", "fix_path", "path"]


def _reader(people, name):
    return people["billing"] if name in POOL_EVENTS else people["global"]


@pytest.mark.parametrize("name", sorted(LINKS))
def test_email_and_message_center_link_to_the_page_of_each_event(
    org, people, emit, settings, name
):
    settings.SITE_URL = "https://credits.example.com"
    emit(org, name, requester_person_id=people["global"].pk)
    message = _mail_to(_reader(people, name))
    assert f"https://credits.example.com{LINKS[name]}" in message.body
    assert f'href="https://credits.example.com{LINKS[name]}"' in _html(message)
    if name != "export_ready":  # its footer names the request, not a setting
        assert "https://credits.example.com/settings/notifications/" in message.body
    notification = Notification.objects.get(organization=org, name=name)
    assert summaries.link(notification)[0] == LINKS[name]


@pytest.mark.parametrize("name", sorted(LINKS))
def test_a_path_in_the_payload_is_never_a_link(org, people, emit, name):
    emit(org, name, requester_person_id=people["global"].pk,
         **dict.fromkeys(PATH_FIELDS, "//evil.example/pay"))
    message = _mail_to(_reader(people, name))
    assert "evil.example" not in message.body
    assert "evil.example" not in _html(message)
    assert f"http://127.0.0.1:8000{LINKS[name]}" in message.body
    notification = Notification.objects.get(organization=org, name=name)
    assert summaries.link(notification)[0] == LINKS[name]


@given(path=st.text(), value=st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(), st.integers(), max_size=2),
))
@hypothesis_settings(max_examples=200, deadline=None)
def test_a_link_is_built_from_ids_whatever_the_payload_holds(path, value):
    for name in LINKS:
        payload = {**dict.fromkeys(PATH_FIELDS, path), "invoice_id": value, "export_id": value}
        link = catalog.link_path(name, payload)
        assert link.startswith("/") and not link.startswith("//")
        if name == "recharge_succeeded":
            assert link in ("/billing/bills/", f"/billing/invoices/{catalog.object_id(value)}/")
        elif name == "export_ready":
            assert link in ("/reports/downloads/",
                            f"/reports/downloads/#export-{catalog.object_id(value)}")
        else:
            assert link == LINKS[name]


@pytest.mark.parametrize(("value", "expected"), [
    (17, 17), ("17", 17), (0, None), (-3, None), (True, None), (1.5, None), ("1e3", None),
    ("١٧", None), (" 17", None), ("9" * 5000, None), (2**63, None), (None, None), ([17], None),
])
def test_only_a_positive_row_id_names_a_row(value, expected):
    assert catalog.object_id(value) == expected


def test_an_old_payload_without_ids_links_to_the_list_pages(org, people, emit):
    emit(org, "recharge_succeeded", invoice_id=None, invoice_path="/billing/invoices/17/")
    assert "View the invoice: http://127.0.0.1:8000/billing/bills/" in (
        _mail_to(people["global"]).body
    )


def test_html_escapes_payload_text(org, people, emit):
    emit(org, "recharge_failed", card="<b>Visa</b>")
    html = _html(_mail_to(people["global"]))
    assert "<b>Visa</b>" not in html
    assert "&lt;b&gt;Visa&lt;/b&gt;" in html


def test_every_event_has_english_and_french_subject_text_and_html(org, people, emit):
    for name in CREDIT_EVENTS + POOL_EVENTS:
        emit(org, name)
    emit(org, "export_ready", requester_person_id=people["billing"].pk)
    french = [m for m in mail.outbox if m.to == [people["billing"].email]]
    english = [m for m in mail.outbox if m.to == [people["global"].email]]
    assert len(french) == 9 and len(english) == 6
    for message in french + english:
        assert "{{" not in message.body and "{%" not in message.body
        assert message.alternatives
    assert all("Bonjour" in m.body for m in french)
    assert all("Hello" in m.body for m in english)
