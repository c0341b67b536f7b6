"""The admin roles of domain/roles.csv and what each may do in this app.

Permissions are plain strings. `manage_x` implies `view_x`; Global Reader is read-only
everywhere, so it holds every `view_*` permission of VIEW_PERMISSIONS and no `manage_*` one.
`view_call_rows` (the report's call rows and exports, beyond its totals) is held by every
role that reads usage except Global Reader, which sees the totals only, as in the Microsoft
admin center.
"""

from dataclasses import dataclass

from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

MANAGE_PERMISSIONS = frozenset(
    {
        "manage_billing",
        "manage_licenses",
        "manage_people",
        "manage_rates",
        "manage_api_tokens",
        "manage_notifications",
        "manage_org",
    }
)
VIEW_PERMISSIONS = frozenset(
    {
        "view_billing",
        "view_usage",
        "view_people",
        "view_rates",
        "view_audit",
        "view_settings",
    }
)
# Call rows name people and numbers: granted role by role, never by "read_only".
ROW_PERMISSIONS = frozenset({"view_call_rows"})
ALL_PERMISSIONS = MANAGE_PERMISSIONS | VIEW_PERMISSIONS | ROW_PERMISSIONS

# What holding a manage permission lets a person read as well.
IMPLIED = {
    "manage_billing": {"view_billing"},
    "manage_licenses": {"view_people", "view_billing"},
    "manage_people": {"view_people"},
    "manage_rates": {"view_rates", "view_settings"},
    "manage_api_tokens": {"view_settings"},
    "manage_notifications": {"view_settings"},
    "manage_org": {"view_settings", "view_audit"},
}


@dataclass(frozen=True)
class Role:
    name: str
    credit_alerts: bool
    pool_alerts: bool
    permissions: frozenset

    @property
    def code(self) -> str:
        return slugify(self.name).replace("-", "_")

    @property
    def label(self):
        """The name in the reader's language (the English name is the stable identity)."""
        return ROLE_LABELS.get(self.name, self.name)


def _role(name, credit_alerts, pool_alerts, permissions):
    if permissions == "all":
        perms = ALL_PERMISSIONS
    elif permissions == "read_only":
        perms = VIEW_PERMISSIONS
    else:
        perms = frozenset(permissions.split())
    expanded = set(perms)
    for perm in perms:
        expanded |= IMPLIED.get(perm, set())
    return Role(name, credit_alerts == "yes", pool_alerts == "yes", frozenset(expanded))


# Transcribed from domain/roles.csv (role, credit_alerts, pool_alerts, permissions), with
# view_call_rows beside view_usage for every role but Global Reader.
ROLES = [
    _role("Global Administrator", "yes", "no", "all"),
    _role("Company Administrator", "yes", "yes", "all"),
    _role("Billing Administrator", "yes", "yes",
          "manage_billing view_billing view_usage view_call_rows manage_notifications"),
    _role("License Administrator", "yes", "yes", "manage_licenses"),
    _role("User Administrator", "yes", "no", "manage_licenses manage_people"),
    _role("User Account Administrator", "yes", "yes", "manage_licenses manage_people"),
    _role("Teams Administrator", "yes", "yes",
          "view_usage view_call_rows manage_rates manage_api_tokens view_billing"),
    _role("Teams Communications Administrator", "yes", "yes",
          "view_usage view_call_rows manage_rates manage_api_tokens view_billing"),
    _role("Teams Communications Support Engineer", "yes", "yes", "view_usage view_call_rows"),
    _role("Teams Communications Support Specialist", "yes", "yes", "view_usage view_call_rows"),
    _role("Helpdesk Administrator", "yes", "yes", ""),
    _role("Service Support Administrator", "yes", "yes", ""),
    _role("Skype for Business Administrator", "yes", "yes", ""),
    _role("Lync Service Administrator", "yes", "no", ""),
    _role("Application Administrator", "yes", "yes", ""),
    _role("Authentication Administrator", "yes", "yes", ""),
    _role("Privileged Authentication Administrator", "yes", "yes", ""),
    _role("Device Administrator", "yes", "yes", ""),
    _role("Cloud Device Administrator", "yes", "yes", ""),
    _role("Azure AD Joined Device Local Administrator", "yes", "no", ""),
    _role("Global Reader", "no", "no", "read_only"),
]
ROLES_BY_CODE = {role.code: role for role in ROLES}
# Model choices keep the English names (they are part of the migration state); forms and
# pages use ROLE_LABEL_CHOICES, translated.
ROLE_CHOICES = [(role.code, role.name) for role in ROLES]

ROLE_LABELS = {
    "Global Administrator": _("Global Administrator"),
    "Company Administrator": _("Company Administrator"),
    "Billing Administrator": _("Billing Administrator"),
    "License Administrator": _("License Administrator"),
    "User Administrator": _("User Administrator"),
    "User Account Administrator": _("User Account Administrator"),
    "Teams Administrator": _("Teams Administrator"),
    "Teams Communications Administrator": _("Teams Communications Administrator"),
    "Teams Communications Support Engineer": _("Teams Communications Support Engineer"),
    "Teams Communications Support Specialist": _("Teams Communications Support Specialist"),
    "Helpdesk Administrator": _("Helpdesk Administrator"),
    "Service Support Administrator": _("Service Support Administrator"),
    "Skype for Business Administrator": _("Skype for Business Administrator"),
    "Lync Service Administrator": _("Lync Service Administrator"),
    "Application Administrator": _("Application Administrator"),
    "Authentication Administrator": _("Authentication Administrator"),
    "Privileged Authentication Administrator": _("Privileged Authentication Administrator"),
    "Device Administrator": _("Device Administrator"),
    "Cloud Device Administrator": _("Cloud Device Administrator"),
    "Azure AD Joined Device Local Administrator": _(
        "Azure AD Joined Device Local Administrator"
    ),
    "Global Reader": _("Global Reader"),
}
ROLE_LABEL_CHOICES = [(role.code, role.label) for role in ROLES]


def role_by_name_or_code(value: str) -> Role | None:
    """Accepts "Billing Administrator" as well as "billing_administrator"."""
    value = value.strip()
    return ROLES_BY_CODE.get(value) or ROLES_BY_CODE.get(slugify(value).replace("-", "_"))


def permissions_for(role_codes) -> frozenset:
    perms = set()
    for code in role_codes:
        role = ROLES_BY_CODE.get(code)
        if role:
            perms |= role.permissions
    return frozenset(perms)
