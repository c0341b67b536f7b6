"""Issue 19, "Words, numbers and dates": pages show names, not internal codes; numbers,
rates and dates in the reader's language; stored English texts translated at display."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils import translation

from credits.audit_text import action_name, change_lines
from credits.ledger_text import ledger_description
from credits.models import LedgerEntry, LedgerKind
from credits.platform.services import Actor, audit_record
from credits.templatetags.dates import format_day, format_when
from credits.templatetags.money import format_rate
from tests.factories import saved_card

CC = "/billing/communications-credits/"
AUTO_RECHARGE_CHANGES = {"enabled": {"from": False, "to": True},
                         "amount": {"from": "50", "to": "1500"}}


@pytest.fixture
def audit_rows(org, admin_person):
    actor = Actor(person=admin_person, label="admin@x", ip="198.51.100.4")
    audit_record(organization=org, actor=actor, action="credits.auto_recharge",
                 changes=AUTO_RECHARGE_CHANGES)
    audit_record(organization=org, actor=actor, action="license.assign",
                 changes={"sku": "MCOEV"})


@pytest.mark.django_db
def test_audit_log_shows_actions_and_changes_in_words(admin_client, audit_rows, org):
    body = admin_client.get("/settings/audit/").content.decode()
    assert "Auto-recharge settings" in body and "License assigned" in body
    assert "Auto-recharge: off → on" in body
    assert "Amount: $50.00 → $1,500.00" in body
    assert "Product: Teams Phone Standard" in body
    assert "credits.auto_recharge<" not in body and "{&#x27;enabled&#x27;" not in body
    assert "{'enabled'" not in body
    # The filter lists the actions by name, keeping the code as the value.
    assert '<option value="credits.auto_recharge">Auto-recharge settings</option>' in body


@pytest.mark.django_db
def test_audit_log_in_french(make_person, client, audit_rows):
    person = make_person("global_administrator", preferred_language="fr")
    client.force_login(person.user)
    body = client.get("/settings/audit/").content.decode()
    assert "Paramètres de recharge automatique" in body
    assert "Recharge automatique : désactivée → activée" in body or \
        "Recharge automatique: désactivée → activée" in body
    assert "Licence attribuée" in body


@pytest.mark.django_db
def test_audit_export_keeps_codes_for_machines_and_words_for_people(admin_client, audit_rows):
    raw = admin_client.get("/settings/audit/export/").content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(raw)))
    row = next(r for r in rows if r["action"] == "credits.auto_recharge")
    assert row["action_name"] == "Auto-recharge settings"
    assert "Auto-recharge: off → on" in row["changes"]
    assert '"enabled": {"from": false, "to": true}' in row["changes_json"]


def test_change_lines_format_money_roles_and_unknown_keys():
    with translation.override("en"):
        assert action_name("credits.auto_recharge") == "Auto-recharge settings"
        assert action_name("something.new") == "something.new"
        lines = change_lines({"roles": {"from": [], "to": ["billing_administrator"]},
                              "low_balance_threshold": {"from": None, "to": "100"},
                              "reason_code": "insufficient_funds", "attempt": "x",
                              "odd_field": 3}, currency="USD")
        assert lines == ["Roles: none → Billing Administrator",
                         "Low-balance alert: none → $100.00",
                         "Reason: The card has insufficient funds.", "Odd field: 3"]


def test_dates_and_rates_follow_the_language():
    moment = datetime(2026, 11, 3, 14, 5, tzinfo=UTC)
    assert format_when(moment, "en").replace("\u202f", " ") == "Nov 3, 2026, 2:05 PM"
    assert format_when(moment, "fr") == "3 nov. 2026, 14:05"
    assert format_day(moment, "fr") == "3 nov. 2026"
    assert [format_rate(Decimal(v), "USD", "en") for v in ("0.0372", "0.024", "0.03000", "0")] \
        == ["$0.0372", "$0.0240", "$0.0300", "$0.0000"]
    assert format_rate(Decimal("0.024"), "USD", "fr") == "0,0240\xa0$US"


@pytest.mark.django_db
def test_transactions_page_in_french_translates_the_stored_descriptions(make_person, client, org):
    from credits.models import CreditAccount
    from credits.services.ledger import ledger_append

    account, _created = CreditAccount.objects.get_or_create(organization=org,
                                                            defaults={"currency": "USD"})
    ledger_append(account=account, kind=LedgerKind.PURCHASE, amount=Decimal("100.00"),
                  key="t1", description="Communications Credits purchase (Visa •••• 4242)",
                  actor=Actor.system("test"))
    ledger_append(account=account, kind=LedgerKind.USAGE, amount=Decimal("-0.50"),
                  key="t2", description="user_out +1 425 555 01** 3 min",
                  actor=Actor.system("test"))
    assert LedgerEntry.objects.count() == 2
    person = make_person("billing_administrator", preferred_language="fr")
    client.force_login(person.user)
    body = client.get(f"{CC}transactions/").content.decode()
    assert "Achat de crédits de communication (Visa •••• 4242)" in body
    assert "Appel sortant +1 425 555 01**, 3 min" in body
    assert "Communications Credits purchase" not in body
    with translation.override("en"):
        entry = LedgerEntry.objects.get(idempotency_key="t2")
        assert ledger_description(entry) == "Outbound call +1 425 555 01**, 3 min"


@pytest.mark.django_db
def test_a_decline_reason_is_french_on_the_bills_page(make_person, client, org):
    card = saved_card(org, "4000000000009995")
    person = make_person("billing_administrator", preferred_language="fr")
    client.force_login(person.user)
    client.post(f"{CC}add-funds/confirm/", {"amount": "100", "payment_method": card.pk,
                                            "request_key": "k"})
    body = client.get("/billing/bills/").content.decode()
    assert "Échec" in body
    assert "The card has insufficient funds." not in body
    with translation.override("fr"):
        from credits.payments.reasons import reason_for

        assert reason_for("insufficient_funds") in body
