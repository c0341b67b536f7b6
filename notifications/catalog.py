"""The events this app turns into e-mails: who gets them by default, and the page (by URL
name, from the payload's ids) that fixes the problem each one reports
(domain/notifications.md)."""

from collections.abc import Callable
from dataclasses import dataclass

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from credits.platform.roles import ROLES

CREDIT = "credit"  # roles with credit_alerts=yes by default
POOL = "pool"  # roles with pool_alerts=yes by default
REQUESTER = "requester"  # the person who asked (export_ready), nobody else
CONNECTOR = "connector"  # credit_alerts roles and the Teams roles (the Microsoft connector)


MAX_ID = 2**63 - 1  # a database row id is a bigint


def object_id(value) -> int | None:
    """A payload's id of a row (an int, or its decimal digits), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    return value if isinstance(value, int) and 0 < value <= MAX_ID else None


def _page(url_name: str) -> Callable[[dict], str]:
    return lambda payload: reverse(url_name)


def _invoice(payload: dict) -> str:
    invoice_id = object_id(payload.get("invoice_id"))
    if invoice_id is None:
        return reverse("billing_bills")
    return reverse("billing_invoice", args=[invoice_id])


def _credit_note(payload: dict) -> str:
    note_id = object_id(payload.get("credit_note_id"))
    if note_id is None:
        return _invoice(payload)
    return reverse("billing_credit_note", args=[note_id])


def _person_limit(payload: dict) -> str:
    person_id = object_id(payload.get("person_id"))
    if person_id is None:
        return reverse("users")
    return reverse("person_licenses", args=[person_id])


def _export(payload: dict) -> str:
    # The download URL holds the export's secret token, which the event does not carry:
    # the link opens the export's row on the downloads page.
    export_id = object_id(payload.get("export_id"))
    downloads = reverse("reports_downloads")
    return downloads if export_id is None else f"{downloads}#export-{export_id}"


@dataclass(frozen=True)
class EventSpec:
    name: str
    label: str
    audience: str
    # The path of the page that fixes what the event reports, from the payload's ids only:
    # a payload never chooses where a link leads.
    link: Callable[[dict], str]
    link_label: str


EVENTS = {
    spec.name: spec
    for spec in (
        EventSpec("recharge_succeeded", _("Recharge succeeded"), CREDIT,
                  _invoice, _("View the invoice")),
        EventSpec("recharge_failed", _("Recharge failed"), CREDIT,
                  _page("billing_payment_methods"), _("Update the payment method")),
        EventSpec("auto_recharge_disabled", _("Auto-recharge switched off"), CREDIT,
                  _page("billing_payment_methods"), _("Update the payment method")),
        EventSpec("auto_recharge_capped", _("Auto-recharge paused by the daily cap"), CREDIT,
                  _page("billing_add_funds"), _("Add funds")),
        EventSpec("refund_succeeded", _("Refund made"), CREDIT,
                  _credit_note, _("View the credit note")),
        EventSpec("refund_failed", _("Refund failed"), CREDIT,
                  _invoice, _("Open the invoice")),
        EventSpec("balance_zero", _("Balance reached zero"), CREDIT,
                  _page("billing_add_funds"), _("Add funds")),
        EventSpec("balance_low", _("Balance is low"), CREDIT,
                  _page("billing_add_funds"), _("Add funds")),
        EventSpec("funds_expiring", _("Funds expiring"), CREDIT,
                  _page("billing_credits"), _("Open Communications Credits")),
        EventSpec("spend_limit_80", _("Monthly spend limit 80% used"), CREDIT,
                  _page("billing_spend_limit"), _("Open the spend limit")),
        EventSpec("spend_limit_100", _("Monthly spend limit reached"), CREDIT,
                  _page("billing_spend_limit"), _("Open the spend limit")),
        EventSpec("person_limit_80", _("A person's monthly credits limit 80% used"), CREDIT,
                  _person_limit, _("Open the person's licenses")),
        EventSpec("person_limit_100", _("A person's monthly credits limit reached"), CREDIT,
                  _person_limit, _("Open the person's licenses")),
        EventSpec("pool_80", _("Minute pool 80% used"), POOL,
                  _page("reports_minute_pools"), _("Open the minute pools report")),
        EventSpec("pool_100", _("Minute pool used up"), POOL,
                  _page("reports_minute_pools"), _("Open the minute pools report")),
        EventSpec("export_ready", _("Export ready"), REQUESTER,
                  _export, _("Download the export")),
        EventSpec("connector_failing", _("Microsoft connector failing"), CONNECTOR,
                  _page("settings_microsoft"), _("Open the Microsoft connection")),
        EventSpec("connector_recovered", _("Microsoft connector working again"), CONNECTOR,
                  _page("settings_microsoft"), _("Open the Microsoft connection")),
    )
}
# The events whose recipients an admin chooses by role (export_ready goes to its requester).
ROUTED_EVENTS = [name for name, spec in EVENTS.items() if spec.audience != REQUESTER]


def default_roles(name: str) -> frozenset[str]:
    audience = EVENTS[name].audience
    if audience == CREDIT:
        return frozenset(r.code for r in ROLES if r.credit_alerts)
    if audience == POOL:
        return frozenset(r.code for r in ROLES if r.pool_alerts)
    if audience == CONNECTOR:
        return frozenset(r.code for r in ROLES if r.credit_alerts or r.name.startswith("Teams "))
    return frozenset()


def occurrence_key(event) -> str:
    """What makes one occurrence: the event itself, except pool alerts, which are sent once
    per pool per month whatever event rows announce them."""
    if event.name in ("pool_80", "pool_100"):
        p = event.payload
        return f"{event.name}:{p.get('kind', '')}:{p.get('country', '')}:{p.get('month', '')}"
    return f"event:{event.pk}"


def link_path(name: str, payload: dict) -> str:
    """The path of the page that fixes what the event reports."""
    return EVENTS[name].link(payload)
