"""The rating engine: who pays for one call, and how much (DESIGN.md section 7).

Pure: no database, no I/O, no clock. Callers hand it a call, the facts of the user's plan
and a `RateDeck`; it answers with a `Rating`. Ingestion, the API and the authorization
endpoint all go through it, so a worked example of domain/charging-rules.md gives the same
result everywhere.

Rating happens in two steps so that ingestion can take pool minutes for a whole batch at
once (one lock per pool, see `credits.services.licenses.pools_take_minutes`):

1. `assess(call, deck)` decides what would pay and, when a minute pool is involved, how
   many minutes the call wants from which pool;
2. `settle(assessment, call, pool_minutes_given)` turns that into the final rating: the
   pool gives what it has, and the rest of the call's seconds are billed to credits with
   the rate's increments.

`rate_call` does both for one call, given the minutes each pool has left.

Money: rates have up to 5 decimal places. The charge is computed in exact integer units
of 1/100000 of the currency and rounded half-up to cents once, at the end.

Bounds: a deck's rate and connection fee are at most `MAX_RATE_PER_MINUTE` and
`MAX_CONNECTION_FEE` (usage.decks refuses more), and one call is never charged more than
`MAX_CHARGE_PER_CALL`: a call that would cost more is left unrated (`charge_over_limit`)
for review instead of charged. Without them, a hundred batches of week-long calls at an
absurd rate overflowed the balance column (14 digits) instead of being noticed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

import phonenumbers

from credits.money import ZERO
from credits.products import AUDIO_CONFERENCING as SKU_CONFERENCING
from credits.products import AUDIO_CONFERENCING_PAY_PER_MINUTE as SKU_CONFERENCING_PPM
from credits.products import CONFERENCE as POOL_CONFERENCE
from credits.products import CREDITS as SKU_CREDITS
from credits.products import DOMESTIC as POOL_DOMESTIC
from credits.products import DOMESTIC_INTERNATIONAL_PLAN as SKU_DOMESTIC_INTERNATIONAL
from credits.products import DOMESTIC_POOL_PLANS, PRODUCTS, RESOURCE_ACCOUNT, TEAMS_PHONE, ZONE_A
from credits.products import INTERNATIONAL as POOL_INTERNATIONAL
from credits.products import PAYG_PLAN as SKU_PAYG

# --- vocabulary ---------------------------------------------------------------------------

OUTBOUND = "outbound"
INBOUND_TOLL_FREE = "inbound_toll_free"
DIRECTIONS = (OUTBOUND, INBOUND_TOLL_FREE)
NUMBER_TYPES = ("landline", "mobile", "toll_free", "premium", "any")

PLAN_POOL = "plan_pool"
CONFERENCE_POOL = "conference_pool"
CREDITS = "credits"
FREE = "free"
CHARGED_TO = (PLAN_POOL, CONFERENCE_POOL, CREDITS, FREE)

RATED = "rated"
UNRATED = "unrated"

# Sane bounds, in the account currency (see the module docstring). The most one call can
# be charged, MAX_CHARGE_PER_CALL, also bounds what a batch of 1000 calls moves the
# balance: 10^7, far from the 10^12 of the balance and ledger columns.
MAX_RATE_PER_MINUTE = Decimal("100.00")
MAX_CONNECTION_FEE = Decimal("100.00")
MAX_CHARGE_PER_CALL = Decimal("10000.00")
MAX_CHARGE_CENTS = int(MAX_CHARGE_PER_CALL.scaleb(2))

# Why a call could not be rated. Such calls are stored and shown for review, never dropped.
UNRATED_REASONS = {
    "unknown_call_type": "the call type is not one this system knows",
    "masked_number": "the priced number is masked",
    "ambiguous_masked_number": "the priced number is masked and its hidden digits could "
                               "change the matching rate",
    "missing_number": "the priced number is empty",
    "not_a_number": "the priced number is not a phone number",
    "no_rate": "no rate in the deck matches the number",
    "no_toll_free_rate": "the called toll-free number has no inbound toll-free rate",
    "charge_over_limit": f"the call would cost more than {MAX_CHARGE_PER_CALL}, the limit "
                         "for one call",
}

# domain/call-types.csv
OUTBOUND_USER_TYPES = frozenset(
    {"user_out", "user_out_conf", "user_out_transfer", "user_out_forwarding", "ucap_out"}
)
CONFERENCE_OUT = "conf_out"
INBOUND_TYPES = frozenset({"user_in", "conf_in", "ucap_in", "unassigned_in"})
FREE_INBOUND_TYPES = frozenset({"unassigned_in"})
# Every call type, in the file's order (the order lists show them in).
CALL_TYPE_ORDER = ("user_in", "user_out", "user_out_conf", "user_out_transfer",
                   "user_out_forwarding", "conf_in", "conf_out", "unassigned_in", "ucap_in",
                   "ucap_out")
CALL_TYPES = frozenset(CALL_TYPE_ORDER)
OUTBOUND_TYPES = OUTBOUND_USER_TYPES | {CONFERENCE_OUT}

# What the report shows as the license that paid (domain/products.csv).
CAPABILITY_CREDITS = PRODUCTS[SKU_CREDITS].capability
CAPABILITY_TEAMS_PHONE = PRODUCTS[TEAMS_PHONE].capability
CAPABILITY_RESOURCE_ACCOUNT = PRODUCTS[RESOURCE_ACCOUNT].capability
CAPABILITY_CONFERENCING_PPM = PRODUCTS[SKU_CONFERENCING_PPM].capability
_DOMESTIC_POOL_PLANS = frozenset(DOMESTIC_POOL_PLANS)

# US <-> Canada (and Puerto Rico, which shares the US plans' domestic minutes) is domestic.
NANP_DOMESTIC = frozenset({"US", "CA", "PR"})

_CENT_UNITS = 1000  # rate units (1/100000) per cent
_TWO_PLACES = Decimal("0.01")


def decimal_units(value: Decimal) -> int:
    """`value` in exact units of 1/100000; raises ValueError past 5 decimal places."""
    scaled = value.scaleb(5)
    if scaled != scaled.to_integral_value():
        raise ValueError("more than 5 decimal places")
    return int(scaled)


_CENTS: dict[int, Decimal] = {}


def cents_to_decimal(cents: int) -> Decimal:
    # Memoized: charges repeat the same few thousand cent values (Decimal is immutable).
    value = _CENTS.get(cents)
    if value is None:
        value = Decimal(cents).scaleb(-2).quantize(_TWO_PLACES)
        if len(_CENTS) < 100_000:
            _CENTS[cents] = value
    return value


# --- the rate deck ----------------------------------------------------------------------


class Rate(NamedTuple):
    """One row of a rate deck (domain/rate-deck-format.md)."""

    direction: str
    prefix: str
    destination: str
    country: str
    number_type: str
    rate_per_minute: Decimal
    connection_fee: Decimal
    first_increment_s: int
    next_increment_s: int
    currency: str
    effective_from: date

    @property
    def rate_units(self) -> int:
        return decimal_units(self.rate_per_minute)

    @property
    def fee_units(self) -> int:
        return decimal_units(self.connection_fee)


class _PricedRate(NamedTuple):
    rate: Rate
    rate_units: int
    fee_units: int
    effective_from: date  # the rate's, at hand for the lookup loop


class RateDeck:
    """Longest-prefix lookup per direction, with effective dates.

    For each direction, a dict from prefix to that prefix's rows, newest first; a lookup
    tries the number's prefixes from the longest down and takes the newest row of the
    first prefix that has one in effect on the call's date. A prefix whose rows all start
    in the future does not exist yet, so the next shorter prefix applies.
    """

    __slots__ = ("_by_direction", "_max_len", "_candidates", "_stems", "currency")

    def __init__(self, rates: Iterable[Rate], currency: str = ""):
        by_direction: dict[str, dict[str, list[_PricedRate]]] = {d: {} for d in DIRECTIONS}
        max_len = {d: 0 for d in DIRECTIONS}
        for rate in rates:
            table = by_direction.setdefault(rate.direction, {})
            table.setdefault(rate.prefix, []).append(
                _PricedRate(rate, rate.rate_units, rate.fee_units, rate.effective_from)
            )
            max_len[rate.direction] = max(max_len.get(rate.direction, 0), len(rate.prefix))
        for table in by_direction.values():
            for rows in table.values():
                rows.sort(key=lambda p: p.effective_from, reverse=True)
        self._by_direction = by_direction
        self._max_len = max_len
        # (direction, leading digits) -> the rows of every matching prefix, longest prefix
        # first, newest first: built once per number prefix, so a lookup is one dict read
        # and a short scan for the first row in effect. The deck never changes.
        self._candidates: dict[tuple[str, str], tuple[_PricedRate, ...]] = {}
        # direction -> {digits: the earliest date a longer prefix starting with them takes
        # effect}; built on the first masked number only (most decks never see one).
        self._stems: dict[str, dict[str, date]] = {}
        self.currency = currency

    def __len__(self) -> int:
        return sum(len(rows) for t in self._by_direction.values() for rows in t.values())

    def _lookup(self, direction: str, digits: str, on: date) -> _PricedRate | None:
        key = (direction, digits[:self._max_len.get(direction, 0)])
        candidates = self._candidates.get(key)
        if candidates is None:
            candidates = self._candidates_for(*key)
            if len(self._candidates) < 100_000:
                self._candidates[key] = candidates
        for priced in candidates:
            if priced.effective_from <= on:
                return priced
        return None

    def _candidates_for(self, direction: str, head: str) -> tuple[_PricedRate, ...]:
        table = self._by_direction.get(direction)
        if not table:
            return ()
        found: list[_PricedRate] = []
        for length in range(len(head), 0, -1):
            found.extend(table.get(head[:length], ()))
        return tuple(found)

    def lookup(self, direction: str, digits: str, on: date) -> Rate | None:
        priced = self._lookup(direction, digits, on)
        return priced.rate if priced else None

    def _extended(self, direction: str, visible: str, on: date) -> bool:
        """Whether a prefix longer than `visible` and starting with it is in effect on
        `on`: then the digits a mask hides could change which rate matches."""
        stems = self._stems.get(direction)
        if stems is None:
            stems = {}
            for prefix, rows in self._by_direction.get(direction, {}).items():
                first = min(p.effective_from for p in rows)
                for length in range(1, len(prefix)):
                    stem = prefix[:length]
                    if stem not in stems or first < stems[stem]:
                        stems[stem] = first
            self._stems[direction] = stems
        since = stems.get(visible)
        return since is not None and since <= on

    def _lookup_masked(self, direction: str, visible: str, on: date
                       ) -> tuple[_PricedRate | None, bool]:
        """(the rate of the longest prefix the visible digits determine, whether the masked
        digits could still change the match). A number masked after its `visible` digits
        matches a prefix for sure only when the prefix is no longer than them."""
        if self._extended(direction, visible, on):
            return None, True
        return self._lookup(direction, visible, on), False


# --- numbers ------------------------------------------------------------------------------

_NUMBER_JUNK = str.maketrans("", "", " -().\u00a0/")


def normalize_number(raw: str | None) -> tuple[str, str | None]:
    """E.164 digits without "+" and None, or "" and the reason it is no usable number.

    Cheap on purpose (the hot path of ingestion): no full parse, only what the deck needs.
    """
    if raw is None:
        return "", "missing_number"
    # The usual case first: "+" and 3 to 15 ASCII digits, the first not 0.
    if 4 <= len(raw) <= 16 and raw[0] == "+" and raw[1] != "0" and raw.isascii() \
            and raw[1:].isdigit():
        return raw[1:], None
    text = raw.strip().translate(_NUMBER_JUNK)
    if not text:
        return "", "missing_number"
    if "*" in text or "x" in text or "X" in text or "#" in text:
        return "", "masked_number"
    text = _international(text)
    if not text.isdigit() or not text.isascii() or len(text) < 3 or len(text) > 15:
        return "", "not_a_number"
    if text[0] == "0":  # no country calling code starts with 0
        return "", "not_a_number"
    return text, None


def _international(text: str) -> str:
    """`text` without its international prefix ("+" or "00")."""
    if text[:1] == "+":
        return text[1:]
    if text.startswith("00"):
        return text[2:]
    return text


_MASK_CHARACTERS = "*xX#"


def visible_digits(raw: str) -> str:
    """The E.164 digits of a masked number before its first masked one ("+44 20 7946
    0***" -> "442079460"); "" when no usable digit is visible (a masked national number,
    a mask from the first digit)."""
    text = _international(raw.strip().translate(_NUMBER_JUNK))
    cut = min((i for i in (text.find(c) for c in _MASK_CHARACTERS) if i >= 0),
              default=len(text))
    visible = text[:cut]
    if not visible.isascii() or not visible.isdigit() or visible[0] == "0" \
            or len(visible) > 15:
        return ""
    return visible


_TYPE_DESCS = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager",
               "uan", "voicemail", "fixed_line")
_REGION_TESTS: dict[str, tuple] = {}


def _desc_test(desc) -> tuple | None:
    """phonenumbers' `_is_number_matching_desc` as (possible lengths, compiled pattern)."""
    if desc is None or not desc.national_number_pattern:
        return None
    return (frozenset(desc.possible_length), re.compile(desc.national_number_pattern))


def _matches(test, national: str) -> bool:
    if test is None:
        return False
    lengths, pattern = test
    if lengths and len(national) not in lengths:
        return False
    return pattern.fullmatch(national) is not None


def _region_tests(region: str) -> tuple:
    """The checks phonenumbers runs for `region` in `_region_code_for_number_from_list`,
    compiled once: (leading digits, general desc, type descs, mobile desc or None)."""
    tests = _REGION_TESTS.get(region)
    if tests is None:
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region.upper(), None)
        if meta is None:
            tests = (None, None, (), None, False)
        else:
            tests = (
                re.compile(meta.leading_digits) if meta.leading_digits is not None else None,
                _desc_test(meta.general_desc),
                tuple(_desc_test(getattr(meta, name)) for name in _TYPE_DESCS),
                None if meta.same_mobile_and_fixed_line_pattern else _desc_test(meta.mobile),
                True,
            )
        _REGION_TESTS[region] = tests
    return tests


def _region_from_list(national: str, regions) -> str | None:
    """Exactly phonenumbers' `_region_code_for_number_from_list` on the national
    significant number: the first region whose leading digits match, or (for regions
    without them) whose patterns give the number a type. The patterns are compiled once
    instead of looked up in phonenumbers' caches for every region at every call (invalid
    numbers, which no cache can keep, went through all of that each time)."""
    for region in regions:
        leading, general, types, mobile, known = _region_tests(region)
        if not known:
            continue
        if leading is not None:
            if leading.match(national):
                return region
        elif _matches(general, national) and (
                any(_matches(t, national) for t in types) or _matches(mobile, national)):
            return region
    return None


_NATIONAL_PREFIXES: dict[str, object] = {}


def _national_prefix(calling_code: str, main_region: str):
    """The compiled national prefix phonenumbers' parse() strips after this calling code
    (for +1: "1"), or None."""
    if calling_code not in _NATIONAL_PREFIXES:
        meta = phonenumbers.PhoneMetadata.metadata_for_region(main_region, None)
        pattern = meta.national_prefix_for_parsing if meta is not None else None
        _NATIONAL_PREFIXES[calling_code] = re.compile(pattern) if pattern else None
    return _NATIONAL_PREFIXES[calling_code]


def _region_of_number(digits: str, cc_len: int = 0) -> str | None:
    """phonenumbers' region of the number (as parse() then region_code_for_number()).

    With the calling code's length known, the parse is skipped when it would not change
    the national digits: no leading zero, at least two digits, and no national prefix for
    parse() to strip. The region-from-list step runs on patterns compiled once."""
    national = digits[cc_len:] if cc_len else ""
    if len(national) >= 2 and national[0] != "0":
        regions = _CALLING_CODES.get(digits[:cc_len])
        if regions:
            if len(regions) == 1:
                return regions[0]
            prefix = _national_prefix(digits[:cc_len], regions[0])
            if prefix is None or prefix.match(national) is None:
                return _region_from_list(national, regions)
    try:
        parsed = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return None
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(parsed.country_code)
    if not regions:
        return None
    if len(regions) == 1:
        return regions[0]
    return _region_from_list(phonenumbers.national_significant_number(parsed), regions)


_PREFIX_REGIONS: dict[str, str] = {}
# Calling code (as text) -> its regions: one dict lookup per prefix length, no int().
_CALLING_CODES: dict[str, tuple[str, ...]] = {
    str(code): tuple(regions)
    for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items()
}


def region_of(digits: str) -> str | None:
    """ISO country of an E.164 number (digits only), or None when phonenumbers cannot tell.

    Calling codes that belong to one country are answered from phonenumbers' own table;
    shared codes (+1, +44, +7, ...) need the area code, so the answer is cached per
    calling code + the next four digits (an area code never spans two countries). The
    cache is bounded and only speeds up a pure function.
    """
    for cc_len in (1, 2, 3):
        regions = _CALLING_CODES.get(digits[:cc_len])
        if regions:
            if len(regions) == 1:
                return regions[0]
            key = digits[: cc_len + 4]
            region = _PREFIX_REGIONS.get(key)
            if region is None:
                region = _region_of_number(digits, cc_len)
                if region is None:
                    # An invalid number: the calling code's main country is the best guess.
                    return regions[0] if regions[0] != "001" else None
                if len(_PREFIX_REGIONS) < 100_000:
                    _PREFIX_REGIONS[key] = region
            return region
    return None


def is_valid_number(digits: str) -> bool:
    """phonenumbers' full validation of an E.164 number (digits only), as
    `is_valid_number(parse("+" + digits))`. Call authorization asks it on every request:
    the usual number is decided on the patterns compiled once (`_valid_by_patterns`), the
    rest by phonenumbers itself."""
    valid = _valid_by_patterns(digits)
    if valid is not None:
        return valid
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse("+" + digits))
    except phonenumbers.NumberParseException:
        return False


def _valid_by_patterns(digits: str) -> bool | None:
    """phonenumbers' `is_valid_number` without parse(): the calling code, the region from
    the national digits (`_region_from_list`), then `_number_type_helper`'s test (the
    general pattern, then any type's). None when parse() could change the national digits
    (a leading zero, a national prefix to strip) or the code is non-geographic: then only
    phonenumbers can tell."""
    if not 3 <= len(digits) <= 15 or not digits.isascii() or not digits.isdigit():
        return None
    for cc_len in (1, 2, 3):
        regions = _CALLING_CODES.get(digits[:cc_len])
        if regions:
            break
    else:
        return None
    national = digits[cc_len:]
    if len(national) < 2 or national[0] == "0":
        return None
    prefix = _national_prefix(digits[:cc_len], regions[0])
    if prefix is not None and prefix.match(national):
        return None
    region = regions[0] if len(regions) == 1 else _region_from_list(national, regions)
    if region is None:
        return False
    _leading, general, types, mobile, known = _region_tests(region)
    if not known:
        return None
    return _matches(general, national) and (
        any(_matches(t, national) for t in types) or _matches(mobile, national))


def is_domestic(usage_country: str, destination_country: str | None) -> bool:
    if not destination_country or not usage_country:
        return False
    if usage_country == destination_country:
        return True
    return usage_country in NANP_DOMESTIC and destination_country in NANP_DOMESTIC


def billable_seconds(duration: int, first: int, nxt: int) -> int:
    """`first + ceil(max(0, d - first) / next) * next` for d > 0; 0 for d <= 0."""
    if duration <= 0:
        return 0
    rest = duration - first
    if rest <= 0:
        return first
    return first + -(-rest // nxt) * nxt


def charge_cents(billable: int, rate_units: int, fee_units: int) -> int:
    """connection fee + billable / 60 * rate, rounded half-up to cents once."""
    # In units of 1/(60 * 100000): fee * 60 + billable * rate; a cent is 60 * 1000 of them.
    total = fee_units * 60 + billable * rate_units
    return (total + 30 * _CENT_UNITS) // (60 * _CENT_UNITS)


def longest_chargeable_seconds(rate_units: int, fee_units: int, first: int,
                               nxt: int) -> int | None:
    """The longest billable duration this rate may charge at all (MAX_CHARGE_PER_CALL):
    past it a call is left unrated, so no call may be authorized for longer."""
    return max_billable_seconds(MAX_CHARGE_CENTS, rate_units, fee_units, first, nxt)


def max_billable_seconds(
    balance_cents: int, rate_units: int, fee_units: int, first: int, nxt: int
) -> int | None:
    """The longest billable duration whose charge the balance covers (0 when not even the
    first block; None when the rate is free and the call may last any time)."""
    if rate_units == 0:
        return None if charge_cents(0, 0, fee_units) <= balance_cents else 0
    if charge_cents(first, rate_units, fee_units) > balance_cents:
        return 0
    # Largest k with charge(first + k * next) <= balance; start from the unrounded bound
    # and step to the exact answer (the half-up rounding may allow one more block).
    budget = (balance_cents * 60 * _CENT_UNITS + 30 * _CENT_UNITS - 1) - fee_units * 60
    k = max(0, (budget // rate_units - first) // nxt)
    while k > 0 and charge_cents(first + k * nxt, rate_units, fee_units) > balance_cents:
        k -= 1
    while charge_cents(first + (k + 1) * nxt, rate_units, fee_units) <= balance_cents:
        k += 1
    return first + k * nxt


# --- calls and ratings --------------------------------------------------------------------


class Call(NamedTuple):
    """One call and the facts of the user (or resource account) it belongs to.

    `skus` are the license SKUs the person held at the call's start; `usage_country` is
    the person's usage location (ISO 3166 alpha-2). `inventory_type` is Graph's number
    type of the user's number (it tells an inbound toll-free call without a deck row).
    """

    call_type: str
    caller: str
    callee: str
    start: datetime
    duration: int
    usage_country: str = ""
    skus: frozenset = frozenset()
    inventory_type: str = ""


class Assessment(NamedTuple):
    """What would pay for a call, before any pool minutes are taken."""

    status: str  # rated | unrated
    reason: str | None
    charged_to: str  # what pays when the pool (if any) has enough minutes
    pool_kind: str | None  # domestic | international | conference | None
    pool_country: str  # usage country for plan pools, "" for the conferencing pool
    minutes_wanted: int  # whole minutes, rounded up, the call needs from the pool
    rate: Rate | None
    rate_units: int
    fee_units: int
    destination_country: str | None
    domestic: bool | None
    capability: str  # the license that pays when the pool pays (or the free call's)


class Rating(NamedTuple):
    status: str  # rated | unrated
    reason: str | None
    charged_to: str  # plan_pool | conference_pool | credits | free | "" when unrated
    pool_kind: str | None
    pool_country: str
    pool_minutes: int  # minutes taken from the pool
    credit_seconds: int  # seconds billed to credits (after increments)
    billable_seconds: int  # pool_minutes * 60 + credit_seconds
    rate: Rate | None
    rate_per_minute: Decimal | None
    connection_fee: Decimal
    charge: Decimal  # what credits pay, 2 places
    capability: str
    destination_country: str | None
    domestic: bool | None

    @property
    def charge_cents(self) -> int:
        return int(self.charge.scaleb(2))


def _unrated(reason: str, destination_country=None, domestic=None) -> Assessment:
    return Assessment(UNRATED, reason, "", None, "", 0, None, 0, 0, destination_country,
                      domestic, "")


def _over_limit(duration: int, priced: _PricedRate) -> bool:
    """Would credits pay more than MAX_CHARGE_PER_CALL if they paid the whole call? Decided
    before any pool minutes are taken (a pool only lowers what credits pay), so a refused
    call takes none."""
    rate = priced.rate
    seconds = billable_seconds(duration, rate.first_increment_s, rate.next_increment_s)
    return charge_cents(seconds, priced.rate_units, priced.fee_units) > MAX_CHARGE_CENTS


def _plan_capability(skus: frozenset, call_type: str) -> str:
    if call_type.startswith("ucap"):
        return CAPABILITY_RESOURCE_ACCOUNT if RESOURCE_ACCOUNT in skus else CAPABILITY_TEAMS_PHONE
    if call_type.startswith("conf"):
        return SKU_CONFERENCING
    if SKU_DOMESTIC_INTERNATIONAL in skus:
        return SKU_DOMESTIC_INTERNATIONAL
    for sku in DOMESTIC_POOL_PLANS:
        if sku in skus:
            return PRODUCTS[sku].capability
    if SKU_PAYG in skus:
        return CAPABILITY_CREDITS
    return ""


MASKED = "masked_number"
AMBIGUOUS_MASKED = "ambiguous_masked_number"


def _priced(deck: RateDeck, direction: str, callee, digits: str, problem: str | None,
            on: date) -> tuple[_PricedRate | None, str | None]:
    """(the deck's rate for the number, the reason it has none that the number itself
    gives). A masked number is priced by the longest prefix its visible digits determine;
    when a longer prefix could match the hidden digits, it is `ambiguous_masked_number`."""
    if problem is None:
        return deck._lookup(direction, digits, on), None
    if problem != MASKED:
        return None, problem
    visible = visible_digits(callee)
    if not visible:
        return None, MASKED
    priced, ambiguous = deck._lookup_masked(direction, visible, on)
    return priced, AMBIGUOUS_MASKED if ambiguous else None


def pool_kinds_for(call_type: str) -> tuple[str, ...]:
    """The pools that may pay part of a call of this type; `assess` decides which one, if
    any (call authorization reads these pools' facts before it assesses the call)."""
    if call_type == CONFERENCE_OUT:
        return (POOL_CONFERENCE,)
    if call_type in CALL_TYPES and call_type not in INBOUND_TYPES:
        return (POOL_DOMESTIC, POOL_INTERNATIONAL)
    return ()


def assess(call: Call, deck: RateDeck) -> Assessment:
    # One unpacking instead of an attribute read per field (the hot path of ingestion).
    call_type, _caller, callee, start, duration, usage_country, skus, inventory_type = call
    if call_type not in CALL_TYPES:
        return _unrated("unknown_call_type")
    if call_type in INBOUND_TYPES:
        if call_type in FREE_INBOUND_TYPES:
            return Assessment(RATED, None, FREE, None, "", 0, None, 0, 0, None, None, "")
        digits, problem = normalize_number(callee)
        priced, problem = _priced(deck, INBOUND_TOLL_FREE, callee, digits, problem,
                                  start.date())
        if priced is None:
            if "toll" in inventory_type.lower() or problem == AMBIGUOUS_MASKED:
                return _unrated(problem or "no_toll_free_rate")
            # A call to a user's or a service number is free, whatever the number looks like.
            return Assessment(RATED, None, FREE, None, "", 0, None, 0, 0, None, None,
                              _plan_capability(skus, call_type))
        if _over_limit(duration, priced):
            return _unrated("charge_over_limit", priced.rate.country)
        return Assessment(RATED, None, CREDITS, None, "", 0, priced.rate, priced.rate_units,
                          priced.fee_units, priced.rate.country, None, CAPABILITY_CREDITS)

    digits, problem = normalize_number(callee)
    if problem is None:
        priced = deck._lookup(OUTBOUND, digits, start.date())
    else:
        priced, problem = _priced(deck, OUTBOUND, callee, digits, problem, start.date())
    if problem == AMBIGUOUS_MASKED:
        # The country is known even when the rate is not: the calling code is visible.
        destination = region_of(visible_digits(callee))
        return _unrated(problem, destination,
                        is_domestic(usage_country, destination) if destination else None)
    if problem is not None:
        return _unrated(problem)
    if digits == "":
        digits = visible_digits(callee)  # masked, and the visible digits decide the rate
    destination = region_of(digits)
    if priced is None:
        return _unrated("no_rate", destination,
                        is_domestic(usage_country, destination) if destination else None)
    rate = priced.rate
    destination = destination or rate.country
    domestic = is_domestic(usage_country, destination)
    if _over_limit(duration, priced):
        return _unrated("charge_over_limit", destination, domestic)
    minutes = -(-duration // 60) if duration > 0 else 0
    pool_kind = None
    if rate.number_type == "premium":
        pass  # premium-rate destinations always use credits
    elif call_type == CONFERENCE_OUT:
        if SKU_CONFERENCING_PPM in skus and SKU_CONFERENCING not in skus:
            # Pay-per-minute conferencing has no included minutes: credits pay each one.
            return Assessment(RATED, None, CREDITS, None, "", 0, rate, priced.rate_units,
                              priced.fee_units, destination, domestic,
                              CAPABILITY_CONFERENCING_PPM)
        if destination in ZONE_A:
            return Assessment(RATED, None, CONFERENCE_POOL, POOL_CONFERENCE, "", minutes, rate,
                              priced.rate_units, priced.fee_units, destination, domestic,
                              SKU_CONFERENCING)
    elif domestic and not skus.isdisjoint(_DOMESTIC_POOL_PLANS):
        pool_kind = POOL_DOMESTIC
    elif not domestic and SKU_DOMESTIC_INTERNATIONAL in skus:
        pool_kind = POOL_INTERNATIONAL
    if pool_kind is not None:
        capability = SKU_DOMESTIC_INTERNATIONAL
        if pool_kind == POOL_DOMESTIC:
            for sku in DOMESTIC_POOL_PLANS:
                if sku in skus:
                    capability = PRODUCTS[sku].capability
                    break
        return Assessment(RATED, None, PLAN_POOL, pool_kind, usage_country, minutes, rate,
                          priced.rate_units, priced.fee_units, destination, domestic,
                          capability)
    return Assessment(RATED, None, CREDITS, None, "", 0, rate, priced.rate_units,
                      priced.fee_units, destination, domestic, CAPABILITY_CREDITS)


def settle(assessment: Assessment, call: Call, pool_minutes_given: int = 0) -> Rating:
    """The final rating, once the pool (if any) has given `pool_minutes_given` minutes."""
    a = assessment
    if a.status == UNRATED:
        return Rating(UNRATED, a.reason, "", None, "", 0, 0, 0, None, None, ZERO, ZERO, "",
                      a.destination_country, a.domestic)
    duration = call.duration
    rate = a.rate
    per_minute = rate.rate_per_minute if rate is not None else None
    if duration <= 0 or a.charged_to == FREE:
        # Not connected, or free: nothing is billed and no pool is touched.
        charged_to = FREE
        return Rating(RATED, None, charged_to, None, "", 0, 0, 0, rate, per_minute, ZERO,
                      ZERO, a.capability if a.charged_to == FREE else "",
                      a.destination_country, a.domestic)
    given = 0
    rest = duration
    if a.pool_kind is not None:
        given = min(max(0, pool_minutes_given), a.minutes_wanted)
        rest = duration - given * 60
        if rest <= 0:
            return Rating(RATED, None, a.charged_to, a.pool_kind, a.pool_country, given, 0,
                          given * 60, rate, per_minute, ZERO, ZERO, a.capability,
                          a.destination_country, a.domestic)
    # Credits pay the whole call, or what the pool did not cover.
    credit_seconds = billable_seconds(rest, rate.first_increment_s, rate.next_increment_s)
    cents = charge_cents(credit_seconds, a.rate_units, a.fee_units)
    # The license credits paid under (pay-per-minute conferencing names its own).
    capability = a.capability if a.pool_kind is None and a.capability else CAPABILITY_CREDITS
    return Rating(RATED, None, CREDITS, a.pool_kind if given else None,
                  a.pool_country if given else "", given, credit_seconds,
                  given * 60 + credit_seconds, rate, per_minute, rate.connection_fee,
                  cents_to_decimal(cents), capability, a.destination_country,
                  a.domestic)


PoolMinutes = Mapping[tuple[str, str], int] | Callable[[str, str, int], int] | None


def rate_call(call: Call, deck: RateDeck, pool_minutes: PoolMinutes = None) -> Rating:
    """Rate one call. `pool_minutes` says what each pool can give: a mapping
    {(kind, country): minutes left} (conference pool: country ""), or a callback
    (kind, country, minutes wanted) -> minutes given; None means every pool is empty."""
    assessment = assess(call, deck)
    given = 0
    if assessment.pool_kind is not None and call.duration > 0:
        key = (assessment.pool_kind, assessment.pool_country)
        if pool_minutes is None:
            given = 0
        elif callable(pool_minutes):
            given = pool_minutes(key[0], key[1], assessment.minutes_wanted)
        else:
            given = min(pool_minutes.get(key, 0), assessment.minutes_wanted)
    return settle(assessment, call, given)
