"""Forms of the notification settings page: the roles e-mailed per event and the low
balance warning level."""

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from credits.forms import PlainDecimalField
from credits.platform.roles import ROLE_LABEL_CHOICES

from . import catalog


class RoutingForm(forms.Form):
    """The roles e-mailed for each event: one checkbox list per event (name = event)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in catalog.ROUTED_EVENTS:
            self.fields[name] = forms.MultipleChoiceField(
                label=catalog.EVENTS[name].label,
                choices=ROLE_LABEL_CHOICES,
                required=False,
                widget=forms.CheckboxSelectMultiple,
            )


class LowBalanceForm(forms.Form):
    # The page shows each message after the field's name ("Warning level: ...").
    threshold = PlainDecimalField(
        label=_("Warn when the balance falls below"),
        help_text=_("In the billing currency. Leave empty to switch the warning off."),
        required=False,
        # 0 would never warn before the balance-zero alert: empty is how to switch it off.
        min_value=Decimal("0.01"),
        max_value=Decimal("100000"),
        max_digits=8,
        decimal_places=2,
        error_messages={
            "invalid": _("enter an amount such as 50 or 12.50, with the digits 0-9."),
            "min_value": _("enter an amount above 0, or leave it empty to switch the "
                           "warning off."),
            "max_value": _("enter at most 100,000."),
            "max_digits": _("enter at most 100,000."),
            "max_whole_digits": _("enter at most 100,000."),
            "max_decimal_places": _("enter at most 2 decimal places (cents)."),
        },
    )
