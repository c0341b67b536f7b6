"""What can go wrong with the Microsoft connector, in words an admin can act on.

A failure is a `ConnectorError`: a stable `code` (stored on the run, mapped to a sentence
here, in the reader's language) and a `detail` (what Microsoft or the network said, kept as
it came, for support). Sign-in error codes are Microsoft Entra's AADSTS codes
(https://learn.microsoft.com/entra/identity-platform/reference-error-codes): 90002 tenant
not found, 900023 tenant id malformed, 700016 application not found in the tenant,
7000215 invalid client secret, 7000222 expired client secret, 700027 certificate not
accepted, 7000112 application disabled, 500011 resource not found in the tenant (often the
wrong national cloud).
"""

from django.utils import translation
from django.utils.translation import gettext_lazy as _

MESSAGES = {
    "no_key": _("FIELD_ENCRYPTION_KEY is not set on the server, so the connection's secret "
                "cannot be stored or read. Ask the operator to set it (a Fernet key) and "
                "restart."),
    "bad_key": _("The stored secret cannot be read with the server's FIELD_ENCRYPTION_KEY "
                 "(the key changed). Enter the client secret again."),
    "no_connection": _("This organization is not connected to Microsoft."),
    "no_credential": _("The connection has no client secret or certificate. Enter one."),
    "tenant_not_found": _("Microsoft does not know this tenant. Check the tenant ID (a GUID "
                          "or a domain such as contoso.onmicrosoft.com) and the national "
                          "cloud."),
    "app_not_found": _("The application (client) ID was not found in this tenant. Check the "
                       "client ID, and that the app is registered in, or consented to by, "
                       "this tenant."),
    "bad_secret": _("Microsoft refused the client secret. Copy the secret's Value (not its "
                    "Secret ID) from the app registration's Certificates & secrets page."),
    "secret_expired": _("The client secret has expired. Create a new one in the app "
                        "registration and enter it here."),
    "bad_certificate": _("Microsoft refused the certificate. Upload its public part to the "
                         "app registration's Certificates & secrets page."),
    "app_disabled": _("The application is disabled in this tenant. An administrator must "
                      "enable it in Enterprise applications."),
    "wrong_cloud": _("The tenant does not have Microsoft Graph in this national cloud. "
                     "Check the national cloud."),
    "sign_in_failed": _("Sign-in to Microsoft failed."),
    "sign_in_unreachable": _("The Microsoft sign-in service could not be reached."),
    "permission": _("The app lacks the CallRecords.Read.All application permission, or an "
                    "administrator has not granted admin consent for it. Add the "
                    "permission in the app registration (API permissions, Microsoft Graph, "
                    "Application permissions) and grant admin consent."),
    "token_rejected": _("Microsoft Graph refused the access token twice in a row."),
    "throttled": _("Microsoft Graph kept asking to slow down (429) after several tries; the "
                   "next pull starts again from the same page."),
    "unavailable": _("Microsoft Graph was unavailable after several tries; the next pull "
                     "starts again from the same page."),
    "unreachable": _("Microsoft Graph could not be reached after several tries; the next "
                     "pull starts again from the same page."),
    "bad_request": _("Microsoft Graph refused the request."),
    "bad_response": _("Microsoft Graph answered something that is not a page of call "
                      "records."),
    "already_running": _("Another pull of this organization is running; this one was not "
                         "started."),
    "interrupted": _("The pull stopped without finishing (its worker went away); the next "
                     "pull starts again from the last page read."),
    "internal": _("The pull failed on an unexpected error; see the server's log."),
}

# AADSTS code -> our code.
AADSTS = {
    90002: "tenant_not_found",
    900023: "tenant_not_found",
    90072: "app_not_found",
    700016: "app_not_found",
    7000215: "bad_secret",
    7000216: "bad_secret",
    7000222: "secret_expired",
    700027: "bad_certificate",
    700024: "bad_certificate",
    7000112: "app_disabled",
    500011: "wrong_cloud",
    650057: "permission",
}


class ConnectorError(Exception):
    def __init__(self, code: str, detail: str = ""):
        super().__init__(code, detail)
        self.code = code if code in MESSAGES else "internal"
        self.detail = (detail or "")[:2000]

    def __str__(self):
        return describe(self.code, self.detail)


def describe(code: str, detail: str = "") -> str:
    """The sentence of `code` in the active language, with Microsoft's own words after it."""
    message = str(MESSAGES.get(code, MESSAGES["internal"]))
    if detail:
        return f"{message} ({detail})"
    return message


def in_every_language(code: str, detail: str = "") -> dict[str, str]:
    """{"en": ..., "fr": ...}: a notification is written in each reader's language later."""
    from django.conf import settings

    words = {}
    for language, _name in settings.LANGUAGES:
        with translation.override(language):
            words[language] = describe(code, detail)
    return words


def first_line(text: str) -> str:
    """The first line of Microsoft's error_description, without its trace and correlation
    ids (which follow on the next lines)."""
    return (text or "").replace("\\r\\n", "\n").splitlines()[0].strip()[:500] if text else ""
