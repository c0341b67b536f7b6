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
        if c["was_pending"]:
            return _("Your pending payment of %(amount)s with %(card)s was confirmed. New "
                     "balance: %(balance)s.") % c
        return _("%(amount)s added with %(card)s. New balance: %(balance)s.") % c
    if name == "recharge_failed" and c["was_pending"]:
        if c["reason_code"] == "unconfirmed":
            return _("Your pending payment of %(amount)s with %(card)s was never confirmed "
                     "by the payment provider; nothing was added to the balance.") % c
        return _("Your pending payment of %(amount)s with %(card)s could not be completed: "
                 "%(reason)s. Nothing was charged.") % c
    if name == "recharge_failed":
        text = _("A recharge of %(amount)s with %(card)s was declined: %(reason)s.") % c
        if c["auto_recharge_disabled"]:
            text += " " + _("Auto-recharge is now off.")
        return text
    if name == "auto_recharge_disabled":
        return _("Auto-recharge was switched off after %(n)s declines in a row.") % {
            "n": c["declines_in_a_row"] or "?"
        }
    if name == "auto_recharge_capped":
        return _("Auto-recharge is paused by the daily cap of %(cap)s until %(resumes_at)s. "
                 "The balance is %(balance)s.") % c
    if name == "refund_succeeded":
        return _("%(amount)s of invoice %(invoice_number)s was refunded to %(card)s (credit "
                 "note %(credit_note_number)s). New balance: %(balance)s.") % c
    if name == "refund_failed":
        return _("The refund of %(amount)s of invoice %(invoice_number)s to %(card)s failed: "
                 "%(reason)s. The balance did not change.") % c
    if name == "balance_zero":
        return _(
            "The balance is %(balance)s. Toll-free, international, dial-out and overage "
            "calls are stopped."
        ) % c
    if name == "balance_low":
        return _("The balance is %(balance)s, below the warning level of %(threshold)s.") % c
    if name == "funds_expiring":
        return _("%(amount)s of funds expire on %(expires_on)s.") % c
    if name == "spend_limit_80":
        return _("%(spent)s of the monthly spend limit of %(limit)s spent in %(month)s.") % c
    if name == "spend_limit_100":
        return _("The monthly spend limit of %(limit)s is reached in %(month)s (%(spent)s "
                 "spent): calls that credits would pay are refused until next month.") % c
    if name == "person_limit_80":
        return _("%(person_name)s spent %(spent)s of their monthly credits limit of "
                 "%(limit)s in %(month)s.") % c
    if name == "person_limit_100":
        return _("%(person_name)s reached their monthly credits limit of %(limit)s in "
                 "%(month)s (%(spent)s spent): their calls that credits would pay are "
                 "refused until next month.") % c
    if name in ("pool_80", "pool_100"):
        return _("%(pool)s: %(used)s of %(total)s minutes used in %(month)s, %(left)s left.") % c
    if name == "export_ready":
        return _("Your %(format)s export is ready until %(expires_at)s.") % c
    if name == "connector_failing":
        return _("The last %(failures)s pulls from Microsoft failed (since %(failing_since)s): "
                 "%(connector_reason)s") % c
    if name == "connector_recovered":
        return _("Pulling call records from Microsoft works again (it failed since "
                 "%(failing_since)s).") % c
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
