"""The Direct Routing endpoints of the JSON API (DESIGN.md section 8), the same shapes as
the PSTN ones with Graph's `directRoutingLogRow` fields. Mounted by usage.api's router;
`request.auth` is the Organization of the bearer token. These calls are stored and listed,
never charged (the organization's own carrier bills them)."""

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from credits.platform.api import ApiText
from credits.platform.services import Actor, ServiceError

from . import api_calls, ingest
from .direct_routing_store import (
    as_graph,
    decode_cursor,
    direct_routing_ingest,
    direct_routing_page,
    encode_cursor,
)

router = Router(tags=["direct routing"])

ODATA_CONTEXT = ("https://graph.microsoft.com/v1.0/$metadata"
                 "#Collection(microsoft.graph.callRecords.directRoutingLogRow)")


class DirectRoutingCallsIn(Schema):
    value: list[Any] = Field(
        ..., max_length=ingest.MAX_ROWS_PER_BATCH,
        description="Up to 1000 Microsoft Graph `directRoutingLogRow` objects, with Graph's "
                    "field names (id, correlationId, userId, userPrincipalName, "
                    "userDisplayName, startDateTime, inviteDateTime, failureDateTime, "
                    "endDateTime, duration, callType, successfulCall, callerNumber, "
                    "calleeNumber, mediaPathLocation, signalingLocation, finalSipCode, "
                    "callEndSubReason, finalSipCodePhrase, trunkFullyQualifiedDomainName, "
                    "mediaBypassEnabled), plus the export's userCountryCode and "
                    "sharedCorrelationId. `id` is the idempotency key (without one, the "
                    "call leg's correlationId, type, times and user). Each row is "
                    "validated on its own. These calls are never charged to credits.",
    )


class DirectRoutingCallsResult(Schema):
    accepted: int = Field(..., description="Rows stored now.")
    duplicates: int = Field(..., description="Rows already stored (same id, or the same "
                                             "call leg from Microsoft's CSV export).")
    rejected: list[api_calls.RejectedRow]


class DirectRoutingCallOut(Schema):
    id: str
    correlationId: str | None
    userId: str | None
    userPrincipalName: str | None
    userDisplayName: str | None
    startDateTime: datetime
    inviteDateTime: datetime | None
    failureDateTime: datetime | None
    endDateTime: datetime | None
    duration: int
    callType: str | None
    successfulCall: bool
    callerNumber: str | None
    calleeNumber: str | None
    mediaPathLocation: str | None
    signalingLocation: str | None
    finalSipCode: int | None
    callEndSubReason: int | None
    finalSipCodePhrase: str | None
    trunkFullyQualifiedDomainName: str | None
    mediaBypassEnabled: bool | None
    userCountryCode: str | None = Field(..., description="From Microsoft's CSV export (User "
                                                         "country); not in Graph v1.0.")
    sharedCorrelationId: str | None = Field(..., description="From Microsoft's CSV export "
                                                             "only.")


class DirectRoutingCallsPage(Schema):
    odata_context: str = Field(..., alias="@odata.context")
    odata_count: int = Field(..., alias="@odata.count")
    value: list[DirectRoutingCallOut]
    odata_next_link: str | None = Field(None, alias="@odata.nextLink")


@router.post("/direct-routing-calls",
             response={200: DirectRoutingCallsResult, **api_calls.BODY_ERRORS},
             summary="Post Direct Routing calls (Graph directRoutingLogRow, up to 1000)")
def post_direct_routing_calls(request, body: DirectRoutingCallsIn):
    try:
        result = direct_routing_ingest(
            organization=request.auth, rows=body.value, source="api",
            actor=Actor.system(f"api token {request.api_token.prefix}"))
    except ServiceError as exc:
        raise HttpError(400, exc.message) from exc
    return {"accepted": result.accepted, "duplicates": result.duplicates,
            "rejected": result.rejected}


@router.get("/direct-routing-calls", response={200: DirectRoutingCallsPage, **api_calls.ERRORS},
            by_alias=True,
            summary="Direct Routing calls that started in a range of at most 90 days, 1000 "
                    "per page",
            description="The calls whose start time is from `fromDateTime` to `toDateTime`, "
                        "both included. Graph's getDirectRoutingCalls documents `toDateTime` "
                        "as exclusive; it is inclusive here, as on `GET /pstn-calls`, so a "
                        "caller that asks for [from, to) may receive calls that started at "
                        "`to` exactly. A range over 90 days, or one that ends before it "
                        "starts, is refused (400).")
def get_direct_routing_calls(
    request,
    fromDateTime: Annotated[datetime, Query(description="UTC, inclusive (call start)")],
    toDateTime: Annotated[datetime, Query(description="UTC, inclusive (call start)")],
    skiptoken: Annotated[ApiText | None, Query(alias="$skiptoken",
                                               description="From `@odata.nextLink`, "
                                                           "as given (signed).")] = None,
):
    start, end = api_calls.start_range(fromDateTime, toDateTime)
    after = api_calls.page_after(skiptoken, decode_cursor)
    rows, next_cursor = direct_routing_page(organization=request.auth, start=start, end=end,
                                            after=after, size=api_calls.PAGE_SIZE)
    link = None
    if next_cursor is not None:
        query = urlencode({"fromDateTime": start.isoformat(), "toDateTime": end.isoformat(),
                           "$skiptoken": encode_cursor(*next_cursor)})
        link = request.build_absolute_uri(f"{request.path}?{query}")
    return {"@odata.context": ODATA_CONTEXT, "@odata.count": len(rows),
            "value": [as_graph(c) for c in rows], "@odata.nextLink": link}
