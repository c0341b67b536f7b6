"""The audit log in words: an entry's action and changes as a person reads them, in the
page's language ("Auto-recharge settings", "Auto-recharge: off → on", "Amount: $50.00 →
$100.00").

AuditEntry keeps the codes and the raw changes (the machine columns of the CSV export and
the filters use them); the page and the readable CSV columns use `action_name` and
`change_lines`, the one place that turns them into words. The platform's audit log reaches
them through credits.platform.audit_words (registered in CreditsConfig.ready): the words
name billing's products, reasons and amounts, which the platform does not import.
"""

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from babel import Locale
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

ACTIONS = {
    "api_token.create": _("API token created"),
    "api_token.revoke": _("API token revoked"),
    "calls.import.request": _("Calls file import started"),
    "calls.ingest": _("Calls received"),
    "credits.adjust": _("Balance adjusted"),
    "credits.auto_recharge": _("Auto-recharge settings"),
    "credits.auto_recharge_disabled": _("Auto-recharge turned off after declines"),
    "credits.auto_recharge_failed": _("Auto-recharge declined"),
    "credits.expiry": _("Unused credits expired"),
    "credits.low_balance_threshold": _("Low-balance alert level"),
    "credits.purchase": _("Credits purchased"),
    "credits.purchase_failed": _("Purchase declined"),
    "credits.refund": _("Refund"),
    "credits.refund_failed": _("Refund failed"),
    "credits.refund_requested": _("Refund requested"),
    "credits.spend_limit": _("Organization spend limit"),
    "direct_routing.ingest": _("Direct Routing calls received"),
    "export.request": _("Export requested"),
    "license.assign": _("License assigned"),
    "license.remove": _("License removed"),
    "microsoft.backfill": _("Microsoft history requested"),
    "microsoft.connect": _("Microsoft connection added"),
    "microsoft.disconnect": _("Microsoft connection removed"),
    "microsoft.pull": _("Calls pulled from Microsoft"),
    "microsoft.pull_now": _("Microsoft pull requested"),
    "microsoft.test": _("Microsoft connection tested"),
    "microsoft.update": _("Microsoft connection changed"),
    "notification.delivery_retry": _("E-mail sent again"),
    "notification.routing": _("Notification recipients"),
    "organization.create": _("Organization created"),
    "payment_method.add": _("Card added"),
    "payment_method.remove": _("Card removed"),
    "person.create": _("Person added"),
    "person.credits_monthly_limit": _("Person's monthly credits limit"),
    "person.language": _("Language"),
    "person.roles": _("Admin roles"),
    "person.sign_in_enabled": _("Sign-in enabled"),
    "person.usage_location": _("Usage location"),
    "rates.load": _("Rate deck loaded"),
    "subscription.create": _("Licenses bought"),
    "subscription.seats": _("Number of licenses"),
    "support_request.create": _("Support request"),
}

FIELDS = {
    "amount": _("Amount"),
    "auto_recharge_disabled": _("Auto-recharge turned off"),
    "balance": _("Balance"),
    "below_zero_confirmed": _("Below zero confirmed"),
    "card": _("Card"),
    "charged": _("Charged"),
    "charged_now": _("Charged now"),
    "code": _("Result"),
    "country": _("Country or region"),
    "credits_monthly_limit": _("Monthly credits limit"),
    "currency": _("Currency"),
    "daily_cap": _("Daily cap"),
    "days": _("Days"),
    "declines_in_a_row": _("Declines in a row"),
    "duplicates": _("Duplicates"),
    "email": _("E-mail"),
    "enabled": _("Auto-recharge"),
    "expiry": _("Expiry"),
    "file": _("File"),
    "format": _("Format"),
    "invoice": _("Invoice"),
    "kind": _("Type"),
    "low_balance_threshold": _("Low-balance alert"),
    "message": _("Message"),
    "mode": _("Mode"),
    "monthly_spend_limit": _("Monthly spend limit"),
    "name": _("Name"),
    "ok": _("Succeeded"),
    "pages": _("Pages"),
    "payment_method": _("Card"),
    "po_number": _("PO number"),
    "preferred_language": _("Language"),
    "prefix": _("Prefix"),
    "reason": _("Reason"),
    "reason_code": _("Reason"),
    "reference": _("Reference"),
    "rejected": _("Rejected"),
    "replaced": _("Replaced"),
    "roles": _("Roles"),
    "rows": _("Rows"),
    "seats": _("Licenses"),
    "size": _("Size (bytes)"),
    "sku": _("Product"),
    "source": _("Source"),
    "status": _("Status"),
    "subject": _("Subject"),
    "target": _("Target balance"),
    "accepted": _("Accepted"),
    "total": _("Total charged"),
    "trigger": _("When the balance falls below"),
    "upn": _("User name"),
}
MONEY_FIELDS = frozenset({
    "amount", "balance", "credits_monthly_limit", "daily_cap", "low_balance_threshold",
    "monthly_spend_limit", "target", "total", "trigger"})
ON_OFF_FIELDS = frozenset({"enabled"})
# Internal references a person has no use for on this page (the CSV keeps them).
HIDDEN_FIELDS = frozenset({"attempt", "lot", "invoice_id", "attempt_id"})
ARROW = " → "


def action_name(action: str) -> str:
    """"Auto-recharge settings" for credits.auto_recharge; an unknown action as it is."""
    return str(ACTIONS.get(action or "", action or ""))


def _money(value, currency: str) -> str:
    from .templatetags.money import format_money

    try:
        Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    return format_money(value, currency)


def _value(key: str, value, currency: str) -> str:
    if value is None or value == "":
        return _t("none")
    if isinstance(value, bool):
        if key in ON_OFF_FIELDS:
            return _t("on") if value else _t("off")
        return _t("yes") if value else _t("no")
    if isinstance(value, list | tuple):
        if key == "roles":
            from .platform.roles import ROLES_BY_CODE

            return ", ".join(str(ROLES_BY_CODE[c].label) if c in ROLES_BY_CODE else str(c)
                             for c in value) or _t("none")
        return ", ".join(_value(key, v, currency) for v in value) or _t("none")
    if key in MONEY_FIELDS:
        return _money(value, currency)
    if key == "sku":
        from .products import PRODUCTS

        product = PRODUCTS.get(str(value))
        return str(product.name) if product else str(value)
    if key == "reason_code":
        from .payments.reasons import reason_for

        return reason_for(str(value))
    if key == "mode":
        from .models import AutoRechargeMode

        if value in AutoRechargeMode.values:
            return str(AutoRechargeMode(value).label)
        return {"replace": _t("replace the deck"), "merge": _t("add to the deck")}.get(
            value, str(value))
    if key == "kind":
        from .models import RechargeKind

        if value in RechargeKind.values:
            return str(RechargeKind(value).label)
    if key in ("country", "usage_location"):
        from .forms.licenses import country_name

        return country_name(str(value)) or str(value)
    if key == "preferred_language":
        try:
            return Locale.parse(str(value)).get_display_name(str(value)).capitalize()
        except Exception:  # an unknown code: shown as it is
            return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        from .templatetags.numbers import num

        return num(value)
    return str(value)


def _label(key: str) -> str:
    if key in FIELDS:
        return str(FIELDS[key])
    if key == "usage_location":
        return _t("Usage location")
    return key.replace("_", " ").capitalize()


def _line(key: str, value, currency: str) -> str | None:
    if key in HIDDEN_FIELDS:
        return None
    if isinstance(value, Mapping):
        if set(value) <= {"from", "to"} and value:
            return (f"{_label(key)}: {_value(key, value.get('from'), currency)}{ARROW}"
                    f"{_value(key, value.get('to'), currency)}")
        if set(value) <= {"added", "removed"}:  # notification routing: roles per event
            parts = []
            if value.get("added"):
                parts.append("+ " + _value("roles", value["added"], currency))
            if value.get("removed"):
                parts.append("− " + _value("roles", value["removed"], currency))
            return f"{_event_name(key)}: {'; '.join(parts) or _t('none')}"
        inner = [line for k, v in value.items() if (line := _line(k, v, currency))]
        return f"{_label(key)}: {', '.join(inner)}" if inner else None
    return f"{_label(key)}: {_value(key, value, currency)}"


def _event_name(name: str) -> str:
    try:
        from notifications.catalog import EVENTS
    except ImportError:
        return name
    event = EVENTS.get(name) if isinstance(EVENTS, Mapping) else None
    label = getattr(event, "label", None) or getattr(event, "title", None)
    return str(label) if label else name.replace("_", " ").capitalize()


def change_lines(changes, *, currency: str = "USD") -> list[str]:
    """One line per change, in the active language: "Auto-recharge: off → on"."""
    if not changes:
        return []
    if not isinstance(changes, Mapping):
        return [str(changes)]
    return [line for key, value in changes.items() if (line := _line(key, value, currency))]
