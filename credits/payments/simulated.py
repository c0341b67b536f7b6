"""The simulated payment gateway, with Stripe's test-card semantics
(shared/domain/test-cards.csv). Its tables (`SimulatedGatewayCard`, its card vault, and
`SimulatedGatewayCharge`, its memory of idempotency keys) are the gateway's side, not ours;
it commits them on its own, like a real provider.

Test cards: 4242 4242 4242 4242 succeeds; ...0341 attaches, then every charge is declined
(card_declined); ...0002 is declined when attached (card_declined); ...9995 attaches and its
charges fail for insufficient funds; ...0069 is an expired card; ...0119 attaches and its
charges fail with a transient processing_error; ...0127 has an incorrect CVC; 4242...4241
fails the Luhn check (incorrect_number). Any other number passing the Luhn check behaves
like 4242. A saved card whose expiry has passed is declined as expired_card.

Fault injection (tests only, off by default): the setting SIMULATED_GATEWAY_FAULTS, e.g.
"seed=7,timeout=0.15,error=0.15,decline=0.15", makes each `charge` call time out
(`GatewayTimeout`; half of them after the charge was made, as when the answer is lost on
the way back), fail with a transient processing_error, or be declined, with those
probabilities. The outcome of each try of a key follows from the seed. `charge_status`
(the lookup of what a key did, without charging) is never faulted.
"""

import random
import secrets
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction

from ..models import SimulatedGatewayCard, SimulatedGatewayCharge
from .base import TRANSIENT_CODES, CardResult, ChargeResult, GatewayTimeout
from .cards import card_brand, card_expired, luhn_ok

# number -> (what happens on attach, what happens on charge)
TEST_CARDS = {
    "4000000000000341": ("ok", "card_declined"),
    "4000000000000002": ("card_declined", None),
    "4000000000009995": ("ok", "insufficient_funds"),
    "4000000000000069": ("expired_card", None),
    "4000000000000119": ("ok", "processing_error"),
    "4000000000000127": ("incorrect_cvc", None),
}


@dataclass(frozen=True)
class Faults:
    seed: int = 0
    timeout: float = 0.0
    error: float = 0.0
    decline: float = 0.0

    @classmethod
    def configured(cls) -> "Faults | None":
        text = getattr(settings, "SIMULATED_GATEWAY_FAULTS", "")
        if not text:
            return None
        values = dict(part.split("=", 1) for part in text.replace(" ", "").split(",") if part)
        return cls(seed=int(values.get("seed", 0)), timeout=float(values.get("timeout", 0)),
                   error=float(values.get("error", 0)), decline=float(values.get("decline", 0)))

    def draw(self, key: str, try_number: int, replayed: bool) -> tuple[str, bool]:
        """(what happens: "" | "timeout" | "error" | "decline", timeout after charging)."""
        rng = random.Random(f"{self.seed}:{key}:{try_number}:{replayed}")
        roll, after = rng.random(), rng.random() < 0.5
        if roll < self.timeout:
            return "timeout", after
        if replayed:
            return "", False  # a stored result is only ever lost on the way back
        roll -= self.timeout
        if roll < self.error:
            return "error", False
        roll -= self.error
        if roll < self.decline:
            return "decline", False
        return "", False


class SimulatedGateway:
    name = "simulated"

    def tokenize_card(
        self, *, number: str, exp_month: int, exp_year: int, cvc: str
    ) -> CardResult:
        number = "".join(ch for ch in number if ch in "0123456789")
        if not luhn_ok(number):
            return CardResult(False, error_code="incorrect_number")
        if card_expired(exp_month, exp_year):
            return CardResult(False, error_code="expired_card")
        if not (cvc.isascii() and cvc.isdigit() and len(cvc) in (3, 4)):
            return CardResult(False, error_code="incorrect_cvc")
        on_attach, on_charge = TEST_CARDS.get(number, ("ok", None))
        if on_attach != "ok":
            return CardResult(False, error_code=on_attach)
        token = "tok_sim_" + secrets.token_hex(12)
        SimulatedGatewayCard.objects.create(
            token=token,
            behaviour=on_charge or "succeeds",
            brand=card_brand(number),
            last4=number[-4:],
            exp_month=exp_month,
            exp_year=exp_year,
        )
        return CardResult(True, token=token, brand=card_brand(number), last4=number[-4:],
                          exp_month=exp_month, exp_year=exp_year)

    def charge(
        self, *, token: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> ChargeResult:
        """Charge once per idempotency key. Run it outside the caller's transaction so that
        the gateway's memory survives the caller's crash, as a real provider's does."""
        faults = Faults.configured()
        fault, after = "", False
        with transaction.atomic():
            row = self._locked_row(SimulatedGatewayCharge, idempotency_key, token, amount,
                                   currency)
            if row.status in ("succeeded", "failed"):
                if faults is not None:
                    fault, _after = faults.draw(idempotency_key, row.tries, True)
                    if fault == "timeout":
                        raise GatewayTimeout(idempotency_key)
                return self._result(row, replayed=True)
            card = SimulatedGatewayCard.objects.select_for_update(of=("self",), no_key=True).filter(
                token=token).first()
            row.tries += 1
            if faults is not None:
                fault, after = faults.draw(idempotency_key, row.tries, False)
                if fault == "timeout" and not after:
                    raise GatewayTimeout(idempotency_key)  # rolled back: nothing happened
            code = self._outcome(card)
            if fault == "error":
                code = "processing_error"
            elif fault == "decline" and not code:
                code = random.Random(f"{faults.seed}:{idempotency_key}").choice(
                    ["card_declined", "insufficient_funds", "generic_decline"])
            if code in TRANSIENT_CODES and card is not None:
                if card.transient_errors_left is not None:
                    if card.transient_errors_left > 0:
                        card.transient_errors_left -= 1
                        card.save(update_fields=["transient_errors_left"])
                    else:
                        code = ""
            row.status = "processing_error" if code in TRANSIENT_CODES else (
                "failed" if code else "succeeded")
            row.error_code = code
            row.save(update_fields=["status", "error_code", "tries", "updated_at"])
        if fault == "timeout":  # committed: charged (or declined), but the answer is lost
            raise GatewayTimeout(idempotency_key)
        return self._result(row, replayed=False)

    def charge_status(self, *, idempotency_key: str) -> ChargeResult | None:
        """What the gateway did under this key, without charging: the stored result, or
        None when it never saw the key."""
        row = SimulatedGatewayCharge.objects.filter(idempotency_key=idempotency_key).first()
        return None if row is None else self._result(row, replayed=True)

    @staticmethod
    def _locked_row(model, key, token, amount, currency):
        row = model.objects.select_for_update(of=("self",), no_key=True).filter(
            idempotency_key=key).first()
        if row is not None:
            return row
        try:
            with transaction.atomic():
                return model.objects.create(
                    idempotency_key=key, token=token, amount=amount, currency=currency,
                    status="new", reference="ch_sim_" + secrets.token_hex(10),
                )
        except IntegrityError:  # the same key arrived concurrently: wait for its lock
            return model.objects.select_for_update(of=("self",), no_key=True).get(
                idempotency_key=key)

    @staticmethod
    def _outcome(card) -> str:
        if card is None:
            return "card_declined"
        if card_expired(card.exp_month, card.exp_year):
            return "expired_card"
        if card.behaviour == "succeeds":
            return ""
        return card.behaviour

    @staticmethod
    def _result(row, *, replayed: bool) -> ChargeResult:
        return ChargeResult(
            is_success=row.status == "succeeded",
            amount=row.amount,
            currency=row.currency,
            reference=row.reference,
            error_code=row.error_code,
            is_transient=row.status == "processing_error",
            replayed=replayed,
        )
