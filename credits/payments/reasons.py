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
    # A pending payment the provider never confirmed (recharges.UNCONFIRMED_AFTER).
    "unconfirmed": DeclineReason(
        _("The payment provider never confirmed the payment, so nothing was added to the "
          "balance. If your card was charged, contact support to have it refunded."),
        _("the payment provider never confirmed it")),
    # Refunds (services.refunds): the gateway gave nothing back.
    "refund_failed": DeclineReason(
        _("The payment provider could not give the money back to the card, so the balance "
          "did not change."),
        _("the payment provider could not give the money back to the card")),
    "amount_too_large": DeclineReason(
        _("The payment provider refused: the refunds of this payment would exceed what was "
          "charged."),
        _("the refunds would exceed what was charged")),
    "charge_not_refundable": DeclineReason(
        _("The payment provider has no completed payment to refund for this invoice."),
        _("the payment provider has no completed payment to refund")),
    "charge_not_found": DeclineReason(
        _("The payment provider has no completed payment to refund for this invoice."),
        _("the payment provider has no completed payment to refund")),
    "refund_unconfirmed": DeclineReason(
        _("The payment provider never confirmed the refund, so the balance did not change. "
          "Contact support to find out whether the card was refunded."),
        _("the payment provider never confirmed it")),
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
