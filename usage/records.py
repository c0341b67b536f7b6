"""`CallRecordRow`: one call record as ingestion writes it, a named tuple whose fields are
the columns of `usage.models.CallRecord` (all but `id`), in the table's order.

Ingestion builds one per call and hands the same rows to COPY (PostgreSQL), to
`bulk_create` (elsewhere) and to the rollups, which read them by field name: no model
instance is built per call, and no reader depends on a column's position.
"""

from datetime import datetime
from decimal import Decimal
from typing import NamedTuple


class CallRecordRow(NamedTuple):
    organization_id: int
    graph_id: str
    call_id: str
    conference_id: str
    person_id: int | None
    user_id: str
    upn: str
    user_display_name: str
    start_at: datetime
    end_at: datetime | None
    duration_s: int
    call_type: str
    caller_number: str
    callee_number: str
    usage_country: str
    tenant_country: str
    destination_context: str
    destination_name: str
    inventory_type: str
    operator: str
    call_duration_source: str
    currency: str
    reported_charge: Decimal | None
    reported_connection_charge: Decimal | None
    reported_capability: str
    rated: bool
    unrated_reason: str
    charged_to: str
    pool_kind: str
    pool_country: str
    pool_minutes: int
    credit_seconds: int
    billable_seconds: int
    rate_prefix: str
    rate_per_minute: Decimal | None
    connection_fee: Decimal
    charge: Decimal
    capability: str
    destination_country: str
    source: str
    ingested_at: datetime
    other_party_country: str


# The CallRecord columns a row fills, in COPY order.
COLUMNS = CallRecordRow._fields
