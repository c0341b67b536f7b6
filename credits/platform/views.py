"""The platform's pages: home, organization settings, audit log, language choice, and the
health check."""

import os

from django.conf import settings
from django.core.paginator import Paginator
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from kombu import Connection

from . import selectors
from .access import permission, public, signed_in
from .forms import LanguageForm
from .home import banners_for, cards_for
from .services import Actor, person_set_language


@signed_in
def home(request):
    return render(request, "credits/home.html",
                  {"cards": cards_for(request), "banners": banners_for(request)})


@permission("view_settings")
def settings_org(request):
    return render(request, "credits/settings_org.html", {"org": request.organization})


@permission("view_audit")
def audit_log(request):
    entries = selectors.audit_entries(organization=request.organization)
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    return render(request, "credits/audit_log.html", {"page": page})


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


def _broker_status() -> tuple[bool, str]:
    url = settings.CELERY_BROKER_URL
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
