"""The admin center's template context: the left navigation and the signed-in person."""

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from .access import SIGNED_IN, person_may

# The left navigation of the admin center: (label, url name, access, children).
NAV = [
    (_("Home"), "home", SIGNED_IN, []),
    (_("Users"), None, None, [
        (_("Active users"), "users", frozenset({"view_people"})),
    ]),
    (_("Billing"), None, None, [
        (_("Your products"), "billing_credits", frozenset({"view_billing"})),
        (_("Licenses"), "billing_licenses", frozenset({"view_billing"})),
        (_("Bills & payments"), "billing_bills", frozenset({"view_billing"})),
    ]),
    (_("Reports"), None, None, [
        (_("PSTN usage"), "reports_pstn_usage", frozenset({"view_usage"})),
        (_("Minute pools"), "reports_minute_pools", frozenset({"view_usage"})),
        (_("Reconciliation"), "reports_reconciliation", frozenset({"view_usage"})),
        (_("Downloads"), "reports_downloads", frozenset({"view_usage"})),
    ]),
    # The message center: "Notifications" is the name of the settings page under Settings.
    (_("Message center"), "notifications", SIGNED_IN, []),
    (_("Settings"), None, None, [
        (_("Org settings"), "settings_org", frozenset({"view_settings"})),
        (_("Notifications"), "settings_notifications", frozenset({"view_settings"})),
        (_("Rates"), "settings_rates", frozenset({"view_rates"})),
        (_("API tokens"), "settings_api_tokens", frozenset({"manage_api_tokens"})),
        (_("Microsoft connection"), "settings_microsoft",
         frozenset({"manage_api_tokens", "view_settings"})),
        (_("Audit log"), "settings_audit", frozenset({"view_audit"})),
    ]),
]


def _nav_for(person, path):
    items = _visible_items(person)
    # The current page is the longest nav URL that prefixes the path.
    urls = [u for item in items for u in [item["url"], *[k["url"] for k in item["children"]]]]
    matching = [u for u in urls if u and (path == u if u == "/" else path.startswith(u))]
    current = max(matching, key=len) if matching else None
    for item in items:
        for kid in item["children"]:
            kid["active"] = kid["url"] == current
        own = item["url"] is not None and item["url"] == current
        item["active"] = own or any(k["active"] for k in item["children"])
    return items


# The icon of each top-level entry (templates/includes/icon.html), in NAV's order: the
# collapsed navigation shows only these.
NAV_ICONS = ["home", "people", "billing", "reports", "bell", "settings"]


def _visible_items(person):
    items = []
    for (label, url_name, access, children), icon in zip(NAV, NAV_ICONS, strict=True):
        if url_name:
            if person_may(person, access):
                url = reverse(url_name)
                items.append({"label": label, "url": url, "children": [], "icon": icon})
            continue
        kids = []
        for child_label, child_url_name, child_access in children:
            if person_may(person, child_access):
                url = reverse(child_url_name)
                kids.append({"label": child_label, "url": url})
        if kids:
            items.append({"label": label, "url": None, "children": kids, "icon": icon})
    return items


def admin_center(request):
    person = getattr(request, "person", None)
    if person is None:
        return {}
    return {
        "nav": _nav_for(person, request.path),
        "person": person,
        "organization": person.organization,
        # The top bar's people search leads to Active users: only for who may open it.
        "may_search_users": person_may(person, frozenset({"view_people"})),
        # The top bar's gear opens Org settings: only for who may open it.
        "may_open_settings": person_may(person, frozenset({"view_settings"})),
        "unread_count": 0,
    }
