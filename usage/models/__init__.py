"""Models of the usage app, one module per sub-domain:

- calls: the rate deck, API tokens and call records;
- reports: the report's daily rollups, its exports and column preferences;
- imports: background imports of uploaded call files.
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
from .imports import ImportJob, ImportStatus
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
    "Export", "ExportFormat", "ExportStatus", "ImportJob", "ImportStatus", "NumberType",
    "Rate", "RateDeck", "ReportColumnPreference", "RollupSums", "UsageDestinationRollup",
    "UsagePersonDay", "UsageRollup",
]
