"""Rate deck, API tokens and call records (DESIGN.md sections 7 and 8).

A call record is one PSTN call as Microsoft describes it (Graph `pstnCallLogRow` or the
PSTN usage export), with this system's own rating beside Microsoft's reported values.
It is unique per (organization, Graph id / UsageId): the idempotency key of ingestion,
whatever the source. Its charge to credits is a ledger entry keyed `call:<graph id>`.
"""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from credits.models import Organization, Person

from .. import rating


class Direction(models.TextChoices):
    OUTBOUND = rating.OUTBOUND, _("Outbound")
    INBOUND_TOLL_FREE = rating.INBOUND_TOLL_FREE, _("Inbound toll-free")


class NumberType(models.TextChoices):
    LANDLINE = "landline", _("Landline")
    MOBILE = "mobile", _("Mobile")
    TOLL_FREE = "toll_free", _("Toll-free")
    PREMIUM = "premium", _("Premium")
    ANY = "any", _("Any")


class RateDeck(models.Model):
    """The organization's deck as a whole: `version` changes on every load, so a process
    can keep a parsed copy and know when it is stale."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="rate_deck"
    )
    version = models.PositiveIntegerField(default=0)
    source_name = models.CharField(_("file"), max_length=200, blank=True)
    loaded_at = models.DateTimeField(_("loaded at"), default=timezone.now)
    loaded_by = models.CharField(_("loaded by"), max_length=200, blank=True)

    def __str__(self):
        return f"{self.organization} v{self.version}"


class Rate(models.Model):
    """One row of domain/rate-deck-format.md."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    direction = models.CharField(_("direction"), max_length=24, choices=Direction.choices)
    prefix = models.CharField(_("prefix"), max_length=15)
    destination = models.CharField(_("destination"), max_length=100)
    country = models.CharField(_("country"), max_length=2)
    number_type = models.CharField(_("number type"), max_length=16, choices=NumberType.choices)
    # Per minute, up to 5 places, in the organization's currency.
    rate_per_minute = models.DecimalField(_("rate per minute"), max_digits=12, decimal_places=5)
    connection_fee = models.DecimalField(_("connection fee"), max_digits=12, decimal_places=5)
    first_increment_s = models.PositiveIntegerField(_("first increment (s)"), default=60)
    next_increment_s = models.PositiveIntegerField(_("next increment (s)"), default=60)
    currency = models.CharField(_("currency"), max_length=3)
    effective_from = models.DateField(_("effective from"))

    class Meta:
        ordering = ["direction", "prefix", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "direction", "prefix", "effective_from"],
                name="rate_unique_prefix_date",
            ),
            models.CheckConstraint(
                condition=models.Q(rate_per_minute__gte=0, connection_fee__gte=0),
                name="rate_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(first_increment_s__gte=1, next_increment_s__gte=1),
                name="rate_increments_positive",
            ),
        ]
        indexes = [models.Index(fields=["organization", "direction", "prefix"])]

    def __str__(self):
        return f"{self.direction} {self.prefix} {self.destination}"

    def as_rating_rate(self) -> rating.Rate:
        return rating.Rate(
            self.direction, self.prefix, self.destination, self.country, self.number_type,
            self.rate_per_minute, self.connection_fee, self.first_increment_s,
            self.next_increment_s, self.currency, self.effective_from,
        )


class ApiToken(models.Model):
    """A bearer token of the JSON API. Only its SHA-256 is stored; the token itself is
    shown once, when created. `prefix` (the first characters) lets people tell tokens
    apart on the settings page."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=200, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class CallSource(models.TextChoices):
    API = "api", _("API")
    IMPORT = "import", _("Import command")
    # A noun here (where a call came from); the upload button's "Upload" is a verb.
    UPLOAD = "upload", pgettext_lazy("call source", "Upload")
    DEMO = "demo", _("Demo data")
    GRAPH = "graph", _("Microsoft Graph connector")


class ChargedTo(models.TextChoices):
    PLAN_POOL = rating.PLAN_POOL, _("Calling plan minutes")
    CONFERENCE_POOL = rating.CONFERENCE_POOL, _("Conferencing minutes")
    CREDITS = rating.CREDITS, _("Communications Credits")
    FREE = rating.FREE, _("Free")
    UNRATED = "", _("Not rated")


class CallRecord(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    # Graph `id` / export `UsageId`: the idempotency key.
    graph_id = models.CharField(_("usage id"), max_length=64)
    call_id = models.CharField(_("call id"), max_length=128, blank=True)
    conference_id = models.CharField(_("conference id"), max_length=128, blank=True)
    person = models.ForeignKey(
        Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    user_id = models.CharField(_("user id"), max_length=64, blank=True)
    upn = models.CharField(_("user principal name"), max_length=128, blank=True)
    user_display_name = models.CharField(_("user display name"), max_length=128, blank=True)
    start_at = models.DateTimeField(_("start time"))
    end_at = models.DateTimeField(_("end time"), null=True, blank=True)
    duration_s = models.PositiveIntegerField(_("duration (s)"))
    call_type = models.CharField(_("call type"), max_length=32)
    # Microsoft's Caller ID is nvarchar(128) (usage.ingest.FIELD_LIMITS).
    caller_number = models.CharField(_("caller number"), max_length=128, blank=True)
    callee_number = models.CharField(_("callee number"), max_length=64, blank=True)
    usage_country = models.CharField(_("user location"), max_length=2, blank=True)
    tenant_country = models.CharField(_("tenant country"), max_length=2, blank=True)
    destination_context = models.CharField(_("domestic/international"), max_length=16,
                                           blank=True)
    destination_name = models.CharField(_("destination dialed"), max_length=100, blank=True)
    inventory_type = models.CharField(_("number type"), max_length=32, blank=True)
    operator = models.CharField(_("operator"), max_length=64, blank=True)
    call_duration_source = models.CharField(max_length=16, blank=True)
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    # What Microsoft (or the posting platform) reported; kept as is, never charged.
    reported_charge = models.DecimalField(max_digits=16, decimal_places=5, null=True,
                                          blank=True)
    reported_connection_charge = models.DecimalField(max_digits=16, decimal_places=5,
                                                     null=True, blank=True)
    reported_capability = models.CharField(max_length=32, blank=True)
    # This system's rating (usage.rating).
    rated = models.BooleanField(default=True)
    unrated_reason = models.CharField(max_length=32, blank=True)
    charged_to = models.CharField(_("charged to"), max_length=16, choices=ChargedTo.choices,
                                  blank=True)
    pool_kind = models.CharField(max_length=16, blank=True)
    # The pool's usage country (the person's usage location; "" for the conferencing pool).
    pool_country = models.CharField(max_length=2, blank=True)
    pool_minutes = models.PositiveIntegerField(_("pool minutes"), default=0)
    credit_seconds = models.PositiveIntegerField(default=0)
    billable_seconds = models.PositiveIntegerField(_("billable seconds"), default=0)
    rate_prefix = models.CharField(max_length=15, blank=True)
    rate_per_minute = models.DecimalField(_("rate"), max_digits=12, decimal_places=5,
                                          null=True, blank=True)
    connection_fee = models.DecimalField(max_digits=12, decimal_places=5, default=0)
    # What credits pay (2 places, account currency); charged once, key "call:<graph_id>".
    charge = models.DecimalField(_("charge"), max_digits=12, decimal_places=2, default=0)
    capability = models.CharField(_("capability"), max_length=32, blank=True)
    destination_country = models.CharField(max_length=2, blank=True)
    source = models.CharField(max_length=8, choices=CallSource.choices)
    ingested_at = models.DateTimeField(default=timezone.now)
    # Graph's otherPartyCountryCode: the country of the caller of an inbound call, of the
    # callee of an outbound one; Microsoft's report calls it "From country or region".
    other_party_country = models.CharField(_("from country or region"), max_length=2,
                                           blank=True)

    class Meta:
        constraints = [
            # The id first: ingestion's lookup of a batch's ids probes this index by id
            # alone, the only index that can answer it (credits.platform.db.
            # existing_values_pg_sql), whatever the statistics say of the organization.
            models.UniqueConstraint(fields=["graph_id", "organization"],
                                    name="callrecord_unique_graph_id"),
            models.CheckConstraint(condition=models.Q(charge__gte=0),
                                   name="callrecord_charge_not_negative"),
        ]
        indexes = [
            # The report and the API's keyset paging read by (org, start time, id).
            models.Index(fields=["organization", "start_at", "id"], name="call_org_start"),
            models.Index(fields=["organization", "person", "start_at"], name="call_org_person"),
            models.Index(fields=["organization", "start_at"], name="call_org_unrated",
                         condition=models.Q(rated=False)),
        ]

    def __str__(self):
        return f"{self.call_type} {self.graph_id}"

