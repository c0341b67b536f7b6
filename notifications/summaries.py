"""What the message center says about a notification, in the reader's language."""

from django.utils.translation import get_language
from django.utils.translation import gettext as _

from . import catalog, emails


def _context(notification, language):
    return emails.email_context(notification=notification, language=language, recipient_name="")


def summary(notification, language: str | None = None) -> str:
    language = (language or get_language() or "en")[:2]
    c = _context(notification, language)
    name = notification.name
    if name == "recharge_succeeded":
        return _("%(amount)s added with %(card)s. New balance: %(balance)s.") % c
    if name == "recharge_failed":
        text = _("A recharge of %(amount)s with %(card)s was declined: %(reason)s.") % c
        if c["auto_recharge_disabled"]:
            text += " " + _("Auto-recharge is now off.")
        return text
    if name == "auto_recharge_disabled":
        return _("Auto-recharge was switched off after %(n)s declines in a row.") % {
            "n": c["declines_in_a_row"] or "?"
        }
    if name == "balance_zero":
        return _(
            "The balance is %(balance)s. Toll-free, international, dial-out and overage "
            "calls are stopped."
        ) % c
    if name == "balance_low":
        return _("The balance is %(balance)s, below the warning level of %(threshold)s.") % c
    if name == "funds_expiring":
        return _("%(amount)s of funds expire on %(expires_on)s.") % c
    if name in ("pool_80", "pool_100"):
        return _("%(pool)s: %(used)s of %(total)s minutes used in %(month)s, %(left)s left.") % c
    if name == "export_ready":
        return _("Your %(format)s export is ready until %(expires_at)s.") % c
    return name


def title(notification) -> str:
    spec = catalog.EVENTS.get(notification.name)
    return str(spec.label) if spec else notification.name


def link(notification) -> tuple[str, str]:
    """(path, label) of the page that fixes what the notification reports."""
    spec = catalog.EVENTS.get(notification.name)
    if spec is None:
        return "", ""
    return catalog.link_path(notification.name, notification.payload), str(spec.link_label)
