"""A local copy of the parts of Microsoft's sign-in service and Graph the connector uses,
served over HTTPS on 127.0.0.1 by a thread, with a certificate from a test CA (trustme).

Written from Microsoft's documentation, not from this project's code:
- OpenID discovery `GET /{tenant}/v2.0/.well-known/openid-configuration`, and the token
  endpoint `POST /{tenant}/oauth2/v2.0/token` of the client credentials flow
  (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow):
  success `{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
  "access_token": ...}`; errors `{"error", "error_description": "AADSTSnnn: ...",
  "error_codes": [nnn], "timestamp", "trace_id", "correlation_id"}` with AADSTS90002
  (tenant not found), AADSTS700016 (application not found), AADSTS7000215 (invalid secret);
- `GET /v1.0/communications/callRecords/getPstnCalls(fromDateTime=..,toDateTime=..)` and
  `getDirectRoutingCalls(...)` ("callRecord: getPstnCalls", "callRecord:
  getDirectRoutingCalls"): `@odata.context`, `@odata.count` (the rows of the page), `value`,
  and `@odata.nextLink` (`...?$skip=N`) on every page but the last; at most 90 days per
  call; PSTN's toDateTime inclusive, Direct Routing's exclusive; rows are the documented
  examples (pstnCallLogRow, directRoutingLogRow) with their ids and times changed;
- Graph's errors `{"error": {"code", "message", "innerError"}}`: 401
  InvalidAuthenticationToken (an expired token), 403 Authorization_RequestDenied (no
  application permission or no admin consent), 429 TooManyRequests and 503
  serviceNotAvailable with `Retry-After` ("Microsoft Graph throttling guidance").
"""

import base64
import json
import re
import ssl
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import trustme

TENANT = "d5a2b3c4-1e2f-4a5b-8c9d-0e1f2a3b4c5d"
CLIENT_ID = "6731de76-14a6-49ae-97bc-6eba6914391e"
SECRET = "qW8Q~fake.secret-value_for~tests0123456789"

FUNCTION = re.compile(r"^/v1\.0/communications/callRecords/(getPstnCalls|getDirectRoutingCalls)"
                      r"\(fromDateTime=([^,()]+),toDateTime=([^,()]+)\)$")
CONTEXTS = {
    "getPstnCalls": "$metadata#Collection(microsoft.graph.callRecords.pstnCallLogRow)",
    "getDirectRoutingCalls":
        "$metadata#Collection(microsoft.graph.callRecords.directRoutingLogRow)",
}


def _time(value: datetime) -> str:
    # Graph writes seven fractional digits (.NET ticks) in pstnCallLogRow's example.
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def pstn_row(n: int, start: datetime, **fields) -> dict:
    """The documented pstnCallLogRow example with its own id and times."""
    row = {
        "id": str(uuid.UUID(int=0x9C4984C76C3C427DA30CBD0B2EACEE90 + n)),
        "callId": f"1835317186_{112562680 + n}@61.221.3.176",
        "userId": "db03c14b-06eb-4189-939b-7cbf3a20ba27",
        "userPrincipalName": "richard.malk@contoso.com",
        "userDisplayName": "Richard Malk",
        "startDateTime": _time(start),
        "endDateTime": _time(start + timedelta(seconds=219)),
        "duration": 219,
        "charge": 0.00,
        "callType": "user_in",
        "currency": "USD",
        "calleeNumber": "+1234567890",
        "usageCountryCode": "US",
        "tenantCountryCode": "US",
        "connectionCharge": 0.00,
        "callerNumber": "+0123456789",
        "destinationContext": None,
        "destinationName": "United States",
        "conferenceId": None,
        "licenseCapability": "MCOPSTNU",
        "inventoryType": "Subscriber",
        "operator": "Microsoft",
        "callDurationSource": "microsoft",
    }
    row.update(fields)
    return row


def dr_row(n: int, start: datetime, **fields) -> dict:
    """The documented directRoutingLogRow example with its own ids and times."""
    row = {
        "id": str(uuid.UUID(int=0x9E8BBA57DC14533AA7DDF0DA6575EED1 + n)),
        "correlationId": str(uuid.UUID(int=0xC98E1515A9374B81B8A83992AFDE64E0 + n)),
        "userId": "db03c14b-06eb-4189-939b-7cbf3a20ba27",
        "userPrincipalName": "richard.malk@contoso.com",
        "userDisplayName": "Richard Malk",
        "startDateTime": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "inviteDateTime": (start - timedelta(seconds=3)).astimezone(UTC)
        .strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "failureDateTime": "0001-01-01T00:00:00Z",
        "endDateTime": (start + timedelta(seconds=5)).astimezone(UTC)
        .strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "duration": 5,
        "callType": "ByotIn",
        "successfulCall": True,
        "callerNumber": "+12345678***",
        "calleeNumber": "+01234567***",
        "mediaPathLocation": "USWE",
        "signalingLocation": "EUNO",
        "finalSipCode": 0,
        "callEndSubReason": 540000,
        "finalSipCodePhrase": "BYE",
        "trunkFullyQualifiedDomainName": "tll-audiocodes01.adatum.biz",
        "mediaBypassEnabled": False,
    }
    row.update(fields)
    return row


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(unquote(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _inner() -> dict:
    return {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "request-id": str(uuid.uuid4()), "client-request-id": str(uuid.uuid4())}


def _sts_error(error: str, code: int, text: str) -> dict:
    trace, correlation = uuid.uuid4(), uuid.uuid4()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return {"error": error,
            "error_description": f"AADSTS{code}: {text}\r\nTrace ID: {trace}\r\n"
                                 f"Correlation ID: {correlation}\r\nTimestamp: {stamp}",
            "error_codes": [code], "timestamp": stamp, "trace_id": str(trace),
            "correlation_id": str(correlation)}


class FakeGraph:
    def __init__(self, *, tenant: str = TENANT, client_id: str = CLIENT_ID,
                 secret: str = SECRET, page_size: int = 1000):
        self.tenant, self.client_id, self.secret = tenant, client_id, secret
        self.page_size = page_size
        self.pstn_rows: list[dict] = []
        self.dr_rows: list[dict] = []
        self.faults: list[dict] = []
        self.requests: list[tuple[str, str]] = []
        self.tokens: dict[str, bool] = {}  # token -> still valid
        self.consent = True
        self.delay = 0.0
        self.thumbprint = ""  # set: a certificate's client assertion is accepted
        self.lock = threading.Lock()
        self.ca = trustme.CA()
        self._cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self._server = None
        self.base = ""

    # --- life -------------------------------------------------------------------------

    def start(self) -> "FakeGraph":
        fake = self

        class Handler(_Handler):
            graph = fake

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._cert.configure_cert(context)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self.base = f"https://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def write_ca(self, path) -> str:
        self.ca.cert_pem.write_to_path(str(path))
        return str(path)

    # --- scripting ----------------------------------------------------------------------

    def fail(self, *, status: int, function: str | None = None, skip: int | None = None,
             times: int = 1, retry_after: str | None = None, body: dict | None = None):
        """The next `times` requests to `function` (page `skip`) answer `status`."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        if body is None:
            body = {429: {"error": {"code": "TooManyRequests", "message":
                                    "Too many requests, please retry later.",
                                    "innerError": _inner()}},
                    503: {"error": {"code": "serviceNotAvailable", "message":
                                    "The service is temporarily unavailable.",
                                    "innerError": _inner()}},
                    }.get(status, {"error": {"code": "generalException",
                                             "message": "An internal error occurred."}})
        self.faults.append({"function": function, "skip": skip, "status": status,
                            "headers": headers, "body": body, "times": times})

    def expire_tokens(self) -> None:
        with self.lock:
            for token in self.tokens:
                self.tokens[token] = False

    def graph_requests(self, function: str | None = None) -> list[str]:
        return [path for method, path in self.requests
                if method == "GET" and "/callRecords/" in path
                and (function is None or f"/{function}(" in path)]

    def tokens_issued(self) -> int:
        return sum(1 for method, path in self.requests if path.endswith("/oauth2/v2.0/token"))

    def _fault_for(self, function: str, skip: int) -> dict | None:
        with self.lock:
            for fault in self.faults:
                if fault["times"] > 0 and fault["function"] in (None, function) \
                        and fault["skip"] in (None, skip):
                    fault["times"] -= 1
                    return fault
        return None


class _Handler(BaseHTTPRequestHandler):
    graph: FakeGraph
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        g = self.graph
        with g.lock:
            g.requests.append(("GET", self.path))
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        if path.endswith("/v2.0/.well-known/openid-configuration"):
            tenant = path.split("/")[1]
            if tenant != g.tenant:
                return self._send(400, _sts_error(
                    "invalid_tenant", 90002,
                    f"Tenant '{tenant}' not found. Check to make sure you have the correct "
                    "tenant ID and are signing into the correct cloud."))
            base = f"{g.base}/{tenant}"
            return self._send(200, {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "issuer": f"{g.base}/{tenant}/v2.0",
                "token_endpoint_auth_methods_supported": ["client_secret_post",
                                                          "private_key_jwt"],
            })
        match = FUNCTION.match(path)
        if not match:
            return self._send(404, {"error": {"code": "BadRequest", "message":
                                              f"Resource not found for the segment "
                                              f"'{path.rsplit('/', 1)[-1]}'.",
                                              "innerError": _inner()}})
        function, start, end = match.group(1), _parse_time(match.group(2)), \
            _parse_time(match.group(3))
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with g.lock:
            valid = g.tokens.get(token)
        if not valid:
            return self._send(401, {"error": {
                "code": "InvalidAuthenticationToken",
                "message": "Access token has expired or is not yet valid.",
                "innerError": _inner()}}, {"WWW-Authenticate": 'Bearer realm=""'})
        if not g.consent:
            return self._send(403, {"error": {
                "code": "Authorization_RequestDenied",
                "message": "Insufficient privileges to complete the operation.",
                "innerError": _inner()}})
        skip = int(parse_qs(parts.query).get("$skip", ["0"])[0])
        fault = g._fault_for(function, skip)
        if fault is not None:
            return self._send(fault["status"], fault["body"], fault["headers"])
        if end - start > timedelta(days=90):
            return self._send(400, {"error": {
                "code": "BadRequest",
                "message": "The date range cannot exceed 90 days.",
                "innerError": _inner()}})
        if g.delay:
            time.sleep(g.delay)
        rows = g.pstn_rows if function == "getPstnCalls" else g.dr_rows
        inclusive = function == "getPstnCalls"
        chosen = [r for r in rows
                  if start <= _parse_time(r["startDateTime"])
                  and (_parse_time(r["startDateTime"]) <= end if inclusive
                       else _parse_time(r["startDateTime"]) < end)]
        page = chosen[skip:skip + g.page_size]
        body = {"@odata.context": f"{g.base}/v1.0/{CONTEXTS[function]}",
                "@odata.count": len(page), "value": page}
        if skip + g.page_size < len(chosen):
            body["@odata.nextLink"] = (f"{g.base}/v1.0/communications/callRecords/{function}"
                                       f"(fromDateTime={match.group(2)},"
                                       f"toDateTime={match.group(3)})?$skip="
                                       f"{skip + g.page_size}")
        return self._send(200, body)

    def do_POST(self):  # noqa: N802
        g = self.graph
        with g.lock:
            g.requests.append(("POST", self.path))
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        path = unquote(urlsplit(self.path).path)
        if not path.endswith("/oauth2/v2.0/token"):
            return self._send(404, {"error": "not_found"})
        tenant = path.split("/")[1]
        if tenant != g.tenant:
            return self._send(400, _sts_error(
                "invalid_request", 90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct "
                "tenant ID and are signing into the correct cloud."))
        if form.get("grant_type") != "client_credentials":
            return self._send(400, _sts_error("unsupported_grant_type", 70003,
                                              "The app requested an unsupported grant type."))
        if form.get("client_id") != g.client_id:
            return self._send(400, _sts_error(
                "unauthorized_client", 700016,
                f"Application with identifier '{form.get('client_id')}' was not found in the "
                f"directory '{tenant}'. This can happen if the application has not been "
                "installed by the administrator of the tenant or consented to by any user "
                "in the tenant."))
        if not (form.get("scope") or "").endswith("/.default"):
            return self._send(400, _sts_error(
                "invalid_scope", 1002012, "The provided value for scope is not valid. "
                "Client credential flows must have a scope value with /.default suffixed to "
                "the resource identifier (application ID URI)."))
        if "client_assertion" in form:
            header = form["client_assertion"].split(".")[0]
            decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
            x5t = decoded.get("x5t") or ""
            thumb = base64.urlsafe_b64decode(x5t + "=" * (-len(x5t) % 4)).hex().upper() \
                if x5t else ""
            if not g.thumbprint or thumb != g.thumbprint:
                return self._send(401, _sts_error(
                    "invalid_client", 700027,
                    "Client assertion contains an invalid signature."))
        elif form.get("client_secret") != g.secret:
            return self._send(401, _sts_error(
                "invalid_client", 7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request "
                "is the client secret value, not the client secret ID, for a secret added to "
                f"app '{g.client_id}'."))
        token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + uuid.uuid4().hex
        with g.lock:
            g.tokens[token] = True
        return self._send(200, {"token_type": "Bearer", "expires_in": 3599,
                                "ext_expires_in": 3599, "access_token": token})
