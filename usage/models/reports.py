"""Models of the PSTN usage report and its exports (DESIGN.md section 9).

`UsageRollup` and `UsageDestinationRollup` keep per-UTC-day sums of the call records so the
report's tiles, charts and top lists read a few thousand rows whatever the size of the call
table. They are kept current inside the ingestion transaction (`usage.rollups`) and can be
rebuilt from the call records at any time (`rebuild_usage_rollups`).
"""

import secrets
from datetime import timedelta

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from credits.models import Organization, Person

__all__ = [
    "EXPORT_LIFETIME",
    "Export",
    "ExportFormat",
    "ExportStatus",
    "ReportColumnPreference",
    "UsageDestinationRollup",
    "UsagePersonDay",
    "UsageRollup",
]

EXPORT_LIFETIME = timedelta(days=7)


class RollupSums(models.Model):
    """The measures every rollup row carries."""

    calls = models.PositiveIntegerField(default=0)
    duration_s = models.BigIntegerField(default=0)
    billable_s = models.BigIntegerField(default=0)
    credit_s = models.BigIntegerField(default=0)  # seconds paid with credits
    pool_minutes = models.BigIntegerField(default=0)
    charge = models.DecimalField(max_digits=18, decimal_places=2, default=0)

    class Meta:
        abstract = True


class UsageRollup(RollupSums):
    """Sums of one UTC day's calls for one combination of the report's filter dimensions.

    `person_key` is the call's person id, 0 for calls matched to nobody (auto attendants,
    people not in the directory): a plain integer so the row's unique key has no NULL and
    `INSERT ... ON CONFLICT` can add to it. `upn` is kept only for person_key 0, so a person
    whose UPN is spelt two ways stays one row.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    person_key = models.BigIntegerField(default=0)
    upn = models.CharField(max_length=128, blank=True)
    call_type = models.CharField(max_length=32)
    context = models.CharField(max_length=16, blank=True)  # "domestic" / "international" / ""
    charged_to = models.CharField(max_length=16, blank=True)
    capability = models.CharField(max_length=32, blank=True)
    # Not a key: the latest display name seen, for people-less rows of the top spenders.
    user_name = models.CharField(max_length=128, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "day", "person_key", "upn", "call_type", "context",
                        "charged_to", "capability"],
                name="usage_rollup_key",
            ),
        ]

    def __str__(self):
        return f"{self.day} {self.call_type} {self.calls}"


class UsagePersonDay(RollupSums):
    """The same sums by day and person only: the report without call-type, context, payer
    or capability filters (its usual view) reads this lean table, whose size follows the
    people active each day rather than the calls."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    person_key = models.BigIntegerField(default=0)
    upn = models.CharField(max_length=128, blank=True)
    user_name = models.CharField(max_length=128, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "day", "person_key", "upn"],
                                    name="usage_person_day_key"),
        ]

    def __str__(self):
        return f"{self.day} {self.person_key} {self.calls}"


class UsageDestinationRollup(RollupSums):
    """Per-day sums by destination dialled (the report's top destinations), without the
    person dimension so it stays small; a report filtered by user reads the call records of
    those people instead (indexed by person)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    destination = models.CharField(max_length=100, blank=True)
    call_type = models.CharField(max_length=32)
    context = models.CharField(max_length=16, blank=True)
    charged_to = models.CharField(max_length=16, blank=True)
    capability = models.CharField(max_length=32, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "day", "destination", "call_type", "context",
                        "charged_to", "capability"],
                name="usage_dest_rollup_key",
            ),
        ]

    def __str__(self):
        return f"{self.day} {self.destination} {self.calls}"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Ready")
    FAILED = "failed", _("Failed")
    EXPIRED = "expired", _("Expired")


class ExportFormat(models.TextChoices):
    XLSX = "xlsx", _("Excel workbook (.xlsx)")
    CSV_ZIP = "csv-zip", _("Microsoft CSV (.zip)")


def _new_token() -> str:
    return secrets.token_urlsafe(32)


def _expiry():
    return timezone.now() + EXPORT_LIFETIME


class Export(models.Model):
    """One background export of the PSTN usage report. The file is served only to people of
    the same organization who may read call rows, under an unguessable token."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="+")
    requester = models.ForeignKey(Person, on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="+")
    format = models.CharField(_("format"), max_length=8, choices=ExportFormat.choices)
    status = models.CharField(_("status"), max_length=8, choices=ExportStatus.choices,
                              default=ExportStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(_("progress"), default=0)
    row_count = models.PositiveIntegerField(_("rows"), default=0)
    # The report's filters as strings (usage.report.ReportFilters.as_dict()).
    filters = models.JSONField(default=dict)
    # Add the Direct Routing calls of the range (a DirectRouting sheet, a
    # DirectRouting.calls.<date>.csv member).
    include_direct_routing = models.BooleanField(default=False)
    token = models.CharField(max_length=64, unique=True, default=_new_token)
    file_path = models.CharField(max_length=300, blank=True)  # relative to EXPORT_DIR
    file_name = models.CharField(max_length=200, blank=True)
    file_size = models.BigIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(_("requested at"), default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(_("expires"), default=_expiry)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="export_org_created"),
            models.Index(fields=["expires_at"], name="export_expiry"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(progress__lte=100),
                                   name="export_progress_max_100"),
        ]

    def __str__(self):
        return f"export {self.pk} {self.format} {self.status}"

    @property
    def is_active(self) -> bool:
        return self.status in (ExportStatus.QUEUED, ExportStatus.RUNNING)


class ReportColumnPreference(models.Model):
    """The columns a person chose for the PSTN usage table (the "Choose columns" action)."""

    person = models.OneToOneField(Person, on_delete=models.CASCADE, related_name="+")
    columns = models.JSONField(default=list)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"columns of {self.person_id}"
