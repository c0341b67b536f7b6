"""Who may open which page: each role against each page, and one enforcement point."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from credits.platform.access import access_of
from credits.platform.roles import ROLES

# Written by hand from domain/roles.csv; not derived from the code under test.
ALL = {r.code for r in ROLES}
ADMINS = {"global_administrator", "company_administrator"}
BILLING_READERS = ADMINS | {
    "billing_administrator", "teams_administrator", "teams_communications_administrator",
    "global_reader", "license_administrator", "user_administrator",
    "user_account_administrator",
}
USAGE_READERS = ADMINS | {
    "billing_administrator", "teams_administrator", "teams_communications_administrator",
    "teams_communications_support_engineer", "teams_communications_support_specialist",
    "global_reader",
}
PEOPLE_READERS = ADMINS | {
    "license_administrator", "user_administrator", "user_account_administrator",
    "global_reader",
}
SETTINGS_READERS = ADMINS | {
    "billing_administrator", "teams_administrator", "teams_communications_administrator",
    "global_reader",
}
RATES_READERS = ADMINS | {"teams_administrator", "teams_communications_administrator",
                          "global_reader"}
TOKEN_MANAGERS = ADMINS | {"teams_administrator", "teams_communications_administrator"}
AUDIT_READERS = ADMINS | {"global_reader"}

PAGES = {
    "/": ALL,
    "/notifications/": ALL,
    "/billing/communications-credits/": BILLING_READERS,
    "/billing/licenses/": BILLING_READERS,
    "/billing/bills/": BILLING_READERS,
    "/users/": PEOPLE_READERS,
    "/reports/pstn-usage/": USAGE_READERS,
    "/reports/minute-pools/": USAGE_READERS,
    "/reports/reconciliation/": USAGE_READERS,
    "/reports/downloads/": USAGE_READERS,
    "/settings/": SETTINGS_READERS,
    "/settings/notifications/": SETTINGS_READERS,
    "/settings/rates/": RATES_READERS,
    "/settings/api-tokens/": TOKEN_MANAGERS,
    "/settings/audit/": AUDIT_READERS,
}


@pytest.mark.django_db
@pytest.mark.parametrize("role", sorted(ALL))
def test_each_role_gets_exactly_the_pages_roles_csv_allows(client, make_person, role):
    person = make_person(role)
    client.force_login(person.user)
    for url, allowed in PAGES.items():
        response = client.get(url)
        expected = 200 if role in allowed else 403
        assert response.status_code == expected, (role, url, response.status_code)


@pytest.mark.django_db
def test_person_without_role_sees_home_but_no_admin_page(client, make_person):
    person = make_person()
    client.force_login(person.user)
    assert client.get("/").status_code == 200
    assert client.get("/billing/communications-credits/").status_code == 403
    assert client.get("/settings/audit/").status_code == 403


@pytest.mark.django_db
def test_anonymous_is_sent_to_sign_in(client):
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.django_db
def test_signed_in_account_without_person_is_refused(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory())
    assert client.get("/").status_code == 403


def _our_patterns(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _our_patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            callback = entry.callback
            module = getattr(getattr(callback, "view_class", callback), "__module__", "")
            if module.startswith(("credits.", "usage.", "notifications.", "config.")):
                yield prefix + str(entry.pattern), callback


def test_every_routed_view_of_ours_declares_its_access():
    patterns = list(_our_patterns())
    assert len(patterns) >= len(PAGES)
    undeclared = [route for route, view in patterns if access_of(view) is None]
    assert undeclared == []


@pytest.mark.django_db
def test_a_view_that_forgets_to_declare_access_is_refused(rf, admin_person):
    from credits.platform.middleware import TenantMiddleware

    def forgetful_view(request):  # module is tests.*: pretend it is ours
        raise AssertionError("must not run")

    forgetful_view.__module__ = "credits.views"
    request = rf.get("/x")
    request.user = admin_person.user
    request.person = admin_person
    response = TenantMiddleware(lambda r: None).process_view(request, forgetful_view, (), {})
    assert response.status_code == 403


def test_a_read_and_change_declaration_reads_for_some_and_changes_for_others():
    from types import SimpleNamespace

    from credits.platform.access import permission, person_may

    @permission("view_billing", change="manage_billing")
    def page(request):
        return None

    reader = SimpleNamespace(permissions=frozenset({"view_billing"}))
    manager = SimpleNamespace(permissions=frozenset({"view_billing", "manage_billing"}))
    for method in ("GET", "HEAD"):
        assert person_may(reader, page.access, method) and person_may(manager, page.access,
                                                                       method)
    for method in ("POST", "PUT", "DELETE"):
        assert not person_may(reader, page.access, method)
        assert person_may(manager, page.access, method)
    assert not person_may(None, page.access, "GET")


def test_no_view_decides_access_in_its_body():
    """Access is declared on the view (and the middleware enforces it); a view body that
    answers 403 itself is a second place deciding it."""
    import re
    from pathlib import Path

    from django.conf import settings

    offenders = []
    for app in ("credits", "usage", "notifications"):
        for path in (Path(settings.BASE_DIR) / app).rglob("views*/**/*.py"):
            offenders += [f"{path}:{n}" for n, line in enumerate(path.read_text().split("\n"), 1)
                          if re.search(r"status=403|raise PermissionDenied", line)]
        for path in (Path(settings.BASE_DIR) / app).rglob("views*.py"):
            offenders += [f"{path}:{n}" for n, line in enumerate(path.read_text().split("\n"), 1)
                          if re.search(r"status=403|raise PermissionDenied", line)]
    assert offenders == []
