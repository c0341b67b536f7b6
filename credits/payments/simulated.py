"""The simulated payment gateway, with Stripe's test-card semantics
(shared/domain/test-cards.csv). Its tables (`SimulatedGatewayCard`, its card vault, and
`SimulatedGatewayCharge`, its memory of idempotency keys) are the gateway's side, not ours;
it commits them on its own, like a real provider.

Test cards: 4242 4242 4242 4242 succeeds; ...0341 attaches, then every charge is declined
(card_declined); ...0002 is declined when attached (card_declined); ...9995 attaches and its
charges fail for insufficient funds; ...0069 is an expired card; ...0119 attaches and its
charges fail with a transient processing_error; ...0127 has an incorrect CVC; 4242...4241
fails the Luhn check (incorrect_number); ...6975 attaches, and its charges succeed, but
the answer is late: for PENDING_FOR (2 minutes) after the gateway first saw a key, `charge`
and `charge_status` under that key time out (`GatewayTimeout`); after that the status says
succeeded, and a charge under the same key returns that success without charging again. The
card is charged once, when the key is first seen. Any other number passing the Luhn check
behaves like 4242. A saved card whose expiry has passed is declined as expired_card.

A charge row's status: "pending" (a ...6975 charge not confirmed yet), "processing_error"
(transient: the same key tries again), or the final "succeeded" / "failed". Time is read
with `django.utils.timezone.now()`, so tests can move the clock.

Fault injection (tests only, off by default): the setting SIMULATED_GATEWAY_FAULTS, e.g.
"seed=7,timeout=0.15,error=0.15,decline=0.15", makes each `charge` call time out
(`GatewayTimeout`; half of them after the charge was made, as when the answer is lost on
the way back), fail with a transient processing_error, or be declined, with those
probabilities. The outcome of each try of a key follows from the seed. `charge_status`
(the lookup of what a key did, without charging) is never faulted, nor is a ...6975 card,
which times out on its own. Refunds are never faulted either.

Refunds (`SimulatedGatewayRefund`, its memory of refund keys) follow Stripe's rules: only a
succeeded charge, found by its reference, can be refunded, in its currency, partly or
fully, several times, but never more than was charged in all (`amount_too_large`); a retry
under the same key returns the first result. Refunds of one charge are serialized by a lock
of the charge's row. Test cards: ...5126 charges succeed, and every refund of them fails
(refund_failed: nothing is given back); ...7726 charges succeed, and each refund's first
try times out after the refund was made (the answer is lost on the way back), so the retry
under the same key returns the success, without refunding again. Refunds of any other
card's succeeded charges succeed.
"""

import random
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import SimulatedGatewayCard, SimulatedGatewayCharge, SimulatedGatewayRefund
from .base import TRANSIENT_CODES, CardResult, ChargeResult, GatewayTimeout, RefundResult
from .cards import card_brand, card_expired, luhn_ok

# number -> (what happens on attach, what happens on charge)
TEST_CARDS = {
    "4000000000000341": ("ok", "card_declined"),
    "4000000000000002": ("card_declined", None),
    "4000000000009995": ("ok", "insufficient_funds"),
    "4000000000000069": ("expired_card", None),
    "4000000000000119": ("ok", "processing_error"),
    "4000000000000127": ("incorrect_cvc", None),
    "4000000000006975": ("ok", "pending_2min"),
}
# number -> what a refund of its charges does (other cards: the refund succeeds)
REFUND_CARDS = {
    "4000000000005126": "refund_failed",
    "4000000000007726": "refund_timeout_once",
}
REFUND_FAILS = "refund_failed"
REFUND_TIMES_OUT_ONCE = "refund_timeout_once"
# The ...6975 card: how long its charges stay unconfirmed, counted from the key's first charge.
PENDING_BEHAVIOUR = "pending_2min"
PENDING_FOR = timedelta(minutes=2)


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
            refund_behaviour=REFUND_CARDS.get(number, ""),
        )
        return CardResult(True, token=token, brand=card_brand(number), last4=number[-4:],
                          exp_month=exp_month, exp_year=exp_year)

    def charge(
        self, *, token: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> ChargeResult:
        """Charge once per idempotency key. Run it outside the caller's transaction so that
        the gateway's memory survives the caller's crash, as a real provider's does."""
        if SimulatedGatewayCard.objects.filter(token=token, behaviour=PENDING_BEHAVIOUR).exists():
            return self._charge_late(token=token, amount=amount, currency=currency,
                                     idempotency_key=idempotency_key)
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

    def _charge_late(self, *, token, amount, currency, idempotency_key) -> ChargeResult:
        """The ...6975 card: charged when the key is first seen, but the answer is late (a
        time-out) until PENDING_FOR after that; then the stored success is returned."""
        with transaction.atomic():
            row = self._locked_row(SimulatedGatewayCharge, idempotency_key, token, amount,
                                   currency)
            first = row.status == "new"
            if first:
                row.tries += 1
                row.status = "pending"
            self._confirm_if_due(row)
            row.save(update_fields=["status", "tries", "updated_at"])
        if row.status == "pending":  # raised after the commit: the charge is remembered
            raise GatewayTimeout(idempotency_key)
        return self._result(row, replayed=not first)

    def charge_status(self, *, idempotency_key: str) -> ChargeResult | None:
        """What the gateway did under this key, without charging: the stored result, or
        None when it never saw the key. A ...6975 charge times out here too until it is
        confirmed."""
        row = SimulatedGatewayCharge.objects.filter(idempotency_key=idempotency_key).first()
        if row is not None and row.status == "pending":
            with transaction.atomic():
                row = SimulatedGatewayCharge.objects.select_for_update(
                    of=("self",), no_key=True).get(pk=row.pk)
                if self._confirm_if_due(row):
                    row.save(update_fields=["status", "updated_at"])
            if row.status == "pending":
                raise GatewayTimeout(idempotency_key)
        return None if row is None else self._result(row, replayed=True)

    def refund(
        self, *, charge_reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> RefundResult:
        """Refund part or all of a succeeded charge, once per idempotency key. Run it
        outside the caller's transaction, as `charge`."""
        amount = Decimal(amount)
        timed_out = False
        with transaction.atomic():
            charge = (SimulatedGatewayCharge.objects.select_for_update(of=("self",), no_key=True)
                      .filter(reference=charge_reference).first())
            # Read under the charge's lock: a concurrent try of the same key has committed.
            row = SimulatedGatewayRefund.objects.select_for_update(of=("self",)).filter(
                idempotency_key=idempotency_key).first()
            if row is not None:
                row.tries += 1
                row.save(update_fields=["tries"])
                if row.amount != amount or row.charge.reference != charge_reference:
                    return RefundResult(False, amount=amount, currency=currency,
                                        error_code="idempotency_key_reused")
                return self._refund_result(row, replayed=True)
            if charge is None:
                return RefundResult(False, amount=amount, currency=currency,
                                    error_code="charge_not_found")
            card = SimulatedGatewayCard.objects.filter(token=charge.token).first()
            behaviour = card.refund_behaviour if card is not None else ""
            refunded = sum((r.amount for r in charge.refunds.filter(status="succeeded")),
                           Decimal(0))
            code = ""
            if charge.status != "succeeded":
                code = "charge_not_refundable"
            elif currency.upper() != charge.currency.upper():
                code = "currency_mismatch"
            elif amount <= 0 or refunded + amount > charge.amount:
                code = "amount_too_large"
            elif behaviour == REFUND_FAILS:
                code = "refund_failed"
            row = SimulatedGatewayRefund.objects.create(
                idempotency_key=idempotency_key, charge=charge, amount=amount,
                currency=charge.currency, status="failed" if code else "succeeded",
                error_code=code, reference="re_sim_" + secrets.token_hex(10), tries=1,
                created_at=timezone.now(),
            )
            timed_out = behaviour == REFUND_TIMES_OUT_ONCE and not code
        if timed_out:  # committed: refunded, but the answer is lost on the way back
            raise GatewayTimeout(idempotency_key)
        return self._refund_result(row, replayed=False)

    @staticmethod
    def _refund_result(row, *, replayed: bool) -> RefundResult:
        return RefundResult(is_success=row.status == "succeeded", amount=row.amount,
                            currency=row.currency, reference=row.reference,
                            error_code=row.error_code, replayed=replayed)

    @staticmethod
    def _confirm_if_due(row) -> bool:
        """A pending charge becomes a success PENDING_FOR after the key was first seen."""
        if row.status == "pending" and timezone.now() >= row.created_at + PENDING_FOR:
            row.status = "succeeded"
            return True
        return False

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
                    created_at=timezone.now(),
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
