"""Users, Licenses and apps, bulk assignment, Billing > Licenses and Reports > Minute pools."""


from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from .. import products as P
from ..forms.licenses import (
    BulkLicenseForm,
    LicenseCsvForm,
    PeopleFilterForm,
    PersonLicensesForm,
    SeatsForm,
    country_name,
)
from ..forms.spend_limits import PersonLimitForm
from ..models import PeopleImportJob, Person
from ..people_import import ImportReport, LicenseAction, RowResult, bulk_apply, check_csv
from ..platform import csvsafe
from ..platform.access import permission
from ..platform.roles import ROLES_BY_CODE
from ..platform.selectors import person_get
from ..platform.services import Actor
from ..selectors.licenses import (
    active_skus_by_person,
    people_list,
    person_license_warnings,
    person_licenses,
    seat_summary,
)
from ..selectors.spend_limits import person_spend
from ..services.licenses import (
    LicenseError,
    licenses_set,
    person_set_usage_location,
    subscription_ensure,
    subscription_set_seats,
)
from ..services.people_imports import people_import_start

PAGE_SIZE = 50


def _may(request, perm) -> bool:
    return request.person is not None and request.person.has_perm(perm)


# --- Users > Active users ----------------------------------------------------------------


@permission("view_people")
def users(request):
    form = PeopleFilterForm(request.GET or None)
    filters = {"q": "", "license": "", "role": "", "sort": "name"}
    if form.is_bound and form.is_valid():
        filters.update({k: v for k, v in form.cleaned_data.items() if v})
    people = people_list(
        organization=request.organization,
        q=filters["q"],
        sku=filters["license"],
        role=filters["role"],
        sort=filters["sort"],
    ).prefetch_related("roles")
    page = Paginator(people, PAGE_SIZE).get_page(request.GET.get("page"))
    skus = active_skus_by_person([p.pk for p in page.object_list])
    rows = [
        {
            "person": p,
            "licenses": [P.PRODUCTS[s] for s in skus.get(p.pk, [])],
            "roles": [ROLES_BY_CODE[r.role].label for r in p.roles.all()
                      if r.role in ROLES_BY_CODE],
            "country": country_name(p.usage_location),
        }
        for p in page.object_list
    ]
    keep = {k: v for k, v in filters.items() if v and not (k == "sort" and v == "name")}
    sort_links = {}
    for column in ("name", "upn", "location"):
        current = filters["sort"]
        target = f"-{column}" if current == column else column
        sort_links[column] = {
            "url": "?" + urlencode({**keep, "sort": target}),
            "aria": "ascending" if current == column else (
                "descending" if current == f"-{column}" else "none"),
        }
    partial = request.headers.get("HX-Request") and not request.headers.get(
        "HX-History-Restore-Request")
    response = render(
        request,
        "credits/licenses/_users_list.html" if partial else "credits/licenses/users.html",
        {
            "form": form,
            "page": page,
            "rows": rows,
            "querystring_base": urlencode(keep),
            "sort_links": sort_links,
            "may_assign": _may(request, "manage_licenses"),
            "products": P.PRODUCTS.values(),
            "bulk_form": BulkLicenseForm(),
        },
    )
    patch_vary_headers(response, ["HX-Request"])
    return response


# --- a person's Licenses and apps ---------------------------------------------------------


def _product_rows(request, person, held, seats):
    by_sku = {row["sku"]: row for row in seats}
    rows = []
    for sku, product in P.PRODUCTS.items():
        seat = by_sku[sku]
        note = ""
        if product.calling_plan and not person.usage_location:
            note = _("Set a usage location first.")
        elif product.calling_plan and P.TEAMS_PHONE not in held:
            note = _("Needs Teams Phone Standard: tick it too.")
        elif seat["subscription"] is None and not product.unlimited:
            note = _("Your organization has no subscription for this product.")
        elif (not seat["unlimited"] and sku not in held and seat["available"] == 0):
            note = _("No seat left.")
        rows.append({"product": product, "held": sku in held, "seat": seat, "note": note})
    return rows


@permission("view_people", change="manage_licenses")
def person_licenses_page(request, pk):
    try:
        person = person_get(organization=request.organization, pk=pk)
    except Person.DoesNotExist:
        raise Http404 from None
    may_edit = _may(request, "manage_licenses")
    held = set(person_licenses(person=person))
    form = PersonLicensesForm(
        initial={"usage_location": person.usage_location, "products": sorted(held)}
    )
    if request.method == "POST":
        form = PersonLicensesForm(request.POST)
        if form.is_valid():
            wanted = set(form.cleaned_data["products"])
            actor = Actor.from_request(request)
            try:
                with transaction.atomic():
                    # Removals first (a calling plan may block a usage location change),
                    # then the usage location, then the additions.
                    licenses_set(person=person, skus=held & wanted, actor=actor)
                    person = person_set_usage_location(
                        person=person, country=form.cleaned_data["usage_location"],
                        actor=actor,
                    )
                    added, removed = licenses_set(person=person, skus=wanted, actor=actor)
            except LicenseError as exc:
                form.add_error(
                    "usage_location" if exc.field == "usage_location" else "products",
                    exc.message,
                )
            else:
                messages.success(request, _("Licenses saved for %(name)s.")
                                 % {"name": person.display_name})
                return redirect("person_licenses", pk=person.pk)
    seats = seat_summary(organization=request.organization)
    warnings = person_license_warnings(skus=held)
    return render(
        request,
        "credits/licenses/person.html",
        {
            "subject": person,
            "form": form,
            "rows": _product_rows(request, person, held, seats),
            "warnings": warnings,
            "may_edit": may_edit,
            "country": country_name(person.usage_location),
            "checked": set(form["products"].value() or []),
            "line": person_spend(person=person, at=timezone.now()),
            "limit_form": PersonLimitForm(initial={"monthly_limit": (
                "" if person.credits_monthly_limit is None
                else person.credits_monthly_limit)}),
        },
    )


# --- bulk ----------------------------------------------------------------------------------


@permission("manage_licenses")
@require_POST
def users_bulk(request):
    # ASCII digits of a size the database takes: "²".isdigit() is true and a 20-digit id
    # overflows the column; either would fail the lookup instead of being ignored.
    ids = [v for v in request.POST.getlist("people")
           if v.isascii() and v.isdigit() and len(v) <= 18]
    people = {
        p.pk: p
        for p in Person.objects.filter(organization=request.organization, pk__in=ids)
    }
    form = BulkLicenseForm(request.POST, people_ids=list(people))
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("users")
    actions = [
        LicenseAction(line=i, upn=people[pk].upn, sku=form.cleaned_data["sku"],
                      action=form.cleaned_data["action"], person=people[pk])
        for i, pk in enumerate(form.cleaned_data["people"], start=1)
    ]
    report = bulk_apply(organization=request.organization, actions=actions,
                        actor=Actor.from_request(request))
    return render(request, "credits/licenses/results.html", {"report": report, "upload": False})


@permission("manage_licenses")
def users_import(request):
    """Upload a people or license CSV. A file that cannot be read is refused here; a small
    one is applied in the request and its results shown at once; a large one runs in the
    background and the page follows it (credits.services.people_imports)."""
    form = LicenseCsvForm()
    if request.method == "POST":
        form = LicenseCsvForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            data = upload.read()
            fatal, rows = check_csv(data)
            if fatal:
                form.add_error("file", fatal)
            else:
                job = people_import_start(
                    organization=request.organization, requester=request.person,
                    data=data, file_name=upload.name or "", rows=rows,
                    actor=Actor.from_request(request),
                    # Buying seats is a billing decision; creating people a directory one.
                    grow_seats=_may(request, "manage_billing"),
                    may_create_people=_may(request, "manage_people"),
                    may_set_roles=_may(request, "manage_org"),
                )
                if job.is_active:
                    return redirect("users_import_job", pk=job.pk)
                return _import_job_page(request, job, report=_report_of(job))
    return render(request, "credits/licenses/import.html", {"form": form})


IMPORT_PAGE_SIZE = 50


def _import_job(request, pk) -> PeopleImportJob:
    return get_object_or_404(PeopleImportJob.objects.defer("data"),
                             organization=request.organization, pk=pk)


def _report_of(job) -> ImportReport:
    """A small job's outcome as import_csv's report (the page's context keeps both)."""
    return ImportReport(kind=job.kind, fatal=job.error, rows=[
        RowResult(line=r.line, upn=r.upn, ok=r.ok, message=r.message, code=r.code, sku=r.sku,
                  action=r.action) for r in job.rows.all()])


def _import_job_page(request, job, report=None):
    only_rejected = request.GET.get("show") == "rejected"
    rows = job.rows.all()
    if only_rejected:
        rows = rows.filter(ok=False)
    page = None if job.is_active else Paginator(rows, IMPORT_PAGE_SIZE).get_page(
        request.GET.get("page"))
    context = {"job": job, "page": page, "only_rejected": only_rejected, "report": report,
               "querystring_base": "show=rejected" if only_rejected else ""}
    if request.headers.get("HX-Request") and not request.headers.get(
            "HX-History-Restore-Request"):
        response = render(request, "credits/licenses/_import_job.html", context)
    else:
        response = render(request, "credits/licenses/import_job.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@permission("manage_licenses")
def users_import_job(request, pk):
    """An upload's progress while it runs (htmx polls the fragment; without JavaScript,
    "Refresh"), then its results, IMPORT_PAGE_SIZE rows a page."""
    return _import_job_page(request, _import_job(request, pk))


@permission("manage_licenses")
def users_import_results_csv(request, pk):
    """Every row's outcome of an upload, as CSV (UTF-8 with a BOM, for Excel)."""
    job = _import_job(request, pk)
    if job.is_active:
        raise Http404
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stem = (job.file_name.rsplit(".", 1)[0] or "upload").replace('"', "").replace("\\", "")
    response["Content-Disposition"] = (
        f'attachment; filename="{_("Results")} - {stem}.csv"'.encode("ascii", "replace")
        .decode("ascii").replace("?", "_"))
    response.write("\ufeff")
    writer = csvsafe.writer(response)
    writer.writerow([_("Line"), "userPrincipalName", _("Action"), _("Product"), _("Result"),
                     _("Reason code"), _("Message")])
    done, not_done = _("Done"), _("Not done")
    for r in job.rows.all().iterator(chunk_size=2000):
        writer.writerow([r.line, r.upn, r.action, r.sku, done if r.ok else not_done, r.code,
                         r.message])
    return response


# --- Billing > Licenses --------------------------------------------------------------------


@permission("view_billing")
def billing_licenses(request):
    return render(
        request,
        "credits/licenses/billing.html",
        {
            "rows": seat_summary(organization=request.organization),
            "may_change": _may(request, "manage_billing"),
            "errors": {},
        },
    )


@permission("manage_billing")
@require_POST
def billing_seats(request, sku):
    product = P.product(sku)
    if product is None or product.unlimited:
        raise Http404
    form = SeatsForm(request.POST)
    errors = {}
    if form.is_valid():
        actor = Actor.from_request(request)
        try:
            with transaction.atomic():
                sub = subscription_ensure(organization=request.organization, sku=product.sku,
                                          actor=actor)
                subscription_set_seats(subscription=sub, seats=form.cleaned_data["seats"],
                                       actor=actor)
        except LicenseError as exc:
            errors[product.sku] = exc.message
        else:
            messages.success(request, _("%(product)s: %(seats)s seats.")
                             % {"product": product.name, "seats": form.cleaned_data["seats"]})
            return redirect("billing_licenses")
    else:
        errors[product.sku] = " ".join(e for errs in form.errors.values() for e in errs)
    return render(
        request,
        "credits/licenses/billing.html",
        {
            "rows": seat_summary(organization=request.organization),
            "may_change": True,
            "errors": errors,
            "posted": request.POST.get("seats", ""),
        },
        status=400,
    )


# --- the Licenses card on Home -------------------------------------------------------------


def home_card(request) -> dict:
    seats = [r for r in seat_summary(organization=request.organization) if r["subscription"]]
    lines = []
    for r in seats:
        if r["unlimited"]:
            lines.append(_("%(product)s: %(n)s assigned (unlimited)")
                         % {"product": r["product"].name, "n": r["assigned"]})
        else:
            lines.append(ngettext(
                "%(product)s: %(n)s of %(seats)s assigned · %(free)s available",
                "%(product)s: %(n)s of %(seats)s assigned · %(free)s available",
                r["available"],
            ) % {"product": r["product"].name, "n": r["assigned"], "seats": r["seats"],
                 "free": r["available"]})
    return {
        "figure": str(sum(r["assigned"] for r in seats)),
        "text": _("licenses assigned") if seats else _("No subscriptions yet."),
        "lines": lines,
        "link_label": _("Active users"),
        "url2": reverse("billing_licenses"),
        "link2_label": _("Licenses"),
    }
