"""The message center, the bell's unread count, the home card and Settings > Notifications."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications.models import Delivery, DeliveryStatus, EventRouting, Notification
from tests.factories import PersonFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def billing_admin(make_person):
    return make_person("billing_administrator", display_name="Alex Billing")


@pytest.fixture
def helpdesk(make_person):
    # credit_alerts yes, no permission in this app
    return make_person("helpdesk_administrator", display_name="Hal Helpdesk")


def test_message_center_lists_the_organizations_notifications_newest_first(
    admin_client, org, other_org, emit
):
    emit(org, "recharge_succeeded")
    emit(org, "balance_zero")
    emit(other_org, "funds_expiring")
    response = admin_client.get("/notifications/")
    assert [r["n"].name for r in response.context["rows"]] == [
        "balance_zero", "recharge_succeeded"
    ]
    assert "2 items" in response.content.decode()


def test_another_organizations_notification_is_a_404(admin_client, other_org, emit):
    emit(other_org, "balance_zero")
    foreign = Notification.objects.get(organization=other_org)
    assert admin_client.get(f"/notifications/{foreign.pk}/").status_code == 404


def test_export_ready_is_shown_to_its_requester_only(
    client_for, org, admin_person, helpdesk, emit
):
    emit(org, "export_ready", requester_person_id=helpdesk.pk)
    export = Notification.objects.get(name="export_ready")
    assert client_for(admin_person).get(f"/notifications/{export.pk}/").status_code == 404
    assert client_for(admin_person).get("/notifications/").context["rows"] == []
    assert client_for(helpdesk).get(f"/notifications/{export.pk}/").status_code == 200


def test_the_bell_counts_unread_and_opening_a_notification_marks_it_read(
    client_for, org, helpdesk, emit
):
    other = PersonFactory(organization=org, with_user=True, display_name="Other Person")
    emit(org, "balance_zero")
    emit(org, "recharge_failed")
    client = client_for(helpdesk)
    assert client.get("/").context["unread_count"] == 2
    assert 'class="badge">2<' in client.get("/").content.decode()
    first = Notification.objects.get(name="balance_zero")
    page = client.get(f"/notifications/{first.pk}/").content.decode()
    assert "Toll-free, international, dial-out and overage calls are stopped." in page
    assert 'href="/billing/communications-credits/add-funds/"' in page
    assert client.get("/notifications/").context["unread_count"] == 1
    # The read mark is per person.
    assert client_for(other).get("/").context["unread_count"] == 2


def test_notifications_from_before_a_person_joined_are_not_unread_for_them(
    client_for, org, emit
):
    emit(org, "balance_zero")
    newcomer = PersonFactory(organization=org, with_user=True, display_name="New Comer")
    client = client_for(newcomer)
    assert client.get("/").context["unread_count"] == 0
    assert len(client.get("/notifications/").context["rows"]) == 1


def test_mark_all_read_clears_the_count_for_this_person_only(
    client_for, org, helpdesk, admin_person, emit
):
    emit(org, "balance_zero")
    emit(org, "balance_low")
    client = client_for(helpdesk)
    response = client.post("/notifications/mark-all-read/")
    assert response.status_code == 302
    assert client.get("/notifications/").context["unread_count"] == 0
    assert client_for(admin_person).get("/").context["unread_count"] == 2


def test_unread_filter_and_event_filter(client_for, org, helpdesk, emit):
    emit(org, "balance_zero")
    emit(org, "balance_low")
    client = client_for(helpdesk)
    client.get(f"/notifications/{Notification.objects.get(name='balance_low').pk}/")
    unread = client.get("/notifications/?unread=1").context["rows"]
    assert [r["n"].name for r in unread] == ["balance_zero"]
    by_event = client.get("/notifications/?event=balance_low").context["rows"]
    assert [r["n"].name for r in by_event] == ["balance_low"]


def test_admins_see_each_recipients_delivery_status_and_others_do_not(
    client_for, org, admin_person, helpdesk, emit
):
    PersonFactory(organization=org, display_name="No Mail", email="",
                  roles=["billing_administrator"])
    emit(org, "recharge_failed")
    notification = Notification.objects.get()
    admin_page = client_for(admin_person).get(f"/notifications/{notification.pk}/")
    text = admin_page.content.decode()
    assert "E-mail deliveries" in text
    assert "No e-mail address" in text
    assert "Sent" in text and "Skipped" in text
    helpdesk_page = client_for(helpdesk).get(f"/notifications/{notification.pk}/")
    assert "E-mail deliveries" not in helpdesk_page.content.decode()


def test_a_finally_failed_delivery_shows_in_the_message_center_and_can_be_sent_again(
    client_for, org, admin_person, billing_admin, emit, django_capture_on_commit_callbacks
):
    emit(org, "balance_zero")
    delivery = Delivery.objects.get(person=billing_admin)
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.FAILED, sent_at=None, attempts=7,
        reason="The mail server could not be reached after 7 attempts.",
    )
    client = client_for(admin_person)
    page = client.get("/notifications/").content.decode()
    assert "1 e-mail could not be delivered." in page
    assert "1 failed" in page
    assert len(client.get("/notifications/?delivery=failed").context["rows"]) == 1
    detail = client.get(f"/notifications/{delivery.notification_id}/").content.decode()
    assert "could not be reached after 7 attempts" in detail
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/notifications/{delivery.notification_id}/deliveries/{delivery.pk}/retry/"
        )
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT


def test_only_notification_managers_may_send_a_delivery_again(
    client_for, org, make_person, billing_admin, emit
):
    emit(org, "balance_zero")
    delivery = Delivery.objects.get(person=billing_admin)
    reader = make_person("global_reader", display_name="Gail Reader")
    url = f"/notifications/{delivery.notification_id}/deliveries/{delivery.pk}/retry/"
    assert client_for(reader).post(url).status_code == 403


def test_home_card_shows_the_latest_notifications(client_for, org, helpdesk, emit):
    client = client_for(helpdesk)
    assert "No notifications yet." in client.get("/").content.decode()
    emit(org, "recharge_failed")
    page = client.get("/").content.decode()
    assert "Recharge failed" in page
    assert "unread notification" in page


def test_the_home_page_counts_unread_notifications_once(client_for, org, helpdesk, emit):
    emit(org, "recharge_failed")
    emit(org, "balance_low")
    client = client_for(helpdesk)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/")
    # The bell and the message center card both show it.
    assert response.context["unread_count"] == 2
    assert '<span class="badge">2</span>' in response.content.decode()
    counts = [
        q["sql"] for q in queries.captured_queries
        if "COUNT(" in q["sql"] and '"notifications_notificationread"' in q["sql"]
    ]
    assert len(counts) == 1


def test_message_center_queries_do_not_grow_with_the_list(
    admin_client, org, emit, django_assert_max_num_queries
):
    for _ in range(10):
        emit(org, "balance_low")
    with django_assert_max_num_queries(12):
        admin_client.get("/notifications/")


# --- Settings > Notifications ---------------------------------------------------------------


def test_settings_show_the_default_roles_per_event(admin_client):
    response = admin_client.get("/settings/notifications/")
    matrix = {row["role"].code: row["cells"] for row in response.context["matrix"]}
    checked = {c["event"] for c in matrix["global_administrator"] if c["checked"]}
    assert "recharge_failed" in checked and "pool_80" not in checked
    assert not any(c["checked"] for c in matrix["global_reader"])
    assert "The warning is off." in response.content.decode()


def test_a_notification_manager_chooses_the_roles_per_event(client_for, billing_admin, org):
    client = client_for(billing_admin)
    data = {"section": "routing", "recharge_failed": ["billing_administrator", "global_reader"]}
    # Every other event keeps its default roles as sent by the form.
    from notifications.catalog import ROUTED_EVENTS, default_roles

    for name in ROUTED_EVENTS:
        data.setdefault(name, sorted(default_roles(name)))
    response = client.post("/settings/notifications/", data)
    assert response.status_code == 302
    [row] = EventRouting.objects.filter(organization=org)
    assert (row.event, row.roles) == ("recharge_failed", ["billing_administrator",
                                                          "global_reader"])
    from credits.models import AuditEntry

    assert AuditEntry.objects.filter(action="notification.routing").exists()
    client.post("/settings/notifications/", {"section": "defaults"})
    assert not EventRouting.objects.filter(organization=org).exists()


def test_an_unknown_role_is_refused_and_named(client_for, billing_admin, org):
    response = client_for(billing_admin).post(
        "/settings/notifications/", {"section": "routing", "balance_zero": ["pope"]}
    )
    assert response.status_code == 200
    assert "Balance reached zero" in response.content.decode()
    assert not EventRouting.objects.exists()


def test_readers_of_settings_may_not_change_them(client_for, make_person):
    reader = make_person("global_reader", display_name="Gail Reader")
    client = client_for(reader)
    assert client.get("/settings/notifications/").status_code == 200
    response = client.post("/settings/notifications/", {"section": "defaults"})
    assert response.status_code == 403


def test_the_low_balance_level_is_off_by_default_and_set_on_the_credit_account(
    client_for, billing_admin, org
):
    from notifications.selectors import low_balance_threshold

    assert low_balance_threshold(organization=org) is None
    client = client_for(billing_admin)
    response = client.post("/settings/notifications/",
                           {"section": "low_balance", "threshold": "75.50"})
    assert response.status_code == 302
    assert low_balance_threshold(organization=org) == Decimal("75.50")
    client.post("/settings/notifications/", {"section": "low_balance", "threshold": ""})
    assert low_balance_threshold(organization=org) is None


def test_a_negative_low_balance_level_is_refused_on_its_field(client_for, billing_admin):
    response = client_for(billing_admin).post(
        "/settings/notifications/", {"section": "low_balance", "threshold": "-5"}
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert 'aria-invalid="true"' in page
    assert "Warning level:" in page


def test_the_failed_filter_keeps_each_notifications_delivery_counts(
    client_for, org, admin_person, billing_admin, emit
):
    emit(org, "balance_zero")
    deliveries = Delivery.objects.filter(notification__name="balance_zero")
    assert deliveries.count() >= 2
    Delivery.objects.filter(person__in=[admin_person, billing_admin]).update(
        status=DeliveryStatus.FAILED, sent_at=None)
    rows = client_for(admin_person).get("/notifications/?delivery=failed").context["rows"]
    assert len(rows) == 1
    assert (rows[0]["n"].failed_count, rows[0]["n"].delivery_count) == (2, deliveries.count())
