"""The permission matrix and tenant isolation, over every URL the project routes.

The expectation table below is written by hand from domain/roles.csv (and DESIGN.md); it
derives nothing from the code under test. A routed URL name missing from the table fails
the suite, so a new page cannot ship without someone deciding who may open it.

For each role: GET every page (200 when allowed, 403 when not), POST every form (a role
lacking the permission gets 403 and not one row changes). Every URL that names an object
is probed with another organization's object: 404 for everyone allowed (and never 200).
"""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from credits.platform.roles import ROLES
from credits.platform.services import Actor
from tests.factories import TEST_DECK_CSV, PersonFactory, graph_row

from .world import admin_routes, build_world, fingerprint, routed_names, url_of

pytestmark = pytest.mark.django_db

# --- who holds what (hand-written from domain/roles.csv) ------------------------------------
ALL = frozenset(r.code for r in ROLES)
ADMINS = frozenset({"global_administrator", "company_administrator"})
BILLING_READERS = ADMINS | {
    "billing_administrator", "teams_administrator", "teams_communications_administrator",
    "global_reader", "license_administrator", "user_administrator",
    "user_account_administrator"}
BILLING_MANAGERS = ADMINS | {"billing_administrator"}
USAGE_READERS = ADMINS | {
    "billing_administrator", "teams_administrator", "teams_communications_administrator",
    "teams_communications_support_engineer", "teams_communications_support_specialist",
    "global_reader"}
# Global Reader sees the report's totals, not call rows (as in Microsoft's admin center).
CALL_ROW_READERS = USAGE_READERS - {"global_reader"}
PEOPLE_READERS = ADMINS | {"license_administrator", "user_administrator",
                           "user_account_administrator", "global_reader"}
LICENSE_MANAGERS = ADMINS | {"license_administrator", "user_administrator",
                             "user_account_administrator"}
SETTINGS_READERS = ADMINS | {"billing_administrator", "teams_administrator",
                             "teams_communications_administrator", "global_reader"}
RATES_READERS = ADMINS | {"teams_administrator", "teams_communications_administrator",
                          "global_reader"}
RATES_MANAGERS = ADMINS | {"teams_administrator", "teams_communications_administrator"}
TOKEN_MANAGERS = RATES_MANAGERS
AUDIT_READERS = ADMINS | {"global_reader"}
NOTIFICATION_MANAGERS = ADMINS | {"billing_administrator"}
PUBLIC = "public"  # anyone, signed in or not
NO_GET = "no GET"  # the URL takes POST only: 405 to those allowed, 403 to the others

# url name -> {"GET": who may, "POST": who may}. Absent method: not a form of that page.
EXPECT = {
    "login": {"GET": PUBLIC},
    "logout": {"GET": NO_GET, "POST": PUBLIC},
    "password_reset": {"GET": PUBLIC},
    "password_reset_done": {"GET": PUBLIC},
    "password_reset_confirm": {"GET": PUBLIC},
    "password_reset_complete": {"GET": PUBLIC},
    "healthz": {"GET": PUBLIC},
    "home": {"GET": ALL},
    "set_language": {"GET": NO_GET, "POST": ALL},
    "settings_org": {"GET": SETTINGS_READERS},
    "settings_audit": {"GET": AUDIT_READERS},
    "settings_audit_export": {"GET": AUDIT_READERS},
    "billing_credits": {"GET": BILLING_READERS},
    "billing_add_funds": {"GET": BILLING_MANAGERS, "POST": BILLING_MANAGERS},
    "billing_add_funds_confirm": {"GET": NO_GET, "POST": BILLING_MANAGERS},
    "billing_auto_recharge": {"GET": BILLING_READERS, "POST": BILLING_MANAGERS},
    "billing_payment_methods": {"GET": BILLING_READERS, "POST": BILLING_MANAGERS},
    "billing_payment_method_remove": {"GET": NO_GET, "POST": BILLING_MANAGERS},
    "billing_transactions": {"GET": BILLING_READERS},
    "billing_transactions_export": {"GET": BILLING_READERS},
    "billing_adjust_balance": {"GET": BILLING_MANAGERS, "POST": BILLING_MANAGERS},
    "billing_adjust_balance_confirm": {"GET": NO_GET, "POST": BILLING_MANAGERS},
    "billing_support_request": {"GET": NO_GET, "POST": BILLING_MANAGERS},
    "billing_bills": {"GET": BILLING_READERS},
    "billing_invoice": {"GET": BILLING_READERS},
    "billing_invoice_pdf": {"GET": BILLING_READERS},
    "billing_invoice_refund": {"GET": BILLING_MANAGERS, "POST": BILLING_MANAGERS},
    "billing_invoice_refund_confirm": {"GET": NO_GET, "POST": BILLING_MANAGERS},
    "billing_credit_note": {"GET": BILLING_READERS},
    "billing_credit_note_pdf": {"GET": BILLING_READERS},
    "billing_licenses": {"GET": BILLING_READERS},
    "billing_seats": {"GET": NO_GET, "POST": BILLING_MANAGERS},
    # The organization's monthly spend limit sits beside auto-recharge: a billing setting.
    "billing_spend_limit": {"GET": BILLING_READERS, "POST": BILLING_MANAGERS},
    "reports_minute_pools": {"GET": USAGE_READERS},
    "reports_reconciliation": {"GET": USAGE_READERS},
    "reports_reconciliation_export": {"GET": USAGE_READERS},
    "users": {"GET": PEOPLE_READERS},
    "users_bulk": {"GET": NO_GET, "POST": LICENSE_MANAGERS},
    # A person's own limit is set where their licenses are managed (Active users).
    "users_bulk_limit": {"GET": NO_GET, "POST": LICENSE_MANAGERS},
    "person_spend_limit": {"GET": NO_GET, "POST": LICENSE_MANAGERS},
    "users_import": {"GET": LICENSE_MANAGERS, "POST": LICENSE_MANAGERS},
    "users_import_job": {"GET": LICENSE_MANAGERS},
    "users_import_results_csv": {"GET": LICENSE_MANAGERS},
    "person_licenses": {"GET": PEOPLE_READERS, "POST": LICENSE_MANAGERS},
    "reports_pstn_usage": {"GET": USAGE_READERS},
    "reports_pstn_usage_direct_routing": {"GET": USAGE_READERS},
    "reports_pstn_usage_columns": {"GET": NO_GET, "POST": USAGE_READERS},
    "reports_export_create": {"GET": NO_GET, "POST": CALL_ROW_READERS},
    "reports_downloads": {"GET": USAGE_READERS},
    "reports_download": {"GET": CALL_ROW_READERS},
    # Importing calls spends the balance: a billing decision, not a reader's.
    "reports_pstn_import": {"GET": BILLING_MANAGERS, "POST": BILLING_MANAGERS},
    "settings_rates": {"GET": RATES_READERS},
    "settings_rates_upload": {"GET": NO_GET, "POST": RATES_MANAGERS},
    "settings_rates_download": {"GET": RATES_READERS},
    "settings_api_tokens": {"GET": TOKEN_MANAGERS, "POST": TOKEN_MANAGERS},
    "settings_api_token_revoke": {"GET": NO_GET, "POST": TOKEN_MANAGERS},
    "settings_microsoft": {"GET": SETTINGS_READERS, "POST": TOKEN_MANAGERS},
    "settings_microsoft_test": {"GET": NO_GET, "POST": TOKEN_MANAGERS},
    "settings_microsoft_pull": {"GET": NO_GET, "POST": TOKEN_MANAGERS},
    "settings_microsoft_backfill": {"GET": NO_GET, "POST": TOKEN_MANAGERS},
    "settings_microsoft_disconnect": {"GET": NO_GET, "POST": TOKEN_MANAGERS},
    "notifications": {"GET": ALL},
    "notifications_mark_all_read": {"GET": NO_GET, "POST": ALL},
    "notification_detail": {"GET": ALL},
    "notification_delivery_retry": {"GET": NO_GET, "POST": NOTIFICATION_MANAGERS},
    "settings_notifications": {"GET": SETTINGS_READERS, "POST": NOTIFICATION_MANAGERS},
}
# The JSON API: bearer tokens, not roles (tested at the end of this file).
API = {"api:openapi-json": 200, "api:openapi-view": 200, "api:api-root": 404,
       "api:post_pstn_calls": 401, "api:get_pstn_calls": 401, "api:post_authorize": 401,
       "api:post_direct_routing_calls": 401, "api:get_direct_routing_calls": 401,
       "api:credits_balance": 401, "api_not_found": 404}


def post_data(name: str, world: dict) -> dict:
    """A valid submission of each form: what an allowed role's click would send."""
    year = timezone.now().year + 2
    person = world["person"]
    files = {
        "users_import": ("people.csv", f"userPrincipalName,sku,action\n{person.upn},"
                                       "MCOPSTNC,remove\n".encode()),
        "reports_pstn_import": ("calls.json", json.dumps(
            {"value": [graph_row("matrix-1", startDateTime="2026-11-02T09:00:00Z")]}).encode()),
        "settings_rates_upload": ("deck.csv", TEST_DECK_CSV.encode()),
    }
    if name in files:
        file_name, content = files[name]
        return {"file": SimpleUploadedFile(file_name, content, content_type="text/csv")}
    return {
        "logout": {},
        "set_language": {"language": "fr", "next": "/"},
        "billing_add_funds": {"amount": "100", "payment_method": world["card"].pk},
        "billing_add_funds_confirm": {"amount": "100", "payment_method": world["card"].pk,
                                      "request_key": "matrix-order"},
        "billing_auto_recharge": {"enabled": "on", "amount": "100", "trigger": "60",
                                  "payment_method": world["card"].pk},
        "billing_payment_methods": {"number": "5555555555554444", "exp_month": "12",
                                    "exp_year": str(year), "cvc": "123"},
        "billing_payment_method_remove": {},
        "billing_support_request": {"message": "Please call me."},
        "billing_adjust_balance": {"direction": "credit", "amount": "5", "reason": "goodwill",
                                   "reference": "matrix-adjust"},
        "billing_adjust_balance_confirm": {"direction": "credit", "amount": "5",
                                           "reason": "goodwill", "reference": "matrix-adjust"},
        "billing_seats": {"seats": "60"},
        "billing_invoice_refund": {"amount": "1", "reason": "matrix"},
        "billing_invoice_refund_confirm": {"amount": "1", "reason": "matrix",
                                           "request_key": "matrix-refund"},
        "users_bulk": {"people": [person.pk], "sku": "MCOPSTNC", "action": "remove"},
        "billing_spend_limit": {"monthly_limit": "500"},
        "users_bulk_limit": {"people": [person.pk], "monthly_limit": "40"},
        "person_spend_limit": {"monthly_limit": "30"},
        "person_licenses": {"usage_location": "FR", "products": []},
        "reports_pstn_usage_columns": {"columns": ["user", "charge"]},
        "reports_export_create": {"format": "xlsx", "range": "28"},
        "settings_api_tokens": {"name": "Another switch"},
        "settings_api_token_revoke": {},
        "settings_microsoft": {"tenant_id": "contoso.onmicrosoft.com", "cloud": "global",
                               "client_id": "6731de76-14a6-49ae-97bc-6eba6914391e",
                               "client_secret": "matrix~secret~value", "enabled": "on"},
        "settings_microsoft_test": {},
        "settings_microsoft_pull": {},
        "settings_microsoft_backfill": {"days": "7"},
        "settings_microsoft_disconnect": {},
        "notifications_mark_all_read": {},
        "notification_delivery_retry": {},
        "settings_notifications": {"section": "low_balance", "threshold": "25"},
    }[name]


def test_every_routed_url_has_an_expectation():
    """Fails when a page is added without deciding who may open it (or one is removed)."""
    routed = set(routed_names())
    assert routed - set(EXPECT) - set(API) == set(), "routed URLs missing from EXPECT"
    assert (set(EXPECT) | set(API)) - routed == set(), "EXPECT names a URL that is not routed"


@pytest.fixture
def worlds(org, other_org):
    mine = build_world(org, PersonFactory(organization=org, display_name="World Admin"))
    theirs = build_world(other_org, PersonFactory(organization=other_org,
                                                  display_name="Their Admin"))
    return mine, theirs


def _may(rule, role) -> bool:
    return rule == PUBLIC or (rule != NO_GET and role in rule)


@pytest.mark.parametrize("role", sorted(ALL))
def test_each_role_gets_exactly_what_roles_csv_allows_and_nothing_of_another_org(
        client, make_person, worlds, role):
    mine, theirs = worlds
    client.force_login(make_person(role).user)
    wrong = []
    # Pages.
    for name, rules in EXPECT.items():
        rule = rules["GET"]
        if name == "logout":
            continue
        status = client.get(url_of(name, mine)).status_code
        if rule == NO_GET:
            # A GET of a form's target does nothing: 405, or 403 to a role refused anyway.
            allowed = role in EXPECT[name]["POST"] or EXPECT[name]["POST"] == PUBLIC
            expected = {405} if allowed else {403, 405}
        else:
            expected = {200} if _may(rule, role) else {403}
        if status not in expected:
            wrong.append(("GET", name, status, expected))
    # Another organization's objects: not found for those who may open the page.
    for name in theirs["kwargs"]:
        if name in ("billing_seats", "password_reset_confirm"):
            continue  # a product code and a public link: no organization in them
        for method in ("GET", "POST"):
            rule = EXPECT[name].get(method)
            if rule is None or rule == NO_GET:
                continue
            before = fingerprint() if method == "POST" else None
            url = url_of(name, theirs)
            response = client.post(url, post_data(name, mine)) if method == "POST" \
                else client.get(url)
            # Never found for those who may use the page; refused or not found for others.
            expected = {404} if _may(rule, role) else {403, 404}
            if response.status_code not in expected:
                wrong.append((method, name, "other org", response.status_code, expected))
            if before is not None and fingerprint() != before:
                wrong.append((method, name, "other org", "changed data"))
    # Forms: refused and nothing changed, or accepted.
    for name, rules in EXPECT.items():
        rule = rules.get("POST")
        if rule is None or name == "logout":
            continue
        before = fingerprint()
        response = client.post(url_of(name, mine), post_data(name, mine))
        if _may(rule, role):
            if response.status_code in (403, 404, 405) or response.status_code >= 500:
                wrong.append(("POST", name, response.status_code, "allowed"))
        else:
            if response.status_code != 403:
                wrong.append(("POST", name, response.status_code, 403))
            if fingerprint() != before:
                wrong.append(("POST", name, "refused but changed data"))
    assert wrong == [], (role, wrong)


def test_anonymous_is_sent_to_sign_in_and_changes_nothing(client, worlds):
    mine, _theirs = worlds
    wrong = []
    for name, rules in EXPECT.items():
        for method, rule in rules.items():
            if method == "POST" and name == "logout":
                continue
            before = fingerprint() if method == "POST" else None
            url = url_of(name, mine)
            response = client.post(url, post_data(name, mine)) if method == "POST" \
                else client.get(url)
            if rule == PUBLIC:
                ok = response.status_code == 200
            elif rule == NO_GET and rules.get("POST") == PUBLIC:
                ok = response.status_code == 405
            else:
                ok = response.status_code == 302 and response["Location"].startswith(
                    "/accounts/login/?next=")
            if not ok:
                wrong.append((method, name, response.status_code))
            if before is not None and fingerprint() != before:
                wrong.append((method, name, "changed data"))
    assert wrong == []


def test_no_role_opens_django_admin_without_being_staff(client, make_person, worlds):
    client.force_login(make_person("global_administrator").user)
    urls = [url for url in admin_routes() if url not in ("/admin/login/", "/admin/logout/")]
    opened = [url for url in urls if client.get(url).status_code == 200]
    assert len(urls) > 20 and opened == []


# --- the JSON API -----------------------------------------------------------------------------


def test_every_api_endpoint_needs_a_token(client, worlds):
    from django.urls import reverse

    wrong = []
    for name, expected in API.items():
        url = reverse(name)
        for method in ("get", "post"):
            response = getattr(client, method)(url, {} if method == "get" else "{}",
                                               **({} if method == "get" else
                                                  {"content_type": "application/json"}))
            if response.status_code == 405:
                continue
            if response.status_code != expected:
                wrong.append((method, name, response.status_code, expected))
    assert wrong == []


def test_another_organizations_token_sees_nothing_of_this_one(client, org, other_org, worlds):
    from usage.models import CallRecord
    from usage.services import api_token_create

    _token, raw = api_token_create(organization=other_org, name="theirs",
                                   actor=Actor.system("matrix"))
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    mine = list(CallRecord.objects.filter(organization=org).values_list("graph_id", flat=True))
    start = (timezone.now() - timezone.timedelta(days=30)).isoformat()
    page = client.get("/api/v1/pstn-calls", {"fromDateTime": start,
                                             "toDateTime": timezone.now().isoformat()}, **auth)
    assert page.status_code == 200
    ids = {row["id"] for row in page.json()["value"]}
    assert ids and not ids & set(mine)
    balance = client.get("/api/v1/credits/balance", **auth).json()
    assert balance["currency"] == other_org.currency
    decision = client.post("/api/v1/calls/authorize", {
        "userPrincipalName": f"eve.{org.slug}@{org.slug}.example",
        "calleeNumber": "+33123456789", "callType": "user_out"},
        content_type="application/json", **auth).json()
    assert decision["allowed"] is False  # our person is unknown to the other org


def test_view_call_rows_is_declared_for_the_call_row_readers_only():
    """Call rows are a declared permission (credits.platform.roles), not a role name in a view."""
    holders = frozenset(r.code for r in ROLES if "view_call_rows" in r.permissions)
    assert holders == CALL_ROW_READERS
