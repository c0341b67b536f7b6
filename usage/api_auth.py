"""Bearer tokens of the JSON API and their rate limit.

A token belongs to one organization: `request.auth` is that Organization, so every
endpoint reads and writes only its data. Tokens are stored hashed (SHA-256); a revoked or
unknown token gets 401.
"""

import logging
import math
import threading
import time
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from ninja.errors import AuthenticationError, Throttled
from ninja.security import HttpBearer
from ninja.throttling import BaseThrottle

from .selectors import api_token_authenticate
from .services import api_token_touch

logger = logging.getLogger(__name__)

DEFAULT_RATE_PER_MINUTE = 6000


class OrganizationToken(HttpBearer):
    openapi_description = (
        "An API token of the organization (Settings > API tokens, or "
        "`manage.py create_api_token --org SLUG --name NAME`), sent as "
        "`Authorization: Bearer <token>`."
    )

    def __call__(self, request):
        # ninja's HttpBearer.__call__, reading the one header from META: `request.headers`
        # would first build a mapping of every header of the request, on every request.
        value = request.META.get("HTTP_AUTHORIZATION")
        if not value:
            return None
        scheme, _, token = value.partition(" ")
        if scheme.lower() != self.openapi_scheme:
            return None
        return self.authenticate(request, token)

    def authenticate(self, request, token):
        found = api_token_authenticate(raw=token)
        if found is None:
            return None
        api_token_touch(token=found, now=timezone.now())
        request.api_token = found
        return found.organization


class PresentedToken(NamedTuple):
    """The bearer value of a request, not checked yet (`ReadWithFactsToken`)."""

    raw: str


class ReadWithFactsToken(OrganizationToken):
    """The bearer token of an operation that reads the token row in the same query as its
    own facts (call authorization: usage.selectors.authorize_read), so that the request
    makes one round trip to the database. Here only the header is taken: `request.auth` is
    a PresentedToken. The operation then calls `token_admitted` with what its read found,
    which refuses an unknown or revoked token with the same 401 as OrganizationToken and
    counts the request against the rate limit (TokenRateThrottle) once the token is known.
    """

    def authenticate(self, request, token):
        return PresentedToken(token) if token else None


def token_admitted(request, token) -> None:
    """Admit `request` with the active `token` its operation read (None: none matched):
    raises AuthenticationError (401) or Throttled (429), else records the use and sets
    `request.auth` to the token's organization, as OrganizationToken does."""
    if token is None:
        raise AuthenticationError()
    api_token_touch(token=token, now=timezone.now())
    request.api_token = token
    request.auth = token.organization
    throttle = TokenRateThrottle()
    if not throttle.allow_request(request):
        raise Throttled(wait=math.ceil(throttle.wait()))


def presented_token_admitted(request) -> None:
    """`token_admitted` for a request whose operation was to check its token itself
    (ReadWithFactsToken) but refused its input first: an unknown token still gets 401,
    not the input's error, as on every other operation. Does nothing otherwise."""
    if isinstance(getattr(request, "auth", None), PresentedToken):
        token_admitted(request, api_token_authenticate(raw=request.auth.raw))


# How often a process adds its requests to the shared count (seconds).
FLUSH_INTERVAL_S = 1.0
WINDOW_TTL_S = 70


def _add_to_shared(key: str, n: int) -> int:
    """Add `n` requests to the window `key` in the Django cache; returns the window's count
    across every process so far."""
    backend = cache._cache if hasattr(cache, "_cache") else None
    if backend is not None and hasattr(backend, "get_client"):
        # Redis: INCRBY and EXPIRE in one round trip. Django builds a new client object on
        # every get_client(); the one built first is kept on the backend (a client is only
        # a handle on the pool, safe to share). No MULTI/EXEC: INCRBY is atomic on its own
        # and the EXPIRE only renews the window's time to live.
        client = getattr(backend, "_cc_rate_client", None)
        if client is None:
            client = backend._cc_rate_client = backend.get_client(key, write=True)
        full_key = cache.make_and_validate_key(key)
        pipe = client.pipeline(transaction=False)
        pipe.incrby(full_key, n)
        pipe.expire(full_key, WINDOW_TTL_S)
        return int(pipe.execute()[0])
    # add() creates the counter once; incr() is atomic in local memory.
    if cache.add(key, n, timeout=WINDOW_TTL_S):
        return n
    try:
        return cache.incr(key, n)
    except ValueError:  # expired between add() and incr()
        cache.add(key, n, timeout=WINDOW_TTL_S)
        return n


class WindowCounter:
    """Requests per token and one-minute window, counted in this process and added to the
    shared count (the Django cache: Redis when scaled out) at most once per
    FLUSH_INTERVAL_S, so a request costs no round trip to Redis.

    A request is allowed while (the shared count when this process last flushed) + (what
    this process counted since) is within the limit. What the other processes counted since
    their last flush is not seen yet, so with N processes the limit can be passed by at
    most what N - 1 processes serve in one flush interval; one process alone is exact."""

    def __init__(self, flush_interval: float = FLUSH_INTERVAL_S):
        self.flush_interval = flush_interval
        self.lock = threading.Lock()
        self.pending: dict[str, int] = {}  # key -> counted here, not yet flushed
        self.shared: dict[str, int] = {}  # key -> the shared count at the last flush
        self.flushed_at = 0.0

    def count(self, key: str, now: float) -> int:
        """Count one request in the window `key`; returns the window's count so far as this
        process knows it."""
        with self.lock:
            self.pending[key] = self.pending.get(key, 0) + 1
            if now - self.flushed_at >= self.flush_interval:
                self._flush(now)
            return self.shared.get(key, 0) + self.pending.get(key, 0)

    def _flush(self, now: float) -> None:
        self.flushed_at = now
        pending, self.pending = self.pending, {}
        items = list(pending.items())
        for done, (key, n) in enumerate(items):
            try:
                self.shared[key] = _add_to_shared(key, n)
            except Exception:  # noqa: BLE001 - the cache (Redis) is down
                # Keep counting here: the limit still holds per process while the shared
                # count is gone, and these requests are added once the cache is back.
                for later, m in items[done:]:
                    self.pending[later] = self.pending.get(later, 0) + m
                logger.warning("API rate limit: the shared count is unavailable; counting "
                               "in this process", exc_info=True)
                break
        # Past minutes' windows are forgotten (a key ends with its window's number).
        suffix = f":{int(now // 60)}"
        for counts in (self.shared, self.pending):
            for key in [k for k in counts if not k.endswith(suffix)]:
                del counts[key]


_counter = WindowCounter()


class TokenRateThrottle(BaseThrottle):
    """A fixed one-minute window per token, counted per process and shared through the
    Django cache (`WindowCounter`): exact within one flush interval. API_RATE_LIMIT_PER_
    MINUTE sets the limit; 0 turns it off."""

    def allow_request(self, request) -> bool:
        limit = getattr(settings, "API_RATE_LIMIT_PER_MINUTE", DEFAULT_RATE_PER_MINUTE)
        token = getattr(request, "api_token", None)
        if not limit or token is None:
            return True
        now = time.time()
        # The token's stored prefix (random) as well as its id: ids can come again (a
        # rolled-back test, a restored database), a counter must not.
        key = f"api-rate:{token.pk}:{token.prefix}:{int(now // 60)}"
        return _counter.count(key, now) <= limit

    def wait(self):
        return 60 - (time.time() % 60)  # until the next window
