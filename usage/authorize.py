"""May this call start? (POST /api/v1/calls/authorize, DESIGN.md sections 4 and 8.)

A read: nothing is reserved or written. The same rules as rating (usage.rating.assess)
decide what would pay; the zero-balance rule refuses a call that needs credits when the
user lacks the Communications Credits license or the balance cannot pay the first block
(connection fee + first increment).

The monthly spend limits (credits.spend_limits) work the same way: a call that credits
would pay is refused once the month's settled spend reached the organization's limit
(`spend_limit_reached`) or the person's (`person_limit_reached`), and otherwise lasts at
most what the smallest of the balance and what is left under each limit pays for at the
call's rate. A pool's minutes are not spend: a call a pool pays still passes.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from credits import products
from credits.models import Organization
from credits.money import ZERO
from credits.selectors.licenses import pool_facts, pool_left
from credits.services.licenses import pool_key_for
from credits.spend_limits import left_of

from . import rating
from .models import ApiToken
from .selectors import CallFacts, authorize_read

# Refusal codes.
UNKNOWN_USER = "unknown_user"
INVALID_NUMBER = "invalid_number"
UNKNOWN_CALL_TYPE = "unknown_call_type"
NO_RATE = "no_rate"
NO_CREDITS_LICENSE = "no_credits_license"
INSUFFICIENT_BALANCE = "insufficient_balance"
SPEND_LIMIT_REACHED = "spend_limit_reached"
PERSON_LIMIT_REACHED = "person_limit_reached"
REASONS = {
    UNKNOWN_USER: "no person with this user principal name in the organization",
    INVALID_NUMBER: "the callee number is not a valid E.164 phone number",
    UNKNOWN_CALL_TYPE: "the call type is not one of domain/call-types.csv",
    NO_RATE: "the rate deck has no rate for this destination",
    NO_CREDITS_LICENSE: "the call needs credits and the user (or the meeting organizer) has "
                        "no Communications Credits license",
    INSUFFICIENT_BALANCE: "the call needs credits and the balance cannot pay its first block",
    SPEND_LIMIT_REACHED: "the call needs credits and the organization's monthly spend limit "
                         "is reached (or what is left of it cannot pay the first block)",
    PERSON_LIMIT_REACHED: "the call needs credits and the user's monthly credits limit is "
                          "reached (or what is left of it cannot pay the first block)",
}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str | None
    charged_to: str | None
    max_duration_seconds: int | None

    def as_json(self) -> dict:
        return {"allowed": self.allowed, "reason": self.reason, "chargedTo": self.charged_to,
                "maxDurationSeconds": self.max_duration_seconds}


def _refuse(reason: str, charged_to: str | None = None) -> Decision:
    return Decision(False, reason, charged_to, None)


def _credit_budget(facts) -> tuple[str | None, Decimal, str]:
    """(refusal, what credits may spend on this call, the refusal when that budget cannot
    pay the first block): the balance, or less when a monthly limit leaves less."""
    if facts.balance <= 0:
        return INSUFFICIENT_BALANCE, ZERO, INSUFFICIENT_BALANCE
    budget, binding = facts.balance, INSUFFICIENT_BALANCE
    for limit, spent, reason in ((facts.org_limit, facts.org_spent, SPEND_LIMIT_REACHED),
                                 (facts.person_limit, facts.person_spent,
                                  PERSON_LIMIT_REACHED)):
        left = left_of(limit, spent)
        if left is None:
            continue
        if left <= 0:
            return reason, ZERO, reason
        if left < budget:
            budget, binding = left, reason
    return None, budget, binding


def _credit_seconds(facts, a: rating.Assessment, skus) -> tuple[str | None, int | None]:
    """(refusal, max billable seconds) for the part of a call that credits pay."""
    if products.CREDITS not in skus:
        return NO_CREDITS_LICENSE, None
    refusal, budget, binding = _credit_budget(facts)
    if refusal:
        return refusal, None
    rate = a.rate
    # Never longer than one call may be charged: past that the call would be stored
    # unrated, and so never charged (rating.MAX_CHARGE_PER_CALL).
    seconds = rating.max_billable_seconds(
        min(int(budget.scaleb(2)), rating.MAX_CHARGE_CENTS), a.rate_units, a.fee_units,
        rate.first_increment_s, rate.next_increment_s,
    )
    if seconds == 0:
        return binding, None
    return None, seconds


def _within_charge_limit(a: rating.Assessment, seconds: int | None) -> int | None:
    """`seconds`, or less when a call that long would cost more than one call may be
    charged (rating decides that over the whole call, the pool's minutes included)."""
    rate = a.rate
    if rate is None:
        return seconds
    longest = rating.longest_chargeable_seconds(a.rate_units, a.fee_units,
                                                rate.first_increment_s, rate.next_increment_s)
    if longest is None:
        return seconds
    return longest if seconds is None else min(seconds, longest)


def _call_facts_args(callee: str, call_type: str) -> tuple[str, str | None, dict]:
    """(the callee's digits, the problem with the number, the arguments of the facts read
    for this call)."""
    digits, problem = rating.normalize_number(callee)
    direction = rating.OUTBOUND if call_type in rating.OUTBOUND_TYPES \
        else rating.INBOUND_TOLL_FREE
    return digits, problem, {"direction": direction, "digits": "" if problem else digits,
                             "pool_kinds": rating.pool_kinds_for(call_type)}


def call_authorize_by_token(*, raw_token: str, upn: str, callee: str, call_type: str,
                            now: datetime) -> tuple[ApiToken | None, Decision | None]:
    """(the active API token with this value, or None; may this call start in its
    organization): the token and every fact in one read (usage.selectors.authorize_read).
    (None, None) when no active token has this value."""
    digits, problem, args = _call_facts_args(callee, call_type)
    if call_type not in rating.CALL_TYPES:
        # Still authenticated first: a caller without a token learns nothing.
        args.update(digits="", pool_kinds=())
    token, facts = authorize_read(raw_token=raw_token, upn=upn, at=now, **args)
    if token is None:
        return None, None
    if call_type not in rating.CALL_TYPES:
        return token, _refuse(UNKNOWN_CALL_TYPE)
    return token, _decide(token.organization, facts, call_type, digits, problem, now)


def _decide(organization: Organization, facts: CallFacts | None, call_type: str,
            digits: str, problem: str | None, now: datetime) -> Decision:
    if facts is None:
        return _refuse(UNKNOWN_USER)
    if problem or not rating.is_valid_number(digits):
        return _refuse(INVALID_NUMBER)
    usage_location, skus, found = facts.usage_location, facts.skus, facts.rate
    deck = rating.RateDeck([found] if found else [], organization.currency)
    call = rating.Call(call_type, "", "+" + digits, now, 1,
                       usage_location or organization.country, skus)
    a = rating.assess(call, deck)
    if a.status == rating.UNRATED:
        return _refuse(NO_RATE if a.reason == "no_rate" else INVALID_NUMBER)
    if a.charged_to == rating.FREE:
        return Decision(True, None, rating.FREE, None)
    if a.pool_kind is not None:
        key = pool_key_for(kind=a.pool_kind, country=a.pool_country, at=now)
        left = facts.pool_minutes_left(key)
        if left is None:  # not expected (pool_kinds_for names every pool assess picks)
            used, seats = pool_facts(organization=organization, kinds=(key.kind,),
                                     country=key.country, at=now)
            left = pool_left(key=key, used=used, seats=seats)
        if left > 0:
            # The pool pays first; when it runs dry mid-call, credits pay the rest if they can.
            refusal, seconds = _credit_seconds(facts, a, skus)
            extra = 0 if refusal else seconds
            return Decision(True, None, a.charged_to, _within_charge_limit(
                a, None if extra is None else left * 60 + extra))
    refusal, seconds = _credit_seconds(facts, a, skus)
    if refusal:
        return _refuse(refusal, rating.CREDITS)
    return Decision(True, None, rating.CREDITS, seconds)
