"""Forms of the Transactions area: adjusting the balance by hand, and the export range.
Each error names its field."""

import secrets
from datetime import timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..platform.services import ServiceError
from ..services.adjustments import (
    REASON_MAX_LENGTH,
    REFERENCE_MAX_LENGTH,
    parse_adjustment_amount,
)
from ..transactions_export import MAX_DAYS, TransactionsRange
from .billing import AccessibleForm

CREDIT, DEBIT = "credit", "debit"


def new_reference() -> str:
    """A reference for a form that has none typed yet: the form's own key, so submitting
    the same form twice adjusts once."""
    return f"ADJ-{timezone.now():%Y%m%d}-{secrets.token_hex(3).upper()}"


class AdjustmentForm(AccessibleForm):
    direction = forms.ChoiceField(
        label=_("Adjustment"),
        choices=[(CREDIT, _("Credit: add to the balance")),
                 (DEBIT, _("Debit: take from the balance"))],
        widget=forms.RadioSelect,
        error_messages={"required": _("Adjustment: choose credit or debit."),
                        "invalid_choice": _("Adjustment: choose credit or debit.")},
    )
    amount = forms.CharField(
        label=_("Amount"),
        help_text=_("In your billing currency, up to 2 decimal places, for example 25 or "
                    "12.50."),
        error_messages={"required": _("Amount: enter how much to adjust.")},
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off",
                                      "maxlength": "16"}),
    )
    reason = forms.CharField(
        label=_("Reason"),
        help_text=_("Shown in Transactions and the audit log, for example \"Goodwill for "
                    "the outage of 3 May\"."),
        error_messages={"required": _("Reason: say why the balance is adjusted.")},
        widget=forms.TextInput(attrs={"maxlength": str(REASON_MAX_LENGTH)}),
    )
    reference = forms.CharField(
        label=_("Reference"),
        help_text=_("A ticket or case number. One reference adjusts the balance once: "
                    "sending it again changes nothing."),
        error_messages={"required": _("Reference: enter a ticket number or keep the one "
                                      "suggested.")},
        widget=forms.TextInput(attrs={"maxlength": str(REFERENCE_MAX_LENGTH),
                                      "autocomplete": "off"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("direction", CREDIT)
            self.initial.setdefault("reference", new_reference())

    def clean_amount(self):
        try:
            amount = parse_adjustment_amount(self.cleaned_data["amount"],
                                             label=self.fields["amount"].label)
        except ServiceError as error:
            raise forms.ValidationError(error.message, code=error.code) from error
        if amount < 0:
            raise forms.ValidationError(
                _("Amount: enter it without a sign, and choose Debit to take it from the "
                  "balance."), code="signed")
        return amount

    def _text(self, name):
        value = " ".join(self.cleaned_data[name].split())
        limit = REASON_MAX_LENGTH if name == "reason" else REFERENCE_MAX_LENGTH
        if len(value) > limit:
            raise forms.ValidationError(
                _("%(field)s must be at most %(max)s characters.")
                % {"field": self.fields[name].label, "max": limit}, code="max_length")
        return value

    def clean_reason(self):
        return self._text("reason")

    def clean_reference(self):
        return self._text("reference")

    @property
    def signed_amount(self):
        amount = self.cleaned_data["amount"]
        return -amount if self.cleaned_data["direction"] == DEBIT else amount


class TransactionsExportForm(forms.Form):
    FORMATS = (("xlsx", _("Excel (.xlsx)")), ("csv", _("CSV")))

    start = forms.DateField(label=_("From"), input_formats=["%Y-%m-%d"],
                            error_messages={"required": _("From: enter a date."),
                                            "invalid": _("From: enter a date as YYYY-MM-DD.")})
    end = forms.DateField(label=_("To"), input_formats=["%Y-%m-%d"],
                          error_messages={"required": _("To: enter a date."),
                                          "invalid": _("To: enter a date as YYYY-MM-DD.")})
    format = forms.ChoiceField(label=_("Format"), choices=FORMATS,
                               error_messages={"required": _("Format: choose Excel or CSV."),
                                               "invalid_choice": _("Format: choose Excel or "
                                                                   "CSV.")})

    @classmethod
    def initial_range(cls) -> dict:
        today = timezone.now().date()
        return {"start": today - timedelta(days=29), "end": today, "format": "xlsx"}

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if start > end:
                self.add_error("end", _("To: choose a date on or after From."))
            elif (end - start).days + 1 > MAX_DAYS:
                self.add_error("end", _("To: export at most %(days)s days at a time.")
                               % {"days": MAX_DAYS})
        return data

    @property
    def period(self) -> TransactionsRange:
        return TransactionsRange(self.cleaned_data["start"], self.cleaned_data["end"])
