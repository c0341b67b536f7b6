"""Subscriptions (seats of a product), license assignments with their history, and the
monthly minute pools that calling plans and Audio Conferencing bring.

An assignment is never deleted: removing a license stamps `removed_at`, so "which licenses
did this person hold when the call started" (credits.selectors.licenses.licenses_at) stays
answerable for calls rated later.
"""

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..platform.models import Organization, Person
from ..products import POOL_KINDS, PRODUCT_CHOICES, PRODUCTS

__all__ = ["Subscription", "LicenseAssignment", "MinutePool"]


class Subscription(models.Model):
    """Seats of one product for one organization. `seats` is None for unlimited products
    (Communications Credits)."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="subscriptions"
    )
    sku = models.CharField(_("product"), max_length=32, choices=PRODUCT_CHOICES)
    seats = models.PositiveIntegerField(_("purchased seats"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["organization", "sku"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "sku"], name="subscription_one_per_sku"
            ),
            models.CheckConstraint(
                condition=Q(seats__isnull=True) | Q(seats__gte=0), name="subscription_seats_gte_0"
            ),
        ]

    def __str__(self):
        return str(self.product.name if self.product else self.sku)

    @property
    def product(self):
        return PRODUCTS.get(self.sku)

    @property
    def unlimited(self) -> bool:
        return self.seats is None


class LicenseAssignment(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="license_assignments"
    )
    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="assignments"
    )
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="licenses")
    # Copied from the subscription so history queries need no join.
    sku = models.CharField(_("product"), max_length=32, choices=PRODUCT_CHOICES)
    # The person's usage location when the license was assigned: the pool country this
    # license feeds. Changing a usage location under a calling plan is refused, so it holds.
    usage_location = models.CharField(_("usage location"), max_length=2, blank=True)
    assigned_at = models.DateTimeField(_("assigned at"), default=timezone.now)
    removed_at = models.DateTimeField(_("removed at"), null=True, blank=True)
    assigned_by = models.CharField(max_length=200, blank=True)
    removed_by = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = _("license assignment")
        verbose_name_plural = _("license assignments")
        ordering = ["-assigned_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["person", "sku"],
                condition=Q(removed_at__isnull=True),
                name="license_one_active_per_person_sku",
            ),
            models.CheckConstraint(
                condition=Q(removed_at__isnull=True) | Q(removed_at__gte=F("assigned_at")),
                name="license_removed_after_assigned",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "sku", "assigned_at"], name="license_org_sku_at"),
            models.Index(fields=["person", "assigned_at"], name="license_person_at"),
        ]

    def __str__(self):
        return f"{self.sku} → {self.person_id}"

    @property
    def active(self) -> bool:
        return self.removed_at is None


class MinutePool(models.Model):
    """Minutes used from one pool: (organization, kind, usage country, UTC month).

    The pool's size is not stored as truth: it is computed from the licenses assigned at the
    time of each call. `total_minutes` keeps the size seen by the last take, for reports.
    """

    KIND_CHOICES = [(k, k) for k in POOL_KINDS]

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="minute_pools"
    )
    kind = models.CharField(max_length=16, choices=KIND_CHOICES)
    country = models.CharField(max_length=2, blank=True)  # "" for the tenant-wide pool
    month = models.DateField()  # first day of the UTC month
    used_minutes = models.IntegerField(default=0)
    total_minutes = models.IntegerField(default=0)
    alerted_80 = models.BooleanField(default=False)
    alerted_100 = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("minute pool")
        verbose_name_plural = _("minute pools")
        ordering = ["-month", "kind", "country"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "kind", "country", "month"], name="minute_pool_unique"
            ),
            models.CheckConstraint(condition=Q(used_minutes__gte=0), name="minute_pool_used_gte_0"),
            models.CheckConstraint(
                condition=Q(kind__in=list(POOL_KINDS)), name="minute_pool_kind_valid"
            ),
        ]

    def __str__(self):
        return f"{self.kind} {self.country or '*'} {self.month:%Y-%m}"
