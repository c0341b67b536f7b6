"""The platform's pages: home, organization settings, audit log, language choice, and the
health check."""

import csv
import json
import os
from datetime import UTC

from django.conf import settings
from django.core.paginator import Paginator
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from kombu import Connection

from . import selectors
from .access import permission, public, signed_in
from .audit_words import action_name, change_lines
from .csvsafe import neutralize
from .forms import AuditFilterForm, LanguageForm
from .home import banners_for, cards_for
from .services import Actor, person_set_language


@signed_in
def home(request):
    return render(request, "credits/home.html",
                  {"cards": cards_for(request), "banners": banners_for(request)})


@permission("view_settings")
def settings_org(request):
    return render(request, "credits/settings_org.html", {"org": request.organization})


def _audit_filtered(request):
    org = request.organization
    form = AuditFilterForm(request.GET or None,
                           people=selectors.audit_actors(organization=org),
                           actions=selectors.audit_actions(organization=org))
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    entries = selectors.audit_entries_filtered(
        organization=org, q=data.get("q") or "", actor_id=data.get("actor"),
        action=data.get("action") or "", start=data.get("start"), end=data.get("end"))
    return form, entries


def _currency(request) -> str:
    """The organization's billing currency: the audit log's amounts are in it."""
    return request.organization.currency or "USD"


@permission("view_audit")
def audit_log(request):
    form, entries = _audit_filtered(request)
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    keep = {k: v for k, v in request.GET.items() if k != "page" and v}
    return render(request, "credits/audit_log.html", {
        "page": page, "form": form, "querystring_base": urlencode(keep),
        "export_url": reverse("settings_audit_export") + ("?" + urlencode(keep) if keep
                                                         else ""),
        "filtered": bool(keep), "currency": _currency(request)})


AUDIT_EXPORT_LIMIT = 100_000


@permission("view_audit")
def audit_log_export(request):
    """The filtered audit log as CSV (UTF-8 with a BOM, for Excel), newest first."""
    _form, entries = _audit_filtered(request)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = timezone.now().astimezone(UTC).date().isoformat()
    response["Content-Disposition"] = f'attachment; filename="Audit log {stamp}.csv"'
    response.write("\ufeff")
    writer = csv.writer(response, lineterminator="\r\n")
    # "action" and "changes_json" are for machines; "action_name" and "changes" are the
    # page's words, in the reader's language.
    writer.writerow(["time_utc", "who", "ip_address", "action", "action_name", "object",
                     "changes", "changes_json"])
    currency = _currency(request)
    for e in entries[:AUDIT_EXPORT_LIMIT].iterator(chunk_size=2000):
        writer.writerow([neutralize(v) for v in (
            e.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"), e.actor_label,
            e.ip_address or "", e.action, action_name(e.action), e.target_label,
            "; ".join(change_lines(e.changes, currency=currency)),
            json.dumps(e.changes, ensure_ascii=False, sort_keys=True))])
    return response


@signed_in
@require_POST
def set_language(request):
    form = LanguageForm(request.POST)
    next_url = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}):
        next_url = "/"
    if form.is_valid() and request.person is not None:
        person_set_language(
            person=request.person,
            language=form.cleaned_data["language"],
            actor=Actor.from_request(request),
        )
    response = redirect(next_url)
    if form.is_valid():
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME, form.cleaned_data["language"], samesite="Lax"
        )
    return response


_redis_clients: dict[str, object] = {}


def _redis_ping(url: str) -> None:
    """PING the broker's Redis on a client kept for the process: its pool keeps the
    connection open between probes, instead of a connection opened and closed per probe.
    A dropped connection is opened again by the pool on the next probe."""
    client = _redis_clients.get(url)
    if client is None:
        import redis

        client = _redis_clients[url] = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=2, health_check_interval=0)
    client.ping()


def _broker_status() -> tuple[bool, str]:
    url = settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://")):
        try:
            _redis_ping(url)
            return True, "ok"
        except Exception as exc:  # any failure to reach Redis means the broker is down
            return False, f"unavailable ({type(exc).__name__})"
    try:
        with Connection(
            url,
            transport_options=getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}),
            connect_timeout=2,
        ) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            if url.startswith("filesystem"):
                folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_out"]
                if not os.access(folder, os.W_OK):
                    return False, "unavailable (broker folder not writable)"
        return True, "ok"
    except Exception as exc:  # any failure to connect means the broker is down
        return False, f"unavailable ({type(exc).__name__})"


def _database_status() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True, "ok"
    except Exception as exc:
        return False, f"unavailable ({type(exc).__name__})"


@public
@never_cache
def healthz(request):
    db_ok, db_detail = _database_status()
    broker_ok, broker_detail = _broker_status()
    down = [name for name, ok in (("database", db_ok), ("broker", broker_ok)) if not ok]
    body = {
        "status": "ok" if not down else "down",
        "down": down,
        "database": {"ok": db_ok, "detail": db_detail},
        "broker": {"ok": broker_ok, "detail": broker_detail},
    }
    return JsonResponse(body, status=200 if not down else 503)
