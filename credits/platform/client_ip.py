"""The client's address for the sign-in lockout (django-axes) and the audit log.

Behind reverse proxies REMOTE_ADDR is the nearest proxy, shared by every client. Each proxy
appends the address it received the request from to X-Forwarded-For, so with
TRUSTED_PROXY_COUNT proxies the client is that many entries from the right; anything to the
left of it is what the client itself sent, and is never trusted. With no proxy (0, the
default) the header is ignored altogether: anyone can send it.
"""

import ipaddress

from django.conf import settings


def client_ip(request) -> str | None:
    remote = request.META.get("REMOTE_ADDR")
    hops = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if hops <= 0:
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    chain = [part.strip() for part in forwarded.split(",") if part.strip()]
    if len(chain) < hops:
        # Not (or not all the way) through the proxies: the peer is the client.
        return remote
    try:
        address = ipaddress.ip_address(chain[-hops])
    except ValueError:
        return remote  # not an address (a port, a name, garbage): the proxy's own is safe
    if getattr(address, "scope_id", None):
        return remote  # a link-local zone means nothing here, and databases refuse it
    return str(address)
