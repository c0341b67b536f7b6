"""Models of the usage app, one module per sub-domain:

- calls: the rate deck, API tokens and call records;
- reports: the report's daily rollups, its exports and column preferences;
- imports: background imports of uploaded call files;
- reconciliation: the reconciliation report's rollups;
- microsoft: the Microsoft Graph connector's connection and pull history.
"""

from .calls import (
    ApiToken,
    CallRecord,
    CallSource,
    ChargedTo,
    Direction,
    NumberType,
    Rate,
    RateDeck,
)
from .direct_routing import DirectRoutingCall
from .imports import ImportJob, ImportStatus
from .microsoft import (
    MicrosoftCloud,
    MicrosoftConnection,
    MicrosoftPullRun,
    PullRunKind,
    PullRunStatus,
)
from .reconciliation import ReconciliationRollup, ReconciliationTopCall
from .reports import (
    EXPORT_LIFETIME,
    Export,
    ExportFormat,
    ExportStatus,
    ReportColumnPreference,
    RollupSums,
    UsageDestinationRollup,
    UsagePersonDay,
    UsageRollup,
)

__all__ = [
    "EXPORT_LIFETIME", "ApiToken", "CallRecord", "CallSource", "ChargedTo", "Direction",
    "DirectRoutingCall", "Export", "ExportFormat", "ExportStatus", "ImportJob", "ImportStatus",
    "NumberType",
    "Rate", "RateDeck", "ReconciliationRollup", "ReconciliationTopCall",
    "MicrosoftCloud", "MicrosoftConnection", "MicrosoftPullRun", "PullRunKind", "PullRunStatus",
    "ReportColumnPreference", "RollupSums", "UsageDestinationRollup",
    "UsagePersonDay", "UsageRollup",
]
