"""The background import of a PSTN calls file uploaded on the import page."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from credits.models import Organization, Person

__all__ = ["ImportJob", "ImportStatus"]


class ImportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class ImportJob(models.Model):
    """One uploaded file, imported batch by batch by a Celery task (usage.imports). The
    counters move as batches commit, so the page shows progress; only the first rejected
    rows are kept in detail (`rejected`), the count covers them all. The file itself lives
    under IMPORT_DIR until the job ends."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="+")
    requester = models.ForeignKey(Person, on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="+")
    file_name = models.CharField(_("file"), max_length=200)
    file_size = models.BigIntegerField(default=0)
    file_path = models.CharField(max_length=300, blank=True)  # relative to IMPORT_DIR
    status = models.CharField(_("status"), max_length=8, choices=ImportStatus.choices,
                              default=ImportStatus.QUEUED)
    rows_total = models.PositiveIntegerField(null=True, blank=True)  # once the file is read
    rows_read = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    unrated = models.PositiveIntegerField(default=0)
    # The Direct Routing rows of the file (a zip's DirectRouting.calls.*.csv, Graph
    # directRoutingLogRow JSON); the counters above are the PSTN rows'.
    dr_accepted = models.PositiveIntegerField(default=0)
    dr_duplicates = models.PositiveIntegerField(default=0)
    dr_rejected_count = models.PositiveIntegerField(default=0)
    # What was skipped without failing the import (a zip member of no known name).
    warnings = models.JSONField(default=list, blank=True)
    # The first rejected rows: [{"index", "id", "errors": {field: reason}}], index from 0
    # over the whole file.
    rejected = models.JSONField(default=list, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(_("uploaded at"), default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="import_org_created"),
        ]

    def __str__(self):
        return f"import {self.pk} {self.file_name} {self.status}"

    @property
    def is_active(self) -> bool:
        return self.status in (ImportStatus.QUEUED, ImportStatus.RUNNING)

    @property
    def progress(self) -> int:
        """Percent of the file's rows ingested (0 while the file is being checked)."""
        if not self.rows_total:
            return 100 if self.status == ImportStatus.DONE else 0
        return min(100, self.rows_read * 100 // self.rows_total)
