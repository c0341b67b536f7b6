"""Talking to Microsoft: app-only sign-in (OAuth 2.0 client credentials through msal) and
the pages of Graph's `callRecords` functions (requests).

- Sign-in: `ConfidentialClientApplication` on `<sign-in address>/<tenant>`, scope
  `<the cloud's Graph>/.default`. When the sign-in address is replaced (MS_LOGIN_BASE_URL:
  tests, proxies), msal's instance discovery and authority validation are off: the
  discovery host is not reachable there.
- Graph: `GET <graph>/v1.0/communications/callRecords/getPstnCalls(fromDateTime=...,
  toDateTime=...)` and `getDirectRoutingCalls(...)` (Microsoft's pages of those names),
  then each `@odata.nextLink` as given, until a page has none.
- Retries: 429 and 503 wait `Retry-After` (seconds or an HTTP date), other 5xx and network
  errors wait an exponential back-off; every wait is capped (MS_PULL_MAX_BACKOFF_SECONDS)
  and a page is tried at most MS_PULL_MAX_RETRIES + 1 times, then a ConnectorError names
  the page's URL so that the next pull starts from it. A 401 (an expired token) gets one
  new token and one more try. The sleeper is injected (tests do not sleep).
- TLS: the standard CA-bundle variables REQUESTS_CA_BUNDLE, then SSL_CERT_FILE, are
  trusted, so that a copy of Graph served by its own certificate authority can be used.
"""

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import msal
import requests
from django.conf import settings

from .clouds import Endpoints, endpoints
from .errors import AADSTS, ConnectorError, first_line

FUNCTIONS = {"pstn": "getPstnCalls", "direct_routing": "getDirectRoutingCalls"}
TRANSIENT = {429: "throttled", 500: "unavailable", 502: "unavailable", 503: "unavailable",
             504: "unavailable"}
OPENID_SUFFIX = "/v2.0/.well-known/openid-configuration"


@dataclass
class Credential:
    client_secret: str = ""
    private_key_pem: str = ""
    thumbprint: str = ""

    def for_msal(self):
        if self.private_key_pem:
            return {"private_key": self.private_key_pem, "thumbprint": self.thumbprint}
        return self.client_secret


@dataclass
class Page:
    url: str
    rows: list
    next_link: str | None
    context: str = ""


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    waited: float = 0.0
    tokens: int = 0
    waits: list = field(default_factory=list)


def ca_bundle() -> str | bool:
    """The CA bundle the standard variables name, else True (the system's and certifi's)."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or True


def graph_time(value: datetime) -> str:
    """A DateTimeOffset literal as Graph's function parameters take it (UTC, seconds)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: a number of seconds, or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class _Session(requests.Session):
    """requests with the connector's timeout and CA bundle on every request.

    A replaced sign-in address may be a copy of the token endpoint that does not serve
    OpenID discovery: when it answers 404 there, the configuration is built from the
    documented layout (`<address>/<tenant>/oauth2/v2.0/token`). Microsoft itself answers 400
    with AADSTS90002 for an unknown tenant, which still fails as it should."""

    def __init__(self, timeout: float, discovery_fallback: bool):
        super().__init__()
        self.connector_timeout = timeout
        self.discovery_fallback = discovery_fallback
        self.verify = ca_bundle()

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("timeout", self.connector_timeout)
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.connector_timeout
        response = super().request(method, url, *args, **kwargs)
        if (self.discovery_fallback and method.upper() == "GET"
                and url.endswith(OPENID_SUFFIX) and response.status_code == 404):
            return _documented_configuration(url)
        return response


def _documented_configuration(url: str) -> requests.Response:
    base = url[: -len(OPENID_SUFFIX)]
    body = {"token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "issuer": base + "/v2.0"}
    response = requests.Response()
    response.status_code = 200
    response._content = json.dumps(body).encode()
    response.headers["Content-Type"] = "application/json"
    response.url = url
    return response


class GraphClient:
    def __init__(self, *, tenant_id: str, client_id: str, credential: Credential,
                 cloud: str = "global", sleep: Callable[[float], None] = time.sleep,
                 on_wait: Callable[[float], None] | None = None,
                 max_retries: int | None = None, max_backoff: float | None = None,
                 timeout: float | None = None):
        self.tenant_id = tenant_id.strip()
        self.client_id = client_id.strip()
        self.credential = credential
        self.endpoints: Endpoints = endpoints(cloud)
        self.sleep = sleep
        self.on_wait = on_wait
        self.max_retries = settings.MS_PULL_MAX_RETRIES if max_retries is None else max_retries
        self.max_backoff = (settings.MS_PULL_MAX_BACKOFF_SECONDS if max_backoff is None
                            else max_backoff)
        self.timeout = settings.MS_HTTP_TIMEOUT if timeout is None else timeout
        self.session = _Session(self.timeout, self.endpoints.login_replaced)
        self.stats = ClientStats()
        self._app = None
        self._token: str | None = None

    # --- sign-in ------------------------------------------------------------------------

    def _application(self):
        if self._app is None:
            replaced = self.endpoints.login_replaced
            try:
                self._app = msal.ConfidentialClientApplication(
                    self.client_id, client_credential=self.credential.for_msal(),
                    authority=f"{self.endpoints.login}/{self.tenant_id}",
                    http_client=self.session, timeout=self.timeout,
                    token_cache=msal.TokenCache(),
                    # Known Microsoft hosts need no discovery; a replaced one cannot have it.
                    instance_discovery=False if replaced else None,
                    validate_authority=not replaced,
                )
            except requests.RequestException as exc:
                raise ConnectorError("sign_in_unreachable", _network(exc)) from exc
            except ValueError as exc:
                # msal's words for a tenant whose OpenID configuration does not exist.
                raise ConnectorError("tenant_not_found", first_line(str(exc))) from exc
        return self._app

    def token(self, *, fresh: bool = False) -> str:
        if self._token and not fresh:
            return self._token
        app = self._application()
        if fresh:
            cache = app.token_cache
            for item in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                cache.remove_at(item)
        try:
            result = app.acquire_token_for_client(scopes=[self.endpoints.scope])
        except requests.RequestException as exc:
            raise ConnectorError("sign_in_unreachable", _network(exc)) from exc
        except ValueError as exc:
            raise ConnectorError("sign_in_failed", first_line(str(exc))) from exc
        if not isinstance(result, dict) or "access_token" not in result:
            raise sign_in_error(result if isinstance(result, dict) else {})
        self.stats.tokens += 1
        self._token = result["access_token"]
        return self._token

    # --- Graph --------------------------------------------------------------------------

    def function_url(self, kind: str, start: datetime, end: datetime) -> str:
        return (f"{self.endpoints.graph}/v1.0/communications/callRecords/{FUNCTIONS[kind]}"
                f"(fromDateTime={graph_time(start)},toDateTime={graph_time(end)})")

    def _own_link(self, link: str) -> str:
        """A nextLink on the cloud's Graph host goes to the replaced address (a proxy); a link
        to any other host is refused: the bearer token goes to Graph only."""
        graph = self.endpoints.graph
        if self.endpoints.graph_replaced and link.startswith(self.endpoints.cloud_graph + "/"):
            link = graph + link[len(self.endpoints.cloud_graph):]
        ours, theirs = urlsplit(graph), urlsplit(link)
        if (theirs.scheme, theirs.netloc.lower()) != (ours.scheme, ours.netloc.lower()):
            raise ConnectorError("bad_response", f"@odata.nextLink leads elsewhere: {link[:200]}")
        return link

    def page(self, url: str) -> Page:
        """One page, with the retries of the module's docstring."""
        attempt = 0
        refreshed = False
        while True:
            token = self.token()
            self.stats.requests += 1
            code, detail, response = None, "", None
            try:
                response = self.session.get(url, headers={"Authorization": f"Bearer {token}",
                                                          "Accept": "application/json"})
            except requests.RequestException as exc:
                code, detail = "unreachable", _network(exc)
            else:
                status = response.status_code
                if status == 200:
                    return _parse_page(url, response)
                if status == 401 and not refreshed:
                    refreshed = True
                    self.token(fresh=True)
                    continue
                if status == 401:
                    raise ConnectorError("token_rejected", _graph_error(response))
                if status == 403:
                    raise ConnectorError("permission", _graph_error(response))
                if status in TRANSIENT:
                    code, detail = TRANSIENT[status], f"HTTP {status} {_graph_error(response)}"
                else:
                    raise ConnectorError("bad_request", f"HTTP {status} {_graph_error(response)}")
            attempt += 1
            if attempt > self.max_retries:
                raise ConnectorError(code, detail)
            delay = None
            if response is not None:
                delay = retry_after_seconds(response.headers.get("Retry-After"))
            if delay is None:
                delay = 2.0 ** attempt
            delay = min(delay, float(self.max_backoff))
            self.stats.retries += 1
            self.stats.waited += delay
            self.stats.waits.append(delay)
            if self.on_wait is not None:
                self.on_wait(delay)
            self.sleep(delay)

    def pages(self, kind: str, start: datetime, end: datetime,
              first_url: str | None = None) -> Iterator[Page]:
        # A saved link (a resumed pull) is checked as Graph's own links are.
        url = self._own_link(first_url) if first_url else self.function_url(kind, start, end)
        while url:
            page = self.page(url)
            yield page
            url = self._own_link(page.next_link) if page.next_link else None

    def check(self, now: datetime) -> int:
        """Test connection: a token, then one small call (the last hour of PSTN calls).
        Returns the rows of that first page."""
        self.token()
        from datetime import timedelta

        return len(self.page(self.function_url("pstn", now - timedelta(hours=1), now)).rows)


def sign_in_error(result: dict) -> ConnectorError:
    codes = result.get("error_codes") or []
    description = first_line(result.get("error_description") or result.get("error") or "")
    for number in codes:
        if isinstance(number, int) and number in AADSTS:
            return ConnectorError(AADSTS[number], description)
    for number, code in AADSTS.items():
        if f"AADSTS{number}:" in description:
            return ConnectorError(code, description)
    return ConnectorError("sign_in_failed", description)


def _parse_page(url: str, response: requests.Response) -> Page:
    try:
        body = response.json()
    except ValueError as exc:
        raise ConnectorError("bad_response", f"not JSON: {response.text[:200]!r}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        raise ConnectorError("bad_response", 'expected {"value": [...]}')
    link = body.get("@odata.nextLink") or body.get("@odata.NextLink")
    if link is not None and not isinstance(link, str):
        raise ConnectorError("bad_response", "@odata.nextLink is not a string")
    return Page(url=url, rows=body["value"], next_link=link or None,
                context=str(body.get("@odata.context") or ""))


def _graph_error(response: requests.Response) -> str:
    """Graph's `{"error": {"code", "message"}}` as "code: message"."""
    try:
        error = response.json().get("error") or {}
        return first_line(f"{error.get('code', '')}: {error.get('message', '')}".strip(": "))
    except (ValueError, AttributeError):
        return first_line(response.text[:300])


def _network(exc: Exception) -> str:
    return first_line(f"{type(exc).__name__}: {exc}")
