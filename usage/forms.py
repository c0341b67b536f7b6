"""Forms of usage's pages: the rate deck upload, API tokens, the PSTN calls upload."""

from django import forms
from django.utils.translation import gettext_lazy as _

MAX_UPLOAD_BYTES = 50 * 1024 * 1024


class _FileField(forms.FileField):
    def clean(self, data, initial=None):
        data = super().clean(data, initial)
        if data is not None and data.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The file is larger than 50 MB."))
        return data


class RateDeckUploadForm(forms.Form):
    file = _FileField(label=_("Rate deck file (CSV)"),
                      help_text=_("The columns of the rate deck format, UTF-8, one header row."))
    skip_bad_rows = forms.BooleanField(
        label=_("Load the good rows even if some rows are bad"), required=False,
        help_text=_("Without this, a file with a bad row loads nothing."))
    merge = forms.BooleanField(
        label=_("Add to the current deck instead of replacing it"), required=False,
        help_text=_("Rows with the same direction, prefix and effective date are replaced."))


class ApiTokenForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100,
                           help_text=_("What the token is for, e.g. the SBC that will use it."))


class PstnImportForm(forms.Form):
    file = _FileField(label=_("PSTN calls file"),
                      help_text=_("Microsoft's PSTN usage export (.csv or .zip) or Graph "
                                  "pstnCallLogRow JSON."))


class MicrosoftConnectionForm(forms.Form):
    """Settings > Microsoft connection. The secret is never shown back: an empty field keeps
    the stored one."""

    tenant_id = forms.CharField(
        label=_("Directory (tenant) ID"), max_length=64,
        help_text=_("On the app registration's Overview page in the Microsoft Entra admin "
                    "center: a GUID, or a domain such as contoso.onmicrosoft.com."))
    client_id = forms.CharField(
        label=_("Application (client) ID"), max_length=64,
        help_text=_("On the same Overview page: a GUID."))
    cloud = forms.ChoiceField(label=_("National cloud"), choices=(),
                              help_text=_("Sets the sign-in and Microsoft Graph addresses."))
    client_secret = forms.CharField(
        label=_("Client secret"), required=False, max_length=1024, strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("The secret's Value from Certificates & secrets (not its Secret ID). Leave "
                    "empty to keep the stored one; a new one replaces it."))
    certificate = forms.FileField(
        label=_("Or a certificate (PEM)"), required=False,
        help_text=_("Instead of a secret: one PEM file holding the unencrypted private key and "
                    "its certificate; upload the certificate alone to the app registration."))
    enabled = forms.BooleanField(label=_("Pull call records every 15 minutes"), required=False,
                                 initial=True)

    def __init__(self, *args, **kwargs):
        from .models import MicrosoftCloud

        super().__init__(*args, **kwargs)
        self.fields["cloud"].choices = MicrosoftCloud.choices

    def clean_certificate(self):
        upload = self.cleaned_data.get("certificate")
        if upload is None:
            return ""
        if upload.size > 64 * 1024:
            raise forms.ValidationError(_("A certificate file is at most 64 KB."))
        try:
            return upload.read().decode("ascii")
        except UnicodeDecodeError:
            raise forms.ValidationError(_("Expected a PEM text file.")) from None


class MicrosoftBackfillForm(forms.Form):
    days = forms.IntegerField(
        label=_("Days to pull again"), min_value=1, max_value=365, initial=30,
        help_text=_("From 1 to 365. Runs in the background; calls already stored are "
                    "counted as duplicates and never charged twice."))
