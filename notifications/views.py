"""Pages of notifications: the message center, one notification with its deliveries, and
the notification settings."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from credits.platform.access import permission, signed_in
from credits.platform.roles import ROLES
from credits.platform.services import Actor, ServiceError

from . import catalog, selectors, services, summaries
from .forms import LowBalanceForm, RoutingForm
from .models import Delivery, Notification

PAGE_SIZE = 25


def _sees_deliveries(person) -> bool:
    return person.has_perm("manage_notifications") or person.has_perm("view_settings")


@signed_in
def message_center(request):
    person = request.person
    admin = _sees_deliveries(person)
    name = request.GET.get("event") or ""
    if name not in catalog.EVENTS:
        name = ""
    unread_only = request.GET.get("unread") == "1"
    failed_only = admin and request.GET.get("delivery") == "failed"
    notifications = selectors.notifications_for(
        organization=request.organization,
        person=person,
        name=name or None,
        unread_only=unread_only,
        failed_only=failed_only,
    )
    page = Paginator(notifications, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {
            "n": n,
            "title": summaries.title(n),
            "summary": summaries.summary(n),
            "unread": not n.is_read and n.occurred_at >= person.created_at,
        }
        for n in page.object_list
    ]
    filters = {k: v for k, v in (("event", name), ("unread", "1" if unread_only else ""),
                                 ("delivery", "failed" if failed_only else "")) if v}
    return render(request, "notifications/message_center.html", {
        "page": page,
        "rows": rows,
        "events": [(key, spec.label) for key, spec in catalog.EVENTS.items()],
        "event": name,
        "unread_only": unread_only,
        "failed_only": failed_only,
        "admin": admin,
        "failed_total": selectors.failed_delivery_count(organization=request.organization)
        if admin else 0,
        "querystring_base": urlencode(filters),
    })


@signed_in
def notification_detail(request, pk):
    person = request.person
    try:
        notification = selectors.notification_get(
            organization=request.organization, person=person, pk=pk
        )
    except Notification.DoesNotExist as exc:
        raise Http404 from exc
    services.notification_mark_read(notification=notification, person=person)
    admin = _sees_deliveries(person)
    path, link_label = summaries.link(notification)
    return render(request, "notifications/detail.html", {
        "n": notification,
        "title": summaries.title(notification),
        "summary": summaries.summary(notification),
        "fix_path": path,
        "fix_label": link_label,
        "admin": admin,
        "may_retry": person.has_perm("manage_notifications"),
        "deliveries": selectors.deliveries_of(notification=notification) if admin else [],
    })


@signed_in
@require_POST
def mark_all_read(request):
    count = services.notifications_mark_all_read(
        organization=request.organization, person=request.person
    )
    if count:
        messages.success(request, _("All notifications are marked as read."))
    return redirect("notifications")


@permission("manage_notifications")
@require_POST
def delivery_retry(request, pk, delivery_pk):
    try:
        services.delivery_retry(
            organization=request.organization,
            delivery_id=delivery_pk,
            actor=Actor.from_request(request),
        )
    except Delivery.DoesNotExist as exc:
        raise Http404 from exc
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The e-mail is queued to be sent again."))
    return redirect("notification_detail", pk=pk)


@permission("view_settings", change="manage_notifications")
def notification_settings(request):
    person = request.person
    organization = request.organization
    may_change = person.has_perm("manage_notifications")
    roles_now = selectors.event_roles(organization=organization)
    threshold_now = selectors.low_balance_threshold(organization=organization)
    routing_form = RoutingForm(initial={k: sorted(v) for k, v in roles_now.items()})
    low_form = LowBalanceForm(initial={"threshold": threshold_now})
    if request.method == "POST":
        section = request.POST.get("section")
        actor = Actor.from_request(request)
        if section == "routing":
            routing_form = RoutingForm(request.POST)
            if routing_form.is_valid():
                try:
                    services.event_routing_set(
                        organization=organization,
                        routing={k: routing_form.cleaned_data[k] for k in catalog.ROUTED_EVENTS},
                        actor=actor,
                    )
                except ServiceError as exc:
                    routing_form.add_error(None, exc.message)
                else:
                    messages.success(request, _("Recipients saved."))
                    return redirect("settings_notifications")
        elif section == "low_balance":
            low_form = LowBalanceForm(request.POST)
            if low_form.is_valid():
                try:
                    services.low_balance_threshold_set(
                        organization=organization,
                        threshold=low_form.cleaned_data["threshold"],
                        actor=actor,
                    )
                except ServiceError as exc:
                    low_form.add_error("threshold", exc.message)
                else:
                    messages.success(request, _("Low balance warning saved."))
                    return redirect("settings_notifications")
        elif section == "defaults":
            services.event_routing_set(
                organization=organization,
                routing={k: catalog.default_roles(k) for k in catalog.ROUTED_EVENTS},
                actor=actor,
            )
            messages.success(request, _("Recipients reset to the defaults."))
            return redirect("settings_notifications")
    # The matrix: one row per role, one checkbox per event.
    chosen = (
        {k: set(routing_form.data.getlist(k)) for k in catalog.ROUTED_EVENTS}
        if routing_form.is_bound
        else {k: set(v) for k, v in roles_now.items()}
    )
    matrix = [
        {
            "role": role,
            "cells": [
                {"event": k, "checked": role.code in chosen[k],
                 "default": role.code in catalog.default_roles(k)}
                for k in catalog.ROUTED_EVENTS
            ],
        }
        for role in ROLES
    ]
    return render(request, "notifications/settings.html", {
        "may_change": may_change,
        "events": [(k, catalog.EVENTS[k].label) for k in catalog.ROUTED_EVENTS],
        "matrix": matrix,
        "routing_form": routing_form,
        "low_form": low_form,
        "threshold_now": threshold_now,
        "currency": organization.currency,
    })
