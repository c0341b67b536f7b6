"""The payment gateway interface: what the ledger calls (`PaymentGateway`), the frozen
results it gets back, and the configured gateway (`PAYMENT_GATEWAY`, a dotted path).

- `tokenize_card` turns a card number, expiry and CVC into a token (plus brand, last 4 and
  expiry). The number and CVC go no further than this call.
- `charge` takes a token, an amount and an idempotency key. A retry with the same key
  returns the first final result without charging again, even after the caller's process
  died. A transient `processing_error` is not final: a retry with the same key tries again.
- `charge_status` says what the gateway did under a key, without charging (None when it
  never saw the key).
- `refund` gives back part or all of a succeeded charge (named by its reference), as
  Stripe's refunds do: several partial refunds may follow one another, but together never
  more than was charged (`amount_too_large`), in the charge's currency. A retry with the
  same idempotency key returns the first result without refunding again. A refund can fail
  (`refund_failed`): nothing was given back.
A gateway that does not answer in time raises `GatewayTimeout`: the charge (or refund) may
or may not have been made, and only a retry under the same key tells.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from .reasons import reason_for

TRANSIENT_CODES = frozenset({"processing_error"})


class GatewayTimeout(Exception):
    """The gateway did not answer in time: the charge may or may not have been made."""


@dataclass(frozen=True)
class CardResult:
    is_success: bool
    token: str = ""
    brand: str = ""
    last4: str = ""
    exp_month: int = 0
    exp_year: int = 0
    error_code: str = ""

    @property
    def message(self) -> str:
        return reason_for(self.error_code) if self.error_code else ""


@dataclass(frozen=True)
class ChargeResult:
    is_success: bool
    amount: Decimal
    currency: str
    reference: str = ""
    error_code: str = ""
    # True when the same idempotency key may be tried again (processing_error).
    is_transient: bool = False
    # True when this key had been charged before and the stored result was returned.
    replayed: bool = False

    @property
    def message(self) -> str:
        return reason_for(self.error_code) if self.error_code else ""


@dataclass(frozen=True)
class RefundResult:
    is_success: bool
    amount: Decimal
    currency: str
    reference: str = ""
    error_code: str = ""
    # True when this key had been used before and the stored result was returned.
    replayed: bool = False

    @property
    def message(self) -> str:
        return reason_for(self.error_code) if self.error_code else ""


class PaymentGateway(Protocol):
    name: str

    def tokenize_card(self, *, number: str, exp_month: int, exp_year: int,
                      cvc: str) -> CardResult: ...

    def charge(self, *, token: str, amount: Decimal, currency: str,
               idempotency_key: str) -> ChargeResult: ...

    def charge_status(self, *, idempotency_key: str) -> ChargeResult | None: ...

    def refund(self, *, charge_reference: str, amount: Decimal, currency: str,
               idempotency_key: str) -> RefundResult: ...


def get_gateway() -> PaymentGateway:
    """The gateway named by the PAYMENT_GATEWAY setting."""
    return import_string(settings.PAYMENT_GATEWAY)()
