"""Forms of the Communications Credits pages. Each error names its field."""

import uuid

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..models import AutoRechargeMode, PaymentMethod
from ..models.billing import PO_NUMBER_MAX_LENGTH
from ..money import AMOUNT_MAX_LENGTH, AmountError, parse_whole_amount
from ..payments.cards import card_expired, luhn_ok
from ..recharge_rules import (
    RechargeSettings,
    SettingError,
    clean_po_number,
    recharge_settings_errors,
    trigger_above_max_message,
)


class AccessibleForm(forms.Form):
    """Django marks fields in error with aria-invalid and points aria-describedby at
    `<id>_error` and `<id>_helptext`, the ids `credits/billing/_field.html` renders."""


class WholeAmountField(forms.CharField):
    """A whole number within the money bounds, with messages naming the field."""

    def __init__(self, *args, **kwargs):
        # No CharField length check: its message would not name the field; the parser
        # refuses an over-long value with one that does.
        super().__init__(*args, **kwargs)
        self.widget.attrs.update({"inputmode": "numeric", "autocomplete": "off",
                                  "maxlength": str(AMOUNT_MAX_LENGTH)})

    def clean(self, value):
        # CharField's own validators (length, NUL) would answer without naming the field;
        # the parser refuses those values with messages that do.
        value = self.to_python(value)
        self.validate(value)
        if value in self.empty_values:
            return None
        try:
            return parse_whole_amount(value, label=self.label)
        except AmountError as error:
            raise forms.ValidationError(error.message, code=error.code) from error


class TriggerField(WholeAmountField):
    """The trigger: above the maximum, the message says why it could never be reached."""

    def clean(self, value):
        try:
            return super().clean(value)
        except forms.ValidationError as error:
            if error.code == "max":
                raise forms.ValidationError(trigger_above_max_message(), code="max") from error
            raise


class PoNumberField(forms.CharField):
    def __init__(self, **kwargs):
        super().__init__(
            label=_("PO number (optional)"), required=False,
            help_text=_("Your purchase order number, printed on the invoice."),
            # No CharField length check: clean_po_number's message names the field.
            widget=forms.TextInput(attrs={"maxlength": str(PO_NUMBER_MAX_LENGTH),
                                          "autocomplete": "off"}),
            **kwargs)

    def clean(self, value):
        # Not CharField's own validators (NUL, length): their messages name no field.
        try:
            return clean_po_number(self.to_python(value))
        except SettingError as error:
            raise forms.ValidationError(error.message, code=error.code) from error


class CardChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return _("%(card)s, expires %(expiry)s") % {"card": obj.label,
                                                     "expiry": obj.expiry_label}


def _card_field(organization, label):
    return CardChoiceField(
        label=label,
        queryset=PaymentMethod.objects.filter(organization=organization,
                                              removed_at__isnull=True),
        empty_label=None,
        error_messages={
            "required": _("Payment method: choose a saved card."),
            "invalid_choice": _("Payment method: choose one of your saved cards."),
        },
    )


class AddFundsForm(AccessibleForm):
    amount = WholeAmountField(
        label=_("Amount"),
        help_text=_("A whole number between 50 and 100,000 in your billing currency."),
        error_messages={"required": _("Amount: enter how much to add.")},
    )
    po_number = PoNumberField()
    # Generated once per form: confirming the same order twice buys once.
    request_key = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["payment_method"] = _card_field(organization, _("Payment method"))
        if not self.is_bound:
            self.initial.setdefault("request_key", uuid.uuid4().hex)

    def clean_request_key(self):
        return self.cleaned_data.get("request_key") or uuid.uuid4().hex


class AutoRechargeForm(AccessibleForm):
    enabled = forms.BooleanField(label=_("Turn on auto-recharge"), required=False)
    mode = forms.ChoiceField(
        label=_("How much to recharge"), choices=AutoRechargeMode.choices, required=False,
        widget=forms.RadioSelect, initial=AutoRechargeMode.ADD_AMOUNT,
    )
    amount = WholeAmountField(
        label=_("Add this amount"), required=False,
        help_text=_("Whole number, at least 50. A recharge adds whole multiples of it, "
                    "enough to bring the balance back above the trigger."),
    )
    target = WholeAmountField(
        label=_("Recharge to this balance"), required=False,
        help_text=_("Whole number, at least 50 above the trigger. A recharge adds what "
                    "brings the balance back to it, in one charge."),
    )
    trigger = TriggerField(
        label=_("When balance is below"), required=False,
        help_text=_("Whole number, at least 50, at most 20 times the amount added."),
    )
    daily_cap = WholeAmountField(
        label=_("Daily cap"), required=False,
        help_text=_("Optional. Automatic recharges of one day (UTC) add up to at most this. "
                    "Empty: ten times one recharge, at least 1,000."),
    )
    po_number = PoNumberField()
    # The amount the confirmation step showed (0: none): the save refuses another one.
    confirm_charge = forms.DecimalField(widget=forms.HiddenInput, required=False,
                                        max_digits=14, decimal_places=2)

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        field = _card_field(organization, _("Payment method"))
        field.required = False
        self.fields["payment_method"] = field

    def clean(self):
        data = super().clean()
        data["mode"] = data.get("mode") or AutoRechargeMode.ADD_AMOUNT
        if data.get("enabled"):
            needed = ("amount" if data["mode"] == AutoRechargeMode.ADD_AMOUNT else "target")
            if needed == "amount" and not data.get("amount") and "amount" not in self.errors:
                self.add_error("amount", _("Add this amount: enter a whole number of at "
                                           "least 50 to turn auto-recharge on."))
            if needed == "target" and not data.get("target") and "target" not in self.errors:
                self.add_error("target", _("Recharge to this balance: enter a whole number "
                                           "at least 50 above the trigger to turn "
                                           "auto-recharge on."))
            if not data.get("trigger") and "trigger" not in self.errors:
                self.add_error("trigger", _("When balance is below: enter a whole number of "
                                            "at least 50 to turn auto-recharge on."))
            if not data.get("payment_method") and "payment_method" not in self.errors:
                self.add_error("payment_method", _("Payment method: choose the card that "
                                                   "pays for recharges."))
            for error in recharge_settings_errors(
                    mode=data["mode"], trigger=data.get("trigger"), amount=data.get("amount"),
                    target=data.get("target"), daily_cap=data.get("daily_cap")):
                if error.field not in self.errors:
                    self.add_error(error.field, error.message)
        return data

    def recharge_settings(self) -> RechargeSettings:
        """The settings a valid, enabled form would save."""
        data = self.cleaned_data
        return RechargeSettings(mode=data["mode"], trigger=data["trigger"],
                                amount=data.get("amount"), target=data.get("target"),
                                daily_cap=data.get("daily_cap"))


class PaymentMethodForm(AccessibleForm):
    number = forms.CharField(
        label=_("Card number"), max_length=23,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "cc-number"}),
        error_messages={"required": _("Card number: enter the number on the card.")},
    )
    exp_month = forms.TypedChoiceField(
        label=_("Expiry month"), coerce=int,
        choices=[(m, f"{m:02d}") for m in range(1, 13)],
        error_messages={"required": _("Expiry month: choose the month.")},
    )
    exp_year = forms.TypedChoiceField(
        label=_("Expiry year"), coerce=int, choices=[],
        error_messages={"required": _("Expiry year: choose the year."),
                        "invalid_choice": _("Expiry year: choose a year from the list; a "
                                            "card of a past year has expired.")},
    )
    cvc = forms.CharField(
        label=_("Security code (CVC)"), max_length=4, min_length=3,
        widget=forms.PasswordInput(attrs={"inputmode": "numeric", "autocomplete": "cc-csc"}),
        error_messages={"required": _("Security code (CVC): enter the 3 or 4 digits."),
                        "min_length": _("Security code (CVC): enter the 3 or 4 digits.")},
    )
    holder_name = forms.CharField(label=_("Name on card"), max_length=128, required=False,
                                  widget=forms.TextInput(attrs={"autocomplete": "cc-name"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        today = timezone.now()
        # From this year on (a card of a past year has expired); the month is then checked
        # in clean(). The preset date is never in the past.
        self.fields["exp_year"].choices = [(y, str(y))
                                           for y in range(today.year, today.year + 16)]
        self.fields["exp_month"].initial = today.month
        self.fields["exp_year"].initial = today.year + 1

    def clean_number(self):
        number = "".join(ch for ch in self.cleaned_data["number"] if not ch.isspace()
                         and ch != "-")
        if not luhn_ok(number):
            raise forms.ValidationError(
                _("Card number: this is not a valid card number; check the digits."),
                code="luhn")
        return number

    def clean_cvc(self):
        cvc = self.cleaned_data["cvc"].strip()
        if not (cvc.isascii() and cvc.isdigit()):
            raise forms.ValidationError(_("Security code (CVC): enter the 3 or 4 digits."))
        return cvc

    def clean(self):
        data = super().clean()
        month, year = data.get("exp_month"), data.get("exp_year")
        if month and year and card_expired(month, year):
            self.add_error("exp_month", _("Expiry month: this card has expired."))
        return data


class SupportRequestForm(AccessibleForm):
    message = forms.CharField(
        label=_("What do you need?"), widget=forms.Textarea(attrs={"rows": 4}),
        max_length=2000,
        error_messages={"required": _("What do you need?: describe your request.")},
    )
