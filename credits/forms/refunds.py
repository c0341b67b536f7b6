"""The refund form of an invoice page: an amount (the unspent remainder unless changed) and
a reason, with the form's own key so that confirming twice refunds once."""

import uuid

from django import forms
from django.utils.translation import gettext_lazy as _

from ..models.refunds import REFUND_REASON_MAX_LENGTH
from ..platform.services import ServiceError
from ..services.refunds import parse_refund_amount
from .billing import AccessibleForm


class RefundForm(AccessibleForm):
    amount = forms.CharField(
        label=_("Amount to refund"),
        help_text=_("In your billing currency, up to 2 decimal places. At most what of this "
                    "purchase is not spent yet."),
        error_messages={"required": _("Amount to refund: enter how much to give back.")},
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off",
                                      "maxlength": "16"}),
    )
    reason = forms.CharField(
        label=_("Reason"),
        help_text=_("Printed on the credit note and shown in Transactions and the audit log."),
        error_messages={"required": _("Reason: say why the purchase is refunded.")},
        widget=forms.TextInput(attrs={"maxlength": str(REFUND_REASON_MAX_LENGTH)}),
    )
    request_key = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)

    def __init__(self, *args, refundable=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.refundable = refundable
        if not self.is_bound:
            if refundable is not None:
                self.initial.setdefault("amount", f"{refundable:.2f}")
            self.initial.setdefault("request_key", uuid.uuid4().hex)

    def clean_amount(self):
        label = self.fields["amount"].label
        try:
            amount = parse_refund_amount(self.cleaned_data["amount"], label=label)
        except ServiceError as error:
            raise forms.ValidationError(error.message, code=error.code) from error
        return amount

    def clean_reason(self):
        reason = " ".join(self.cleaned_data["reason"].split())
        if len(reason) > REFUND_REASON_MAX_LENGTH:
            raise forms.ValidationError(_("Reason must be at most %(max)s characters.")
                                        % {"max": REFUND_REASON_MAX_LENGTH})
        return reason

    def clean_request_key(self):
        return self.cleaned_data.get("request_key") or uuid.uuid4().hex
