"""Why a payment was refused: one table, reason code -> translated words.

Each code has a sentence (pages, the attempt's stored reason, recharge_failed events) and
a clause that fits "... was declined: <clause>." (e-mails and message-center summaries).
"""

from typing import NamedTuple

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from ..models import RechargeKind


class DeclineReason(NamedTuple):
    sentence: Promise
    clause: Promise


DECLINE_REASONS: dict[str, DeclineReason] = {
    "card_declined": DeclineReason(_("The bank declined the card."),
                                   _("the card was declined by its bank")),
    "generic_decline": DeclineReason(_("The bank declined the card."),
                                     _("the card was declined by its bank")),
    "insufficient_funds": DeclineReason(_("The card has insufficient funds."),
                                        _("the card has insufficient funds")),
    "expired_card": DeclineReason(_("The card has expired."), _("the card has expired")),
    "incorrect_cvc": DeclineReason(_("The card's security code (CVC) is incorrect."),
                                   _("the card's security code is incorrect")),
    "incorrect_number": DeclineReason(_("The card number is incorrect."),
                                      _("the card number is incorrect")),
    "processing_error": DeclineReason(
        _("The payment provider could not process the card; it will be tried again."),
        _("the payment could not be processed")),
    # The gateway's answer did not match the attempt (amount or currency): never credited.
    "amount_mismatch": DeclineReason(
        _("The payment provider confirmed a different amount than was ordered, so nothing "
          "was added."),
        _("the payment provider confirmed a different amount")),
    "currency_mismatch": DeclineReason(
        _("The payment provider confirmed a different currency than was ordered, so "
          "nothing was added."),
        _("the payment provider confirmed a different currency")),
}
UNKNOWN_REASON = DeclineReason(_("The payment was not accepted."),
                               _("the payment was declined"))


def reason_for(code: str) -> str:
    """The sentence for a reason code, in the active language."""
    return str(DECLINE_REASONS.get(code or "", UNKNOWN_REASON).sentence)


def reason_clause(code: str) -> str:
    """The clause for a reason code, in the active language."""
    return str(DECLINE_REASONS.get(code or "", UNKNOWN_REASON).clause)


def recharge_failure_reason(*, kind: str, code: str) -> str:
    """Why a charge failed, in the active language. After a provider error an automatic
    recharge is tried again after its back-off; a purchase is not (the person who placed
    the order decides), so its words say what to do instead."""
    if kind == RechargeKind.PURCHASE and code == "processing_error":
        return str(_("The payment provider could not process the card, and nothing was "
                     "charged. Try again later or use another card."))
    return reason_for(code)
