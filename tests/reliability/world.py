"""An organization with one of every object a URL can name, for the permission matrix, the
tenant-isolation probes, the injection and the page-hygiene tests.

Every name or imported text field holds markup (`XSS`), so a page that forgets to escape
shows it; `build_world` returns the URL keyword arguments of each parametrized route."""

import csv
import io
from datetime import UTC, datetime, timedelta

from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from credits.platform.services import Actor
from credits.services.payment_methods import payment_method_add
from credits.services.purchases import credits_purchase
from credits.services.refunds import refund_request
from tests.factories import (
    TEST_DECK_CSV,
    PersonFactory,
    funded_account,
    give_licenses,
    graph_row,
)

XSS = '<script>alert("xss")</script><img src=x onerror=alert(1)>'
# What a page that forgets to escape would show; escaped it reads &lt;script&gt;...
RAW_MARKERS = ("<script>alert(", "<img src=x onerror")
ACTOR = Actor.system("world")


def routed_names() -> dict[str, str]:
    """Every named URL the project routes, outside Django's admin: name -> route."""

    def walk(resolver, prefix=""):
        for entry in resolver.url_patterns:
            if isinstance(entry, URLResolver):
                if entry.namespace == "admin":
                    continue
                ns = f"{entry.namespace}:" if entry.namespace else ""
                for name, route in walk(entry, prefix + str(entry.pattern)):
                    yield ns + name, route
            elif isinstance(entry, URLPattern):
                yield entry.name or f"<unnamed {prefix}{entry.pattern}>", \
                    prefix + str(entry.pattern)

    return dict(walk(get_resolver()))


def admin_routes() -> list[str]:
    """The parameterless URLs of Django's admin: its own pages and every model's list and
    add pages."""
    from django.contrib import admin

    out = []
    for entry in get_resolver().url_patterns:
        if isinstance(entry, URLResolver) and entry.namespace == "admin":
            for sub in entry.url_patterns:
                if isinstance(sub, URLPattern) and sub.name and "<" not in str(sub.pattern):
                    out.append(reverse(f"admin:{sub.name}"))
    for model in admin.site._registry:
        meta = model._meta
        for page in ("changelist", "add"):
            out.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_{page}"))
    return out


def _deck_with_markup(currency: str) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(
        ["outbound", "3390", XSS, "FR", "landline", "0.02000", "0.00", "60", "60", currency,
         "2026-01-01"])
    return (TEST_DECK_CSV.replace(",USD,", f",{currency},") + out.getvalue()).encode()


def build_world(org, admin) -> dict:
    """Objects of `org` named by URLs (and shown on pages), with markup in every name."""
    from notifications.models import Delivery, DeliveryStatus, Notification
    from usage import decks
    from usage.exports import export_dir
    from usage.models import Export, ExportStatus
    from usage.services import api_token_create, calls_ingest, rate_deck_load

    rates, errors = decks.parse_deck(_deck_with_markup(org.currency), org.currency)
    assert not errors, errors
    rate_deck_load(organization=org, rates=rates, actor=ACTOR)
    funded_account(org, "200.00")
    person = PersonFactory(organization=org, display_name=f"Eve {XSS}",
                           upn=f"eve.{org.slug}@{org.slug}.example", usage_location="US")
    give_licenses(person, "MCOEV", "MCOPSTN1", "MCOPSTNC")
    card = payment_method_add(organization=org, number="4242424242424242",
                              exp_month=12, exp_year=timezone.now().year + 2, cvc="123",
                              holder_name=XSS, actor=ACTOR)
    attempt = credits_purchase(organization=org, amount=50, payment_method=card,
                               actor=ACTOR, request_key=f"world-{org.slug}")
    # A refund of part of the purchase, so that a credit note exists (with markup).
    refund = refund_request(invoice=attempt.invoice, amount="5", reason=f"Refund {XSS}",
                            actor=ACTOR)
    day = (timezone.now() - timedelta(days=2)).date().isoformat()
    result = calls_ingest(organization=org, source="api", rows=[
        graph_row(f"{org.slug}-call-{i}", userPrincipalName=upn, userDisplayName=f"Dial {XSS}",
                  destinationName=XSS, calleeNumber=callee, callerNumber="+14255550100",
                  startDateTime=f"{day}T0{i}:00:00Z", duration=90)
        for i, (upn, callee) in enumerate([(person.upn, "+33395123456"),
                                           (f"{XSS}@x.example", "+447700900123")])
    ])
    assert result.accepted == 2, result.rejected
    token, _raw = api_token_create(organization=org, name=f"Switch {XSS}", actor=ACTOR)
    export = Export.objects.create(
        organization=org, requester=admin, format="xlsx", status=ExportStatus.DONE,
        file_name=f"{XSS}.xlsx", file_path=f"world-{org.slug}.xlsx",
        finished_at=datetime.now(UTC))
    export_dir().mkdir(parents=True, exist_ok=True)
    (export_dir() / export.file_path).write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    notification = Notification.objects.create(
        organization=org, name="recharge_failed", dedupe_key=f"world-{org.slug}",
        payload={"amount": "100.00", "currency": "USD", "card": XSS,
                 "reason_code": "card_declined", "reason": XSS, "declines_in_a_row": 1,
                 "auto_recharge_disabled": False, "next_attempt_at": None,
                 "fix_path": "/billing/communications-credits/payment-methods/"})
    delivery = Delivery.objects.create(
        organization=org, notification=notification, person=person,
        recipient_name=person.display_name, email="eve@example.com", key=f"world-{org.slug}",
        status=DeliveryStatus.FAILED, reason=XSS, last_error=XSS, attempts=3)
    from credits.models import PeopleImportJob, PeopleImportRow, PeopleImportStatus

    people_import = PeopleImportJob.objects.create(
        organization=org, requester=admin, file_name=f"{XSS}.csv", kind="people",
        status=PeopleImportStatus.DONE, rows_total=1, rows_done=1, rejected_count=1)
    PeopleImportRow.objects.create(job=people_import, line=2, upn=XSS, ok=False,
                                   code="unknown_role", message=f"Unknown role: {XSS}")
    return {
        "person": person, "card": card, "invoice": attempt.invoice, "token": token,
        "export": export, "notification": notification, "delivery": delivery,
        "kwargs": {
            "billing_payment_method_remove": {"pk": card.pk},
            "billing_invoice": {"pk": attempt.invoice.pk},
            "billing_invoice_pdf": {"pk": attempt.invoice.pk},
            "billing_invoice_refund": {"pk": attempt.invoice.pk},
            "billing_invoice_refund_confirm": {"pk": attempt.invoice.pk},
            "billing_credit_note": {"pk": refund.credit_note.pk},
            "billing_credit_note_pdf": {"pk": refund.credit_note.pk},
            "billing_seats": {"sku": "MCOEV"},
            "person_licenses": {"pk": person.pk},
            "person_spend_limit": {"pk": person.pk},
            "users_import_job": {"pk": people_import.pk},
            "users_import_results_csv": {"pk": people_import.pk},
            "reports_download": {"token": export.token},
            "settings_api_token_revoke": {"pk": token.pk},
            "notification_detail": {"pk": notification.pk},
            "notification_delivery_retry": {"pk": notification.pk,
                                            "delivery_pk": delivery.pk},
            "password_reset_confirm": {"uidb64": "MQ", "token": "set-password"},
        },
    }


def url_of(name: str, world: dict) -> str:
    return reverse(name, kwargs=world["kwargs"].get(name, {}))


def fingerprint() -> tuple:
    """Every row of the project's tables (and sign-in accounts): equal before and after a
    request means the request changed nothing. Timestamps of use are left out."""
    rows = []
    for app in ("credits", "usage", "notifications"):
        for model in apps.get_app_config(app).get_models():
            fields = [f.attname for f in model._meta.concrete_fields
                      if f.attname not in ("last_used_at", "last_login")]
            rows.append((model.__name__,
                         list(model.objects.order_by("pk").values_list(*fields))))
    return tuple(repr(r) for r in rows)
