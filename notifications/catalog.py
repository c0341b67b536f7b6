"""The events this app turns into e-mails: who gets them by default, and the page that fixes
the problem each one reports (domain/notifications.md)."""

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from credits.roles import ROLES

CREDIT = "credit"  # roles with credit_alerts=yes by default
POOL = "pool"  # roles with pool_alerts=yes by default
REQUESTER = "requester"  # the person who asked (export_ready), nobody else

# The page that fixes what the e-mail reports, when the payload does not name one.
ADD_FUNDS_PATH = "/billing/communications-credits/"
PAYMENT_METHODS_PATH = "/billing/communications-credits/payment-methods/"
MINUTE_POOLS_PATH = "/reports/minute-pools/"
DOWNLOADS_PATH = "/reports/downloads/"


@dataclass(frozen=True)
class EventSpec:
    name: str
    label: str
    audience: str
    # Payload field holding the fixing page's path, and the path to use without it.
    link_field: str
    default_path: str
    link_label: str


EVENTS = {
    spec.name: spec
    for spec in (
        EventSpec("recharge_succeeded", _("Recharge succeeded"), CREDIT,
                  "invoice_path", "/billing/bills/", _("View the invoice")),
        EventSpec("recharge_failed", _("Recharge failed"), CREDIT,
                  "fix_path", PAYMENT_METHODS_PATH, _("Update the payment method")),
        EventSpec("auto_recharge_disabled", _("Auto-recharge switched off"), CREDIT,
                  "fix_path", PAYMENT_METHODS_PATH, _("Update the payment method")),
        EventSpec("balance_zero", _("Balance reached zero"), CREDIT,
                  "add_funds_path", ADD_FUNDS_PATH, _("Add funds")),
        EventSpec("balance_low", _("Balance is low"), CREDIT,
                  "add_funds_path", ADD_FUNDS_PATH, _("Add funds")),
        EventSpec("funds_expiring", _("Funds expiring"), CREDIT,
                  "", ADD_FUNDS_PATH, _("Open Communications Credits")),
        EventSpec("pool_80", _("Minute pool 80% used"), POOL,
                  "", MINUTE_POOLS_PATH, _("Open the minute pools report")),
        EventSpec("pool_100", _("Minute pool used up"), POOL,
                  "", MINUTE_POOLS_PATH, _("Open the minute pools report")),
        EventSpec("export_ready", _("Export ready"), REQUESTER,
                  "path", DOWNLOADS_PATH, _("Download the export")),
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
    return frozenset()


def occurrence_key(event) -> str:
    """What makes one occurrence: the event itself, except pool alerts, which are sent once
    per pool per month whatever event rows announce them."""
    if event.name in ("pool_80", "pool_100"):
        p = event.payload
        return f"{event.name}:{p.get('kind', '')}:{p.get('country', '')}:{p.get('month', '')}"
    return f"event:{event.pk}"


def fix_path(name: str, payload: dict) -> str:
    spec = EVENTS[name]
    path = str(payload.get(spec.link_field) or "") if spec.link_field else ""
    # Only paths of this site: a payload never sends anyone elsewhere.
    if not path.startswith("/") or path.startswith("//"):
        path = spec.default_path
    return path
