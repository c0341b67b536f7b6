"""The background run of a people or license CSV uploaded on Users > Add multiple users."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..platform.models import Organization, Person

__all__ = ["PeopleImportJob", "PeopleImportRow", "PeopleImportStatus"]


class PeopleImportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class PeopleImportJob(models.Model):
    """One uploaded file, applied row by row by credits.people_import (in the request for a
    small file, by a Celery task for a large one). The file's bytes are kept here until the
    run ends, so the worker needs no shared disk; the uploader's permissions are frozen at
    upload time. Every row's outcome is a PeopleImportRow."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    requester = models.ForeignKey(Person, on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="+")
    file_name = models.CharField(max_length=200)
    file_size = models.PositiveIntegerField(default=0)
    data = models.BinaryField(default=b"", blank=True)
    grow_seats = models.BooleanField(default=False)
    may_create_people = models.BooleanField(default=False)
    may_set_roles = models.BooleanField(default=False)
    status = models.CharField(max_length=8, choices=PeopleImportStatus.choices,
                              default=PeopleImportStatus.QUEUED)
    kind = models.CharField(max_length=8, blank=True)  # "people" | "licenses"
    rows_total = models.PositiveIntegerField(null=True, blank=True)
    rows_done = models.PositiveIntegerField(default=0)
    taken = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"],
                                name="people_import_org_created")]

    def __str__(self):
        return f"people import {self.pk} {self.file_name} {self.status}"

    @property
    def is_active(self) -> bool:
        return self.status in (PeopleImportStatus.QUEUED, PeopleImportStatus.RUNNING)

    @property
    def progress(self) -> int:
        if not self.rows_total:
            return 100 if self.status == PeopleImportStatus.DONE else 0
        return min(100, self.rows_done * 100 // self.rows_total)


class PeopleImportRow(models.Model):
    """The outcome of one row of an uploaded file (people_import.RowResult)."""

    job = models.ForeignKey(PeopleImportJob, on_delete=models.CASCADE, related_name="rows")
    line = models.PositiveIntegerField()
    upn = models.CharField(max_length=256, blank=True)
    ok = models.BooleanField()
    code = models.CharField(max_length=40, blank=True)
    message = models.TextField(blank=True)
    sku = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["line", "id"]
        indexes = [models.Index(fields=["job", "line"], name="people_import_row_line"),
                   models.Index(fields=["job", "ok", "line"], name="people_import_row_ok")]

    def __str__(self):
        return f"{self.line} {self.upn} {'ok' if self.ok else self.code}"
