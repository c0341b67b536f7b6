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
