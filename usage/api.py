"""The usage endpoints of the JSON API (DESIGN.md section 8), mounted under /api/v1/ by
config/api.py. `request.auth` is the Organization of the bearer token."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode

from django.http import JsonResponse
from django.utils import timezone
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError
from pydantic import BaseModel

from credits.platform.api import ApiText  # one text type of every input
from credits.platform.services import Actor, ServiceError

from . import ingest, masking
from .api_auth import ReadWithFactsToken, token_admitted
from .api_calls import (
    BODY_ERRORS,
    ERRORS,
    PAGE_SIZE,
    RejectedRow,
    page_after,
    start_range,
)
from .authorize import REASONS, call_authorize_by_token
from .selectors import call_records_page, decode_cursor, encode_cursor
from .services import calls_ingest

router = Router(tags=["usage"])

ODATA_CONTEXT = "$metadata#Collection(microsoft.graph.callRecords.pstnCallLogRow)"
JSON_UTF8 = "application/json; charset=utf-8"  # what ninja's renderer sends


class PstnCallsIn(Schema):
    value: list[Any] = Field(
        ..., max_length=ingest.MAX_ROWS_PER_BATCH,
        description="Up to 1000 Microsoft Graph `pstnCallLogRow` objects, with Graph's field "
                    "names (id, callId, userId, userPrincipalName, userDisplayName, "
                    "startDateTime, endDateTime, duration, charge, connectionCharge, "
                    "currency, callType, calleeNumber, callerNumber, usageCountryCode, "
                    "tenantCountryCode, destinationContext, destinationName, conferenceId, "
                    "licenseCapability, inventoryType, operator, callDurationSource, "
                    "otherPartyCountryCode). "
                    "`id` is the idempotency key. Each row is validated on its own; text "
                    "fields are held to the lengths of Microsoft's PSTN usage export "
                    "(callerNumber 128, calleeNumber 32, ...) and `callDurationSource` to "
                    "Graph's enum (microsoft, operator).",
    )


class PstnCallsResult(Schema):
    accepted: int = Field(..., description="Rows stored (and rated, and charged) now.")
    duplicates: int = Field(..., description="Rows whose id was already stored: not charged "
                                             "again.")
    rejected: list[RejectedRow]


class PstnCallOut(Schema):
    id: str
    callId: str
    userId: str
    userPrincipalName: str
    userDisplayName: str
    startDateTime: datetime
    endDateTime: datetime | None
    duration: int
    charge: float = Field(..., description="What Communications Credits paid, as this "
                                           "system rated the call (account currency); a "
                                           "JSON number, as Graph's double.")
    connectionCharge: float
    currency: str = Field(..., description="The organization's billing currency.")
    callType: str
    calleeNumber: str = Field(..., description="Masked as Microsoft masks it for a tenant "
                                               "of a masking country (the other party's "
                                               "number only), as the report shows it.")
    callerNumber: str
    usageCountryCode: str
    tenantCountryCode: str
    destinationContext: str | None
    destinationName: str
    conferenceId: str | None
    licenseCapability: str = Field(..., description="The license that paid, as rated here "
                                                    "(MCOPSTNPP when credits paid).")
    inventoryType: str
    operator: str
    callDurationSource: str
    otherPartyCountryCode: str | None = Field(..., description="Graph's (beta) country of "
                                                               "the other party; the "
                                                               "report's \"From country or "
                                                               "region\".")
    chargedTo: str | None = Field(..., description="plan_pool, conference_pool, credits, "
                                                   "free; null when the call is unrated.")
    billableSeconds: int
    poolMinutes: int
    rated: bool
    unratedReason: str | None
    reportedCharge: float | None = Field(..., description="Microsoft's reported `charge`.")
    reportedConnectionCharge: float | None
    reportedCurrency: str | None
    reportedLicenseCapability: str | None


class PstnCallsPage(Schema):
    odata_context: str = Field(..., alias="@odata.context")
    odata_count: int = Field(..., alias="@odata.count")
    value: list[PstnCallOut]
    odata_next_link: str | None = Field(None, alias="@odata.nextLink")


class AuthorizeIn(BaseModel):
    """A plain pydantic model, not ninja's Schema: a JSON body needs none of Schema's
    reading of Django objects, which wraps every input in a getter before validating it."""

    userPrincipalName: ApiText = Field(..., min_length=1, max_length=128)
    calleeNumber: ApiText = Field(..., min_length=1, max_length=64,
                                  description="E.164, e.g. +33123456789")
    callType: ApiText = Field(..., min_length=1, max_length=32,
                              description="user_out, conf_out, ucap_out, ... (call-types.csv)")


class AuthorizeOut(Schema):
    allowed: bool
    reason: str | None = Field(..., description="Why not: " + "; ".join(
        f"`{k}` {v}" for k, v in REASONS.items()))
    chargedTo: str | None = Field(..., description="What would pay: plan_pool, "
                                                   "conference_pool, credits or free.")
    maxDurationSeconds: int | None = Field(
        ..., description="How long the call may last: what the pool and the balance pay for "
                         "at this rate, connection fee and first increment included; null "
                         "when unlimited (free) or refused.")


@router.post("/pstn-calls", response={200: PstnCallsResult, **BODY_ERRORS},
             summary="Post finished PSTN calls (Graph pstnCallLogRow, up to 1000)")
def post_pstn_calls(request, body: PstnCallsIn):
    try:
        result = calls_ingest(
            organization=request.auth, rows=body.value, source="api",
            actor=Actor.system(f"api token {request.api_token.prefix}"),
        )
    except ServiceError as exc:
        raise HttpError(400, exc.message) from exc
    return {"accepted": result.accepted, "duplicates": result.duplicates,
            "rejected": result.rejected}


def _money(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def _row(call, currency: str, digits: int) -> dict:
    # The one masking rule of the report and the exports (usage.masking).
    caller, callee = masking.mask_call_numbers(call.call_type, call.caller_number,
                                               call.callee_number, digits)
    return {
        "id": call.graph_id, "callId": call.call_id, "userId": call.user_id,
        "userPrincipalName": call.upn, "userDisplayName": call.user_display_name,
        "startDateTime": call.start_at, "endDateTime": call.end_at,
        "duration": call.duration_s, "charge": float(call.charge),
        "connectionCharge": float(call.connection_fee.quantize(Decimal("0.01")))
        if call.charged_to == "credits" else 0.0,
        "currency": currency, "callType": call.call_type, "calleeNumber": callee,
        "callerNumber": caller, "usageCountryCode": call.usage_country,
        "tenantCountryCode": call.tenant_country,
        "destinationContext": call.destination_context or None,
        "destinationName": call.destination_name, "conferenceId": call.conference_id or None,
        "licenseCapability": call.capability, "inventoryType": call.inventory_type,
        "operator": call.operator, "callDurationSource": call.call_duration_source,
        "otherPartyCountryCode": call.other_party_country or None,
        "chargedTo": call.charged_to or None, "billableSeconds": call.billable_seconds,
        "poolMinutes": call.pool_minutes, "rated": call.rated,
        "unratedReason": call.unrated_reason or None,
        "reportedCharge": _money(call.reported_charge),
        "reportedConnectionCharge": _money(call.reported_connection_charge),
        "reportedCurrency": call.currency or None,
        "reportedLicenseCapability": call.reported_capability or None,
    }


@router.get("/pstn-calls", response={200: PstnCallsPage, **ERRORS}, by_alias=True,
            summary="PSTN calls that started in a range of at most 90 days, 1000 per page",
            description=(
                "The calls whose start time is from `fromDateTime` to `toDateTime`, both "
                "included (as in Microsoft Graph `getPstnCalls`): equal bounds ask for the "
                "calls that started at that instant. A range over 90 days, or one that ends "
                "before it starts, is refused (400).\n\n"
                "Where this differs from Graph: the bounds are query parameters "
                "(`?fromDateTime=...&toDateTime=...`), not function parameters; pages go on "
                "with `$skiptoken` in `@odata.nextLink`; `@odata.count` is the rows of the "
                "page; `@odata.context` names Graph's type, but no `$metadata` document is "
                "served; `charge`, `connectionCharge` and `licenseCapability` are this "
                "system's rating (Microsoft's are `reportedCharge`, "
                "`reportedConnectionCharge`, `reportedCurrency`, "
                "`reportedLicenseCapability`), and `currency` is the organization's; "
                "`chargedTo`, `billableSeconds`, `poolMinutes`, `rated`, `unratedReason` are "
                "added; string fields Graph leaves null are empty strings, except "
                "`destinationContext`, `conferenceId` and `otherPartyCountryCode`. Numbers "
                "are masked by the organization's country as Microsoft masks them "
                "(domain/number-masking.csv)."))
def get_pstn_calls(
    request,
    fromDateTime: Annotated[datetime, Query(description="UTC, inclusive (call start)")],
    toDateTime: Annotated[datetime, Query(description="UTC, inclusive (call start)")],
    skiptoken: Annotated[ApiText | None, Query(alias="$skiptoken",
                                               description="From `@odata.nextLink`, "
                                                           "as given (signed).")] = None,
):
    start, end = start_range(fromDateTime, toDateTime)
    after = page_after(skiptoken, decode_cursor)
    org = request.auth
    rows, next_cursor = call_records_page(organization=org, start=start, end=end, after=after,
                                          size=PAGE_SIZE)
    digits = masking.digits_masked(org.country)
    link = None
    if next_cursor is not None:
        query = urlencode({"fromDateTime": start.isoformat(), "toDateTime": end.isoformat(),
                           "$skiptoken": encode_cursor(*next_cursor)})
        link = request.build_absolute_uri(f"{request.path}?{query}")
    return {"@odata.context": request.build_absolute_uri("/api/v1/") + ODATA_CONTEXT,
            "@odata.count": len(rows), "value": [_row(c, org.currency, digits) for c in rows],
            "@odata.nextLink": link}


@router.post("/calls/authorize", response={200: AuthorizeOut, **BODY_ERRORS},
             auth=ReadWithFactsToken(),
             summary="May this call start, what would pay, and for how long")
def post_authorize(request, body: AuthorizeIn):
    # The token is read in the same query as the call's facts (one round trip).
    token, decision = call_authorize_by_token(
        raw_token=request.auth.raw, upn=body.userPrincipalName, callee=body.calleeNumber,
        call_type=body.callType, now=timezone.now())
    token_admitted(request, token)
    # Already in AuthorizeOut's shape (tests hold it to the schema): no second validation.
    return JsonResponse(decision.as_json(), content_type=JSON_UTF8)


# Direct Routing calls: the same shapes with Graph's directRoutingLogRow fields.
from .direct_routing_api import router as direct_routing_router  # noqa: E402

router.add_router("/", direct_routing_router)
