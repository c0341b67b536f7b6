"""Forms of the licenses pages: a person's licenses, bulk changes, seats, the people CSV."""

import phonenumbers
from babel import Locale, UnknownLocaleError
from django import forms
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from .. import products as P
from ..platform.roles import ROLE_LABEL_CHOICES
from . import PlainIntegerField


def country_choices(blank=True):
    """Countries by name in the page's language (Babel), codes from phonenumbers."""
    try:
        names = Locale.parse((get_language() or "en").replace("-", "_")).territories
    except (UnknownLocaleError, ValueError):
        names = Locale("en").territories
    codes = sorted(c for c in phonenumbers.SUPPORTED_REGIONS if len(c) == 2 and c != "001")
    choices = sorted(((c, names.get(c, c)) for c in codes), key=lambda x: x[1])
    return ([("", _("Not set"))] if blank else []) + choices


def country_name(code: str) -> str:
    if not code:
        return ""
    try:
        names = Locale.parse((get_language() or "en").replace("-", "_")).territories
    except (UnknownLocaleError, ValueError):
        return code
    return names.get(code, code)


class PeopleFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    license = forms.ChoiceField(label=_("License"), required=False)
    role = forms.ChoiceField(label=_("Role"), required=False)
    sort = forms.ChoiceField(
        label=_("Sort by"),
        required=False,
        choices=[
            ("name", _("Name (A to Z)")), ("-name", _("Name (Z to A)")),
            ("upn", _("User name")), ("-upn", _("User name (descending)")),
            ("location", _("Usage location")), ("-location", _("Usage location (descending)")),
        ],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["license"].choices = (
            [("", _("Any license")), ("none", _("Unlicensed"))] + P.PRODUCT_CHOICES
        )
        self.fields["role"].choices = [("", _("Any role"))] + ROLE_LABEL_CHOICES


class PersonLicensesForm(forms.Form):
    usage_location = forms.ChoiceField(
        label=_("Usage location"),
        required=False,
        help_text=_("Where this person uses the service; required before any calling plan."),
    )
    products = forms.MultipleChoiceField(
        label=_("Licenses"), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["usage_location"].choices = country_choices()
        self.fields["products"].choices = P.PRODUCT_CHOICES


class BulkLicenseForm(forms.Form):
    people = forms.TypedMultipleChoiceField(label=_("People"), coerce=int)
    sku = forms.ChoiceField(label=_("Product"))
    action = forms.ChoiceField(
        label=_("Action"), choices=[("assign", _("Assign")), ("remove", _("Remove"))]
    )

    def __init__(self, *args, people_ids=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sku"].choices = P.PRODUCT_CHOICES
        self.fields["people"].choices = [(pk, pk) for pk in people_ids]
        self.fields["people"].error_messages["required"] = _("Select at least one person.")


class LicenseCsvForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "Columns userPrincipalName, sku, action (assign or remove); or the 'add multiple "
            "users' file: userPrincipalName, displayName, email, usageLocation, "
            "preferredLanguage, roles, licenses."
        ),
    )

    def clean_file(self):
        f = self.cleaned_data["file"]
        if f.size > 5 * 1024 * 1024:
            raise forms.ValidationError(_("The file is larger than 5 MB."))
        return f


class SeatsForm(forms.Form):
    # 0 is a real choice (stop paying for a product nobody holds); the page shows each
    # message after the field's name, "Purchased seats: ...".
    seats = PlainIntegerField(
        label=_("Purchased seats"), min_value=0, max_value=1_000_000,
        error_messages={
            "required": _("enter the number of seats."),
            "invalid": _("enter a whole number of seats, such as 25, with the digits 0-9."),
            "min_value": _("enter 0 or more seats."),
            "max_value": _("enter at most 1,000,000 seats."),
        },
    )
