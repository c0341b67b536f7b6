"""Direct Routing call records (DESIGN.md section 8, domain/graph-direct-routing-log-row.md).

One row is one Direct Routing call leg as Microsoft reports it: a Teams call through the
organization's own Session Border Controller (SBC) and carrier. The carrier bills these
minutes, so they are stored and reported, never rated nor charged to credits.

Rows come from Graph `directRoutingLogRow` (which has an `id`) and from Microsoft's export
`DirectRouting.calls.<UTC date>.csv` (which has no `id`, only the CorrelationId that several
legs of one call may share). `leg_key` is computed from what both sources carry
(usage.direct_routing.leg_key), so one leg read from either source is one row; a CSV row's
`graph_id` is its leg key.
"""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from credits.models import Organization

from .calls import CallSource

__all__ = ["DirectRoutingCall"]


class DirectRoutingCall(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    # Graph `id` (a GUID), or the leg key for rows of the CSV export: the idempotency key.
    graph_id = models.CharField(_("id"), max_length=64)
    leg_key = models.CharField(max_length=36)
    correlation_id = models.CharField(_("correlation ID"), max_length=64, blank=True)
    shared_correlation_id = models.CharField(_("shared correlation ID"), max_length=64,
                                             blank=True)
    user_id = models.CharField(_("user id"), max_length=64, blank=True)
    upn = models.CharField(_("SIP address"), max_length=128, blank=True)
    user_display_name = models.CharField(_("display name"), max_length=128, blank=True)
    user_country = models.CharField(_("user country"), max_length=2, blank=True)
    start_at = models.DateTimeField(_("start time"))
    invite_at = models.DateTimeField(_("invite time"), null=True, blank=True)
    failure_at = models.DateTimeField(_("failure time"), null=True, blank=True)
    end_at = models.DateTimeField(_("end time"), null=True, blank=True)
    duration_s = models.PositiveIntegerField(_("duration (s)"), default=0)
    successful = models.BooleanField(_("success"))
    call_type = models.CharField(_("call type"), max_length=32, blank=True)
    caller_number = models.CharField(_("caller number"), max_length=32, blank=True)
    callee_number = models.CharField(_("callee number"), max_length=32, blank=True)
    media_region = models.CharField(_("Azure region for media"), max_length=8, blank=True)
    signaling_region = models.CharField(_("Azure region for signaling"), max_length=8,
                                        blank=True)
    final_sip_code = models.IntegerField(_("final SIP code"), null=True, blank=True)
    final_subcode = models.IntegerField(_("final Microsoft subcode"), null=True, blank=True)
    final_sip_phrase = models.CharField(_("final SIP phrase"), max_length=256, blank=True)
    sbc_fqdn = models.CharField(_("SBC FQDN"), max_length=64, blank=True)
    media_bypass = models.BooleanField(_("media bypass"), null=True, blank=True)
    other_party_country = models.CharField(max_length=2, blank=True)  # Graph beta only
    source = models.CharField(max_length=8, choices=CallSource.choices)
    ingested_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "graph_id"],
                                    name="drcall_unique_graph_id"),
        ]
        indexes = [
            models.Index(fields=["organization", "start_at", "id"], name="drcall_org_start"),
            models.Index(fields=["organization", "leg_key"], name="drcall_org_leg"),
        ]

    def __str__(self):
        return f"{self.call_type} {self.graph_id}"
