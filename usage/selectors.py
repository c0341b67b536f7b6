"""Reads of the usage app; every one is scoped by organization."""

import hashlib
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet
from django.db.models.base import DEFERRED

from credits import products
from credits.models import Organization, Person
from credits.products import PoolKey
from credits.selectors.billing import credit_balance
from credits.selectors.licenses import licenses_at, pool_facts, pool_left
from credits.selectors.spend_limits import spend_facts

from . import cursors, pg, rating
from .models import ApiToken, CallRecord, Rate, RateDeck


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _could_be_token(raw: str) -> bool:
    """Whether a presented bearer value could be one of our tokens (short ASCII text, as
    `api_token_create` makes them): anything else is refused before it is hashed, which a
    lone surrogate could not be."""
    return bool(raw) and len(raw) <= 200 and raw.isascii()


_TOKEN_COLUMNS = tuple(f.column for f in ApiToken._meta.concrete_fields)
_ORGANIZATION_COLUMNS = tuple(f.column for f in Organization._meta.concrete_fields)
# What call authorization reads of its token and organization, in the same statement as
# the call's facts: what it and the request's admission use. The token's hash and its
# revocation (none) are known from the statement's condition; the other fields (who made
# the token, when, the billing details) are deferred, loaded only if asked for. Fewer
# columns cost less to send and to convert, the dates most of all.
_AUTHORIZE_TOKEN_COLUMNS = ("id", "organization_id", "name", "prefix", "last_used_at")
_AUTHORIZE_ORGANIZATION_COLUMNS = ("id", "name", "slug", "country", "currency")


_TOKEN_ORGANIZATION = ApiToken._meta.get_field("organization")


def _instance(model, columns, values, known=None):
    """An instance of `model` from the `values` of `columns` (any order) and the `known`
    values by column; its other fields deferred."""
    given = dict(zip(columns, values, strict=True))
    if known:
        given.update(known)
    return model.from_db("default", None, [given.get(f.column, DEFERRED)
                                           for f in model._meta.concrete_fields])


def _token_from_row(token_values, organization_values, *, token_columns=_TOKEN_COLUMNS,
                    organization_columns=_ORGANIZATION_COLUMNS, known=None) -> ApiToken:
    token = _instance(ApiToken, token_columns, token_values, known)
    for name in ("created_at", "last_used_at", "revoked_at"):
        value = token.__dict__.get(name)
        if isinstance(value, datetime) and value.tzinfo is None:  # SQLite: naive UTC
            setattr(token, name, value.replace(tzinfo=UTC))
    # As select_related does: no descriptor checks for an instance read with the token.
    _TOKEN_ORGANIZATION.set_cached_value(
        token, _instance(Organization, organization_columns, organization_values))
    return token


def api_token_authenticate(*, raw: str) -> ApiToken | None:
    """The active token with this value, its organization attached, or None.

    Every API request runs this, so it is one hand-written query (the ORM's query building
    cost more than the query itself)."""
    if not _could_be_token(raw):
        return None
    sql = "SELECT {}, {} FROM {} t JOIN {} o ON o.id = t.organization_id " \
          "WHERE t.token_hash = %s AND t.revoked_at IS NULL".format(
              ", ".join(f"t.{c}" for c in _TOKEN_COLUMNS),
              ", ".join(f"o.{c}" for c in _ORGANIZATION_COLUMNS),
              ApiToken._meta.db_table, Organization._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql, [token_hash(raw)])
        row = cursor.fetchone()
    if row is None:
        return None
    n = len(_TOKEN_COLUMNS)
    return _token_from_row(row[:n], row[n:])


def api_tokens(*, organization: Organization) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(organization=organization)


# --- rate deck ----------------------------------------------------------------------------


class _DeckCache:
    """Parsed decks per organization, reused while the deck's version is unchanged.

    A cache, not state: every use first reads the deck's stamp (its version and when it
    was loaded) from the database, so a deck loaded by another process is seen at once.
    The version alone is not enough: a deck deleted and loaded again, or a reused
    organization id (SQLite reuses them), starts again at version 1. Bounded
    (RATE_DECK_CACHE_SIZE organizations), and safe across threads.
    """

    def __init__(self, size: int | None = None):
        self._size = max(1, size or settings.RATE_DECK_CACHE_SIZE)
        self._items: OrderedDict[int, tuple[tuple, rating.RateDeck]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, organization_id: int, version: tuple) -> rating.RateDeck | None:
        with self._lock:
            item = self._items.get(organization_id)
            if item is None or item[0] != version:
                return None
            self._items.move_to_end(organization_id)
            return item[1]

    def put(self, organization_id: int, version: tuple, deck: rating.RateDeck) -> None:
        with self._lock:
            self._items[organization_id] = (version, deck)
            self._items.move_to_end(organization_id)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_decks = _DeckCache()


def rate_deck_version(*, organization: Organization) -> int:
    return _deck_stamp(organization)[0]


def _deck_stamp(organization: Organization) -> tuple:
    """What tells one load of the organization's deck from another: its version and when it
    was loaded ((0, None): no deck)."""
    return tuple(RateDeck.objects.filter(organization=organization).values_list(
        "version", "loaded_at").first() or (0, None))


def deck_for(*, organization: Organization, stamp: tuple) -> rating.RateDeck:
    """The organization's deck with this stamp (`_deck_stamp`, or read with other facts) as
    the rating engine's lookup object: parsed once per process and load."""
    deck = _decks.get(organization.pk, stamp)
    if deck is None:
        deck = rating.RateDeck(
            (r.as_rating_rate() for r in Rate.objects.filter(organization=organization)),
            organization.currency,
        )
        _decks.put(organization.pk, stamp, deck)
    return deck


def rate_deck_for(*, organization: Organization) -> rating.RateDeck:
    """The organization's whole deck as the rating engine's lookup object."""
    return deck_for(organization=organization, stamp=_deck_stamp(organization))


def person_for_call(*, organization: Organization, upn: str) -> tuple[int, str] | None:
    """(person id, usage location) of the person with this UPN (any case), or None."""
    sql = (f"SELECT id, usage_location FROM {Person._meta.db_table} "
           "WHERE organization_id = %s AND LOWER(upn) = LOWER(%s) LIMIT 1")
    with connection.cursor() as cursor:
        cursor.execute(sql, [organization.pk, upn.strip()])
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None


class CallFacts(NamedTuple):
    """What authorizing one call needs to know, read in one go."""

    person_id: int
    usage_location: str
    skus: frozenset
    balance: Decimal
    rate: rating.Rate | None
    # The monthly spend limits (None: none) and the month's settled spend against them.
    org_limit: Decimal | None = None
    org_spent: Decimal = Decimal("0.00")
    person_limit: Decimal | None = None
    person_spent: Decimal = Decimal("0.00")
    # The pools of `pool_kinds` (those a call of its type may draw on) in usage country
    # `pool_country`: minutes used this month by kind, and licenses feeding them by SKU
    # (credits.selectors.licenses.pool_facts).
    pool_country: str = ""
    pool_used: dict | None = None
    pool_seats: dict | None = None
    pool_kinds: tuple = ()

    def pool_minutes_left(self, key: PoolKey) -> int | None:
        """Minutes the pool `key` can still give; None when these facts are not about that
        pool."""
        if key.kind not in self.pool_kinds or (
                key.kind != products.CONFERENCE and key.country != self.pool_country):
            return None
        return pool_left(key=key, used=self.pool_used or {}, seats=self.pool_seats or {})


def _call_facts(organization, facts, direction, digits, at, pool_kinds) -> CallFacts | None:
    """CallFacts from the facts usage.pg read, the deck's stamp resolved to the rate."""
    if facts is None:
        return None
    stamp = facts[4]
    rate = deck_for(organization=organization, stamp=stamp).lookup(
        direction, digits, at.date()) if digits else None
    return CallFacts(*facts[:4], rate, *facts[5:], pool_kinds=tuple(pool_kinds))


def authorize_facts(*, organization: Organization, upn: str, direction: str, digits: str,
                    at: datetime, pool_kinds=()) -> CallFacts | None:
    """The person with this UPN (any case), the SKUs they hold at `at`, the credit balance,
    the deck's rate for `digits`, the spend limits with the month's spend against them
    (`credits.selectors.spend_limits.spend_facts`) and the facts of the pools of
    `pool_kinds` (`credits.selectors.licenses.pool_facts`); None when no such person.

    On PostgreSQL this is one round trip (usage.pg). The reads are the same as
    `person_for_call`, `credits.selectors.licenses.licenses_at`,
    `credits.selectors.billing.credit_balance`, `spend_facts` and `pool_facts` (tests hold
    them equal); elsewhere those run one by one. The rate is the rating engine's lookup in
    the deck (`rate_deck_for`), parsed once per process and load: the round trip reads
    only the deck's stamp."""
    if pg.available():
        facts = pg.authorize_facts(organization=organization, upn=upn, at=at,
                                   pool_kinds=pool_kinds)
        return _call_facts(organization, facts, direction, digits, at, pool_kinds)
    person = person_for_call(organization=organization, upn=upn)
    if person is None:
        return None
    skus = licenses_at(organization=organization, at=at, person_ids=[person[0]]).get(
        person[0], frozenset())
    country = (person[1] or organization.country).upper()
    used, seats = pool_facts(organization=organization, kinds=pool_kinds, country=country,
                             at=at)
    return CallFacts(person[0], person[1], skus, credit_balance(organization=organization),
                     rate_deck_for(organization=organization).lookup(
                         direction, digits, at.date()) if digits else None,
                     *spend_facts(organization=organization, person_id=person[0], at=at),
                     country, used, seats, tuple(pool_kinds))


def authorize_read(*, raw_token: str, upn: str, direction: str, digits: str, at: datetime,
                   pool_kinds=()) -> tuple[ApiToken | None, CallFacts | None]:
    """(the active API token with this value, its organization attached, or None; the facts
    of `authorize_facts` in its organization, or None): on PostgreSQL in ONE round trip,
    the token row included, so that a revoked token is refused at once."""
    if not _could_be_token(raw_token):
        return None, None
    if not pg.available():
        token = api_token_authenticate(raw=raw_token)
        if token is None:
            return None, None
        return token, authorize_facts(organization=token.organization, upn=upn,
                                      direction=direction, digits=digits, at=at,
                                      pool_kinds=pool_kinds)
    hashed = token_hash(raw_token)
    row = pg.authorize_read(token_hash=hashed, token_columns=_AUTHORIZE_TOKEN_COLUMNS,
                            organization_columns=_AUTHORIZE_ORGANIZATION_COLUMNS, upn=upn,
                            at=at, pool_kinds=tuple(pool_kinds))
    if row is None:
        return None, None
    token_values, organization_values, facts = row
    token = _token_from_row(token_values, organization_values,
                            token_columns=_AUTHORIZE_TOKEN_COLUMNS,
                            organization_columns=_AUTHORIZE_ORGANIZATION_COLUMNS,
                            known={"token_hash": hashed, "revoked_at": None})
    return token, _call_facts(token.organization, facts, direction, digits, at, pool_kinds)


def rates_search(*, organization: Organization, q: str = "", direction: str = "",
                 number_type: str = "") -> QuerySet[Rate]:
    qs = Rate.objects.filter(organization=organization)
    q = q.strip()
    if q:
        digits = q.lstrip("+").replace(" ", "")
        cond = Q(destination__icontains=q) | Q(country__iexact=q)
        if digits.isdigit():
            # A number finds the rows whose prefix it starts with, and longer prefixes.
            cond |= Q(prefix__startswith=digits) | Q(
                prefix__in=[digits[:n] for n in range(1, len(digits) + 1)])
        qs = qs.filter(cond)
    if direction:
        qs = qs.filter(direction=direction)
    if number_type:
        qs = qs.filter(number_type=number_type)
    return qs.order_by("direction", "prefix", "-effective_from")


def rates_all(*, organization: Organization) -> QuerySet[Rate]:
    return Rate.objects.filter(organization=organization).order_by(
        "direction", "prefix", "effective_from")


# --- call records -------------------------------------------------------------------------


CALLS_CURSOR = "pstn-calls"


def encode_cursor(start_at: datetime, pk: int) -> str:
    return cursors.encode_cursor(CALLS_CURSOR, start_at, pk)


def decode_cursor(token: str) -> tuple[datetime, int]:
    """Raises ValueError (cursors.InvalidCursor) for anything that is not a cursor of
    ours."""
    start, pk = cursors.decode_row_cursor(token, CALLS_CURSOR)
    if not isinstance(start, datetime):
        raise cursors.InvalidCursor("not a call cursor")
    return start, pk


def call_records_page(*, organization: Organization, start: datetime, end: datetime,
                      after: tuple[datetime, int] | None = None,
                      size: int = 1000) -> tuple[list[CallRecord], tuple[datetime, int] | None]:
    """Calls that started in [start, end], both bounds inclusive as in Graph, in (start
    time, id) order, keyset-paged: the rows and the cursor of the next page (None on the
    last)."""
    qs = CallRecord.objects.filter(organization=organization, start_at__gte=start,
                                   start_at__lte=end)
    if after is not None:
        a_start, a_pk = after
        qs = qs.filter(Q(start_at__gt=a_start) | Q(start_at=a_start, pk__gt=a_pk))
    rows = list(qs.order_by("start_at", "pk")[: size + 1])
    if len(rows) > size:
        rows = rows[:size]
        last = rows[-1]
        return rows, (last.start_at, last.pk)
    return rows, None


def unrated_calls(*, organization: Organization) -> QuerySet[CallRecord]:
    return CallRecord.objects.filter(organization=organization, rated=False).order_by(
        "-start_at")
