"""The Microsoft Graph connector (usage.microsoft): one connection per organization and the
history of its pulls.

A connection holds an Entra app registration's client id, the tenant it reads, the
national cloud, and a client secret or a certificate. The secret and the certificate's
private key are stored encrypted (Fernet, `FIELD_ENCRYPTION_KEY`, usage.microsoft.secrets):
the page shows only a hint, and a new value replaces the old one without it ever being read
back. The watermarks say up to when each kind of call is read; the resume fields hold the
`@odata.nextLink` of a page that failed, so the next pull starts from that page.

At most one pull of an organization runs at a time: a partial unique constraint allows one
`running` row per organization, whatever the number of workers and beats.
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from credits.models import Organization

__all__ = ["MicrosoftCloud", "MicrosoftConnection", "MicrosoftPullRun", "PullRunKind",
           "PullRunStatus"]


class MicrosoftCloud(models.TextChoices):
    GLOBAL = "global", _("Global (Microsoft 365)")
    USGOV = "usgov", _("US Government (GCC High)")
    CHINA = "china", _("China (operated by 21Vianet)")


class MicrosoftConnection(models.Model):
    organization = models.OneToOneField(Organization, on_delete=models.CASCADE,
                                        related_name="+")
    tenant_id = models.CharField(_("tenant ID"), max_length=64)
    client_id = models.CharField(_("application (client) ID"), max_length=64)
    cloud = models.CharField(_("national cloud"), max_length=8, choices=MicrosoftCloud.choices,
                             default=MicrosoftCloud.GLOBAL)
    # Fernet tokens; never shown. `secret_hint` is what the page shows of the secret (its
    # first characters, as Entra's own list of secrets shows them).
    secret_encrypted = models.TextField(blank=True)
    secret_hint = models.CharField(max_length=8, blank=True)
    certificate_encrypted = models.TextField(blank=True)
    certificate_thumbprint = models.CharField(max_length=64, blank=True)
    credential_set_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(_("pull on a schedule"), default=True)
    # Up to when each kind was read completely (UTC); None before the first pull.
    pstn_through = models.DateTimeField(null=True, blank=True)
    direct_routing_through = models.DateTimeField(null=True, blank=True)
    # A pull that failed mid-pages: where to start again (kind, window and the page's link).
    resume = models.JSONField(default=dict, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    failure_notified = models.BooleanField(default=False)
    last_error = models.TextField(blank=True)
    last_test_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True, blank=True)
    last_test_message = models.TextField(blank=True)
    # The last test's outcome as facts ({"code", "calls", "detail"}): the page words them
    # in its reader's language (usage.microsoft.connection_test).
    last_test_facts = models.JSONField(default=dict, blank=True)
    # A backfill an admin asked for and no worker has started yet.
    backfill_days_requested = models.PositiveIntegerField(null=True, blank=True)
    # The connection the demo seeds: its runs are made up and the page says so.
    is_demo = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("Microsoft connection")

    def __str__(self):
        return f"{self.tenant_id} ({self.cloud})"

    @property
    def uses_certificate(self) -> bool:
        return bool(self.certificate_encrypted)

    @property
    def has_credential(self) -> bool:
        return bool(self.secret_encrypted or self.certificate_encrypted)


class PullRunKind(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    MANUAL = "manual", _("Pull now")
    BACKFILL = "backfill", _("Backfill")


class PullRunStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class MicrosoftPullRun(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=PullRunKind.choices)
    status = models.CharField(max_length=10, choices=PullRunStatus.choices,
                              default=PullRunStatus.RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    windows_total = models.PositiveIntegerField(default=0)
    windows_done = models.PositiveIntegerField(default=0)
    pages = models.PositiveIntegerField(default=0)
    pstn_imported = models.PositiveIntegerField(default=0)
    pstn_duplicates = models.PositiveIntegerField(default=0)
    pstn_rejected = models.PositiveIntegerField(default=0)
    dr_imported = models.PositiveIntegerField(default=0)
    dr_duplicates = models.PositiveIntegerField(default=0)
    dr_rejected = models.PositiveIntegerField(default=0)
    # Retries after 429 / 503 / network errors, and the seconds waited for them.
    retries = models.PositiveIntegerField(default=0)
    waited_seconds = models.FloatField(default=0)
    # Why it failed, in words (usage.microsoft.errors), and a stable code for it.
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    # A few rejected rows: [{"kind", "id", "errors"}], for the admin to look at.
    rejected_sample = models.JSONField(default=list, blank=True)
    is_demo = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("Microsoft pull")
        constraints = [
            models.UniqueConstraint(fields=["organization"],
                                    condition=Q(status="running"),
                                    name="mspull_one_running_per_org"),
        ]
        indexes = [models.Index(fields=["organization", "-started_at"],
                                name="mspull_org_started")]

    def __str__(self):
        return f"{self.kind} {self.started_at:%Y-%m-%d %H:%M} {self.status}"

    @property
    def imported(self) -> int:
        return self.pstn_imported + self.dr_imported

    @property
    def duplicates(self) -> int:
        return self.pstn_duplicates + self.dr_duplicates

    @property
    def rejected(self) -> int:
        return self.pstn_rejected + self.dr_rejected

    @property
    def duration(self):
        if self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def error_message(self) -> str:
        """Why the run failed, in the reader's language."""
        from ..microsoft.errors import describe

        return describe(self.error_code, self.error) if self.error_code else ""

    @property
    def progress_percent(self) -> int | None:
        if not self.windows_total:
            return None
        return min(100, round(100 * self.windows_done / self.windows_total))
