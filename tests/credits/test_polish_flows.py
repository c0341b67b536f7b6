"""Issue 19 polish: payment methods, Add funds, Users, Licenses, Settings > Notifications,
the audit log, Home cards and the invoice printout (server-rendered; the browser walks are
in tests/e2e/test_polish.py)."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.utils import timezone, translation

from credits.models import AuditEntry, CreditAccount, Invoice
from credits.platform.services import Actor, audit_record
from credits.views.licenses import home_card
from tests.factories import PersonFactory, SubscriptionFactory, funded_account, saved_card

CC = "/billing/communications-credits/"


@pytest.fixture
def billing_admin(make_person):
    return make_person("billing_administrator", display_name="Bea Billing")


@pytest.fixture
def bclient(client, billing_admin):
    client.force_login(billing_admin.user)
    return client


def _options(html, name):
    select = html.split(f'name="{name}"', 1)[1].split("</select>", 1)[0]
    return re.findall(r'<option value="(\d+)"( selected)?', select)


@pytest.mark.django_db
def test_expiry_years_start_this_year_and_the_preset_is_not_past(bclient):
    html = bclient.get(f"{CC}payment-methods/").content.decode()
    now = timezone.now()
    years = _options(html, "exp_year")
    assert int(years[0][0]) == now.year
    chosen_year = int(next(y for y, sel in years if sel))
    chosen_month = int(next(m for m, sel in _options(html, "exp_month") if sel))
    assert (chosen_year, chosen_month) > (now.year, now.month)


@pytest.mark.django_db
def test_a_past_year_is_refused_naming_the_field(bclient):
    response = bclient.post(f"{CC}payment-methods/", {
        "number": "4242424242424242", "exp_month": "12",
        "exp_year": str(timezone.now().year - 1), "cvc": "123"})
    assert "Expiry year: choose a year from the list" in response.content.decode()


@pytest.mark.django_db
def test_remove_asks_for_confirmation_naming_the_card(bclient, org):
    card = saved_card(org)
    html = bclient.get(f"{CC}payment-methods/").content.decode()
    form = html.split(f'action="{CC}payment-methods/{card.pk}/remove/"', 1)[1].split(">", 1)[0]
    assert f'data-confirm="Remove {card.label}? It can no longer pay for credits."' in form


@pytest.mark.django_db
def test_add_funds_preselects_the_auto_recharge_card_not_the_newest(bclient, org):
    auto_card = saved_card(org, number="4242424242424242")
    newest = saved_card(org, number="5555555555554444")
    funded_account(org, "100.00", auto_recharge_payment_method=auto_card)
    html = bclient.get(f"{CC}add-funds/").content.decode()
    assert f'<option value="{auto_card.pk}" selected' in html
    assert f'<option value="{newest.pk}" selected' not in html


@pytest.mark.django_db
def test_a_purchase_audit_entry_keeps_the_buyers_address(bclient, org):
    card = saved_card(org)
    data = {"amount": "150", "payment_method": card.pk, "request_key": "ip-1"}
    bclient.post(f"{CC}add-funds/confirm/", data, REMOTE_ADDR="203.0.113.9")
    assert Invoice.objects.exists()
    assert AuditEntry.objects.get(action="credits.purchase").ip_address == "203.0.113.9"
    assert CreditAccount.objects.get(organization=org).balance > 0


# --- Users --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_users_has_select_all_live_filters_and_a_card_list(admin_client, org):
    PersonFactory(organization=org, display_name="Zed Caller")
    html = admin_client.get("/users/").content.decode()
    assert 'data-select-all="people"' in html and "Select all</label>" in html
    assert 'hx-get="/users/"' in html and 'hx-target="#users-list"' in html
    assert 'class="table table--cards"' in html and 'data-label="User name"' in html
    partial = admin_client.get("/users/", {"q": "zed"}, HTTP_HX_REQUEST="true")
    assert b"<html" not in partial.content and b"Zed Caller" in partial.content
    assert "HX-Request" in partial["Vary"]


# --- Licenses -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_seat_forms_have_no_command_bar_rule(admin_client, org):
    SubscriptionFactory(organization=org, sku="MCOEV", seats=5)
    html = admin_client.get("/billing/licenses/").content.decode()
    form = html.split('action="/billing/licenses/MCOEV/seats/"', 1)[1].split(">", 1)[0]
    assert 'class="inline-form"' in form


@pytest.mark.django_db
def test_the_licenses_card_uses_french_plural_forms(rf, org, admin_person):
    SubscriptionFactory(organization=org, sku="MCOEV", seats=0)
    request = rf.get("/")
    request.organization, request.person = org, admin_person
    with translation.override("fr"):
        line = home_card(request)["lines"][0]
    assert line.endswith("0 disponible") and "disponibles" not in line


# --- Settings > Notifications --------------------------------------------------------------


@pytest.mark.django_db
def test_notification_grid_has_save_and_reset_in_one_row(admin_client):
    html = admin_client.get("/settings/notifications/").content.decode()
    assert 'class="table table--matrix"' in html
    row = html.split('data-actions="routing"', 1)[1].split("</div>", 1)[0]
    assert "Save" in row and 'form="routing-defaults"' in row and "Reset to defaults" in row
    assert 'id="routing-defaults" data-confirm=' in html


# --- Audit log ----------------------------------------------------------------------------


@pytest.fixture
def audit_rows(org, admin_person):
    other = PersonFactory(organization=org, display_name="Otto Other")
    old = timezone.now() - timedelta(days=40)
    audit_record(organization=org, actor=Actor(person=admin_person, label="admin@x",
                                               ip="198.51.100.4"),
                 action="credits.purchase", changes={"amount": "100"})
    audit_record(organization=org, actor=Actor(person=other, label="otto@x"),
                 action="license.assign", changes={"sku": "MCOEV"})
    AuditEntry.objects.filter(actor=other).update(created_at=old)
    return other, old


@pytest.mark.django_db
def test_audit_log_filters_by_person_action_dates_and_text(admin_client, audit_rows):
    other, old = audit_rows
    url = "/settings/audit/"
    body = admin_client.get(url, {"actor": other.pk}).content.decode()
    assert "otto@x" in body and "admin@x" not in body
    body = admin_client.get(url, {"action": "credits.purchase"}).content.decode()
    assert "admin@x" in body and "otto@x" not in body
    day = old.date().isoformat()
    body = admin_client.get(url, {"start": day, "end": day}).content.decode()
    assert "otto@x" in body and "admin@x" not in body
    body = admin_client.get(url, {"q": "198.51.100.4"}).content.decode()
    assert "admin@x" in body and "otto@x" not in body
    body = admin_client.get(url, {"start": "2026-12-01", "end": "2026-11-01"}).content.decode()
    assert "To: the end date is before the start date." in body


@pytest.mark.django_db
def test_audit_log_exports_the_filtered_rows_as_csv(admin_client, audit_rows):
    page = admin_client.get("/settings/audit/", {"action": "credits.purchase"}).content.decode()
    assert 'href="/settings/audit/export/?action=credits.purchase"' in page
    response = admin_client.get("/settings/audit/export/", {"action": "credits.purchase"})
    assert response.status_code == 200 and "Audit log " in response["Content-Disposition"]
    raw = response.content
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:4] == ["time_utc", "who", "ip_address", "action"]
    assert [r[3] for r in rows[1:]] == ["credits.purchase"] and rows[1][2] == "198.51.100.4"


@pytest.mark.django_db
def test_audit_export_needs_the_audit_permission(client_for, make_person):
    agent = make_person("user_administrator")
    assert client_for(agent).get("/settings/audit/export/").status_code in (302, 403)


# --- Home and invoice -----------------------------------------------------------------------


@pytest.mark.django_db
def test_home_card_actions_are_buttons(bclient, org):
    funded_account(org, "100.00")
    html = bclient.get("/").content.decode()
    assert 'class="card__actions"><a class="btn" href="/billing/communications-credits/"' in html
    assert "card__links" not in html


@pytest.mark.django_db
def test_the_invoice_printout_has_no_print_hint_or_breadcrumbs(bclient, org):
    card = saved_card(org)
    bclient.post(f"{CC}add-funds/confirm/", {"amount": "150", "payment_method": card.pk,
                                             "request_key": "print"})
    html = bclient.get(f"/billing/invoices/{Invoice.objects.get().pk}/").content.decode()
    assert re.search(r'<span class="no-print"> Use your browser(&#x27;|\')s print command',
                     html)
    from pathlib import Path

    from django.conf import settings
    css = (Path(settings.BASE_DIR) / "credits/static/cc/css/app.css").read_text()
    assert re.search(r"@media print \{[^}]*\.breadcrumbs", css)
