from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from credits.roles import ROLE_CHOICES

from . import catalog


class RoutingForm(forms.Form):
    """The roles e-mailed for each event: one checkbox list per event (name = event)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in catalog.ROUTED_EVENTS:
            self.fields[name] = forms.MultipleChoiceField(
                label=catalog.EVENTS[name].label,
                choices=ROLE_CHOICES,
                required=False,
                widget=forms.CheckboxSelectMultiple,
            )


class LowBalanceForm(forms.Form):
    threshold = forms.DecimalField(
        label=_("Warn when the balance falls below"),
        help_text=_("In the billing currency. Leave empty to switch the warning off."),
        required=False,
        min_value=Decimal("0"),
        max_value=Decimal("100000"),
        max_digits=8,
        decimal_places=2,
    )
