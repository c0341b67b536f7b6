"""Bearer tokens of the JSON API and their rate limit.

A token belongs to one organization: `request.auth` is that Organization, so every
endpoint reads and writes only its data. Tokens are stored hashed (SHA-256); a revoked or
unknown token gets 401.
"""

import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
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

    def authenticate(self, request, token):
        found = api_token_authenticate(raw=token)
        if found is None:
            return None
        api_token_touch(token=found, now=timezone.now())
        request.api_token = found
        return found.organization


def _count(key: str) -> int:
    """Count one request in the window `key`; returns the window's count so far."""
    backend = cache._cache if hasattr(cache, "_cache") else None
    if backend is not None and hasattr(backend, "get_client"):
        # Redis: INCR and EXPIRE in one round trip (Django's incr() costs two). Django
        # builds a new client object on every get_client(); the one built first is kept
        # on the backend (a client is only a handle on the pool, safe to share) so a
        # request does not pay for that construction. No MULTI/EXEC: INCR is atomic on
        # its own and the EXPIRE only renews the window's time to live.
        client = getattr(backend, "_cc_rate_client", None)
        if client is None:
            client = backend._cc_rate_client = backend.get_client(key, write=True)
        full_key = cache.make_and_validate_key(key)
        pipe = client.pipeline(transaction=False)
        pipe.incr(full_key)
        pipe.expire(full_key, 70)
        return int(pipe.execute()[0])
    # add() creates the counter once; incr() is atomic in local memory.
    if cache.add(key, 1, timeout=70):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.add(key, 1, timeout=70)
        return 1


class TokenRateThrottle(BaseThrottle):
    """A fixed one-minute window per token, counted in the Django cache (Redis when
    scaled out, so every web process shares the count). API_RATE_LIMIT_PER_MINUTE sets
    the limit; 0 turns it off."""

    def allow_request(self, request) -> bool:
        limit = getattr(settings, "API_RATE_LIMIT_PER_MINUTE", DEFAULT_RATE_PER_MINUTE)
        token = getattr(request, "api_token", None)
        if not limit or token is None:
            return True
        window = int(time.time() // 60)
        key = f"api-rate:{token.pk}:{window}"
        try:
            return _count(key) <= limit
        except Exception:  # noqa: BLE001 - the cache (Redis) is down
            # The limit guards the service; with its counter gone, refusing every request
            # would take the API down with the cache. Let requests through and say so.
            logger.warning("API rate limit not counted: the cache is unavailable",
                           exc_info=True)
            return True

    def wait(self):
        return 60 - (time.time() % 60)  # until the next window
