"""Forms of the monthly spend limits: the organization's, one person's, and a bulk one."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from ..spend_limits import LimitError, parse_limit

LIMIT_MAX_LENGTH = 16


class LimitField(forms.CharField):
    """An amount from 0 with at most 2 decimals; blank or "off" means no limit (None)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)
        self.widget.attrs.update({"inputmode": "decimal", "autocomplete": "off",
                                  "maxlength": str(LIMIT_MAX_LENGTH)})

    def clean(self, value):
        value = self.to_python(value)
        if len(value) > LIMIT_MAX_LENGTH or "\x00" in value:
            raise ValidationError(_("%(field)s: enter an amount such as 250 or 99.50, or "
                                    "off.") % {"field": self.label}, code="invalid")
        try:
            return parse_limit(value, label=str(self.label))
        except LimitError as exc:
            raise ValidationError(exc.message, code="invalid") from exc


class SpendLimitForm(forms.Form):
    monthly_limit = LimitField(
        label=_("Monthly spend limit"),
        help_text=_("Settled credits usage per calendar month (UTC), in the account "
                    "currency. Leave empty for no limit."))


class PersonLimitForm(forms.Form):
    monthly_limit = LimitField(
        label=_("Monthly credits limit"),
        help_text=_("This person's settled credits usage per calendar month (UTC). Leave "
                    "empty for no limit of their own."))


class BulkLimitForm(forms.Form):
    monthly_limit = LimitField(label=_("Monthly credits limit"))
    people = forms.TypedMultipleChoiceField(coerce=int, choices=(), required=True,
                                            error_messages={
                                                "required": _("Select at least one person.")})

    def __init__(self, *args, people_ids=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["people"].choices = [(str(pk), str(pk)) for pk in people_ids]
