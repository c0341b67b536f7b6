"""One notification as an e-mail to one person: subject, text and HTML from templates, in
the recipient's language, money and dates in their locale, absolute links to the page that
fixes the problem.

Templates live in templates/notifications/email/: `<event>.subject.txt`, `<event>.txt` and
`<event>.html` in English, and `<event>.fr.subject.txt`, `<event>.fr.txt`, `<event>.fr.html`
in French. Per-language files keep each e-mail readable as a whole and need no catalogue.
"""

import html as html_lib
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import select_template
from django.urls import reverse
from django.utils import translation

from credits import products
from credits.forms.licenses import country_name
from credits.payments.reasons import reason_clause as decline_reason_clause

from . import catalog, formatting

LANGUAGES = {"en", "fr"}

def reason_clause(code: str, language: str) -> str:
    """Why a payment was refused, as a clause that fits "... was declined: <clause>." in
    the recipient's language (credits.payments.reasons holds the words)."""
    with translation.override(language):
        return decline_reason_clause(code)


def pool_name(payload: dict, language: str) -> str:
    """The pool's name in the reader's language, from its kind and country: the label the
    event stored was written in whatever language was active when the call crossed the
    level, with the country as its code."""
    label = products.POOL_KIND_LABELS.get(payload.get("kind") or "")
    if label is None:
        return str(payload.get("pool") or "")
    country = str(payload.get("country") or "")
    with translation.override(language):
        return f"{label} ({country_name(country)})" if country else str(label)


def language_of(person) -> str:
    language = (getattr(person, "preferred_language", "") or "en")[:2]
    return language if language in LANGUAGES else "en"


def absolute_url(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def _flag(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# Brand names, the same in every language.
EXPORT_FORMAT_NAMES = {"xlsx": "Excel", "csv-zip": "CSV"}


def email_context(*, notification, language: str, recipient_name: str) -> dict:
    p = notification.payload
    currency = p.get("currency") or notification.organization.currency
    return {
        "language": language,
        "org_name": notification.organization.name,
        "recipient_name": recipient_name,
        "link": absolute_url(catalog.link_path(notification.name, p)),
        "settings_link": absolute_url(reverse("settings_notifications")),
        "amount": formatting.money(p.get("amount"), currency, language),
        "balance": formatting.money(p.get("balance"), currency, language),
        "threshold": formatting.money(p.get("threshold"), currency, language),
        "card": p.get("card") or "",
        "kind": p.get("kind") or "",
        # A purchase whose person was told "not confirmed yet": the words say it is settled.
        "was_pending": _flag(p.get("was_pending")),
        "reason_code": p.get("reason_code") or "",
        "reason": reason_clause(p.get("reason_code") or "", language),
        "declines_in_a_row": _int(p.get("declines_in_a_row")),
        "auto_recharge_disabled": _flag(p.get("auto_recharge_disabled")),
        "next_attempt_at": formatting.date_time(p.get("next_attempt_at"), language),
        "days_left": _int(p.get("days_left")),
        "expires_on": formatting.long_date(p.get("expires_on"), language),
        "expires_at": formatting.date_time(p.get("expires_at"), language),
        "pool": pool_name(p, language),
        "month": formatting.month(p.get("month"), language) if p.get("month") else "",
        "used": formatting.number(p.get("used"), language),
        "total": formatting.number(p.get("total"), language),
        "left": formatting.number(p.get("left"), language),
        # The names on the report's buttons ("Export to Excel", "Export CSV").
        "format": EXPORT_FORMAT_NAMES.get(p.get("format") or "",
                                          (p.get("format") or "").upper()),
        # auto_recharge_capped: the day's cap, and when automatic recharges start again.
        "cap": formatting.money(p.get("cap"), currency, language),
        "resumes_at": formatting.date_time(p.get("resumes_at"), language),
        # refund_succeeded / refund_failed: the documents, and the billing admin's reason.
        "invoice_number": p.get("invoice_number") or "",
        "credit_note_number": p.get("credit_note_number") or "",
        "refund_reason": p.get("refund_reason") or "",
        # spend_limit_* / person_limit_*: the month's settled spend against the limit.
        "limit": formatting.money(p.get("limit"), currency, language),
        "spent": formatting.money(p.get("spent"), currency, language),
        "person_name": p.get("person_name") or p.get("upn") or "",
        # connector_failing / connector_recovered: the reason is written in every language
        # by the connector (usage.microsoft.errors); the reader's is picked here.
        "failures": _int(p.get("failures")),
        "failing_since": formatting.date_time(p.get("failing_since"), language),
        "connector_reason": _in_language(p.get("reason"), language),
    }


def _in_language(words, language: str) -> str:
    if isinstance(words, dict):
        return str(words.get(language) or words.get("en") or "")
    return str(words or "")


def _templates(name: str, language: str, suffix: str) -> list[str]:
    base = f"notifications/email/{name}"
    names = [f"{base}.{language}.{suffix}"] if language != "en" else []
    return [*names, f"{base}.{suffix}"]


def render_email(*, notification, language: str, recipient_name: str) -> tuple[str, str, str]:
    """(subject, text, html) of one notification for one reader."""
    context = email_context(
        notification=notification, language=language, recipient_name=recipient_name
    )
    # Dates and plural forms that templates format themselves follow the reader too.
    with translation.override(language):
        subject = select_template(_templates(notification.name, language, "subject.txt"))
        text = select_template(_templates(notification.name, language, "txt"))
        html = select_template(_templates(notification.name, language, "html"))
        # A subject is plain text, but its templates autoescape like any other: undo it, or
        # "d'audioconférence" reads "d&#x27;audioconférence".
        subject_line = " ".join(html_lib.unescape(subject.render(context)).split())
        return (
            f"[{notification.organization.name}] {subject_line}",
            re.sub(r"\n{3,}", "\n\n", text.render(context)).strip() + "\n",
            html.render(context),
        )


def message_id(delivery) -> str:
    # Stable per delivery: should a crash ever make the same e-mail go out twice, mail
    # clients show it once.
    host = urlsplit(settings.SITE_URL).hostname or "localhost"
    return f"<cc-{delivery.key.replace(':', '-')}@{host}>"


def build_message(delivery, *, connection=None) -> EmailMultiAlternatives:
    notification = delivery.notification
    subject, text, html = render_email(
        notification=notification,
        language=delivery.language,
        recipient_name=delivery.recipient_name,
    )
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[delivery.email],
        headers={"Message-ID": message_id(delivery), "Auto-Submitted": "auto-generated"},
        connection=connection,
    )
    message.attach_alternative(html, "text/html")
    return message
