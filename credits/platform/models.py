"""The platform's models (app label `credits`): organizations, people and their admin roles,
sign-in accounts, the audit log and the outbox of domain events.

Every tenant-owned row carries `organization`; views reach rows only through
`Organization`-scoped selectors, so an id from another tenant is simply not found.
"""

import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .roles import ROLE_CHOICES, permissions_for


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email, password, **extra):
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A sign-in account. People sign in with their e-mail address."""

    email = models.EmailField(_("e-mail address"), unique=True)
    is_staff = models.BooleanField(_("staff status"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self):
        return self.email


class BillingAccountType(models.TextChoices):
    DIRECT = "direct", _("Direct (Microsoft Online Subscription Agreement)")
    PARTNER = "partner", _("Through a partner (CSP)")
    MCA = "mca", _("Post-paid (Microsoft Customer Agreement)")


class Organization(models.Model):
    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=64, unique=True)
    country = models.CharField(_("country"), max_length=2, help_text=_("ISO 3166 alpha-2"))
    currency = models.CharField(_("billing currency"), max_length=3, help_text=_("ISO 4217"))
    billing_region = models.CharField(
        _("billing region"), max_length=2, help_text=_("Country of the billing account")
    )
    billing_account_type = models.CharField(
        _("billing account type"),
        max_length=16,
        choices=BillingAccountType.choices,
        default=BillingAccountType.DIRECT,
    )
    # The buyer on invoices; the name above stands in when the legal name is blank.
    legal_name = models.CharField(_("legal name"), max_length=200, blank=True)
    billing_address = models.TextField(_("billing address"), blank=True)
    tax_id = models.CharField(_("tax ID"), max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("organization")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(country__regex=r"^[A-Z]{2}$"), name="org_country_iso2"
            ),
            models.CheckConstraint(
                condition=models.Q(currency__regex=r"^[A-Z]{3}$"), name="org_currency_iso4217"
            ),
        ]

    def __str__(self):
        return self.name


class Language(models.TextChoices):
    EN = "en", _("English")
    FR = "fr", _("French")


class Person(models.Model):
    """Someone in the organization's directory: a user who may hold licenses and roles."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="people"
    )
    directory_id = models.UUIDField(_("directory id"), default=uuid.uuid4, editable=False)
    display_name = models.CharField(_("display name"), max_length=128)
    upn = models.CharField(_("user principal name"), max_length=128)
    email = models.EmailField(_("e-mail"), blank=True)
    usage_location = models.CharField(
        _("usage location"), max_length=2, blank=True, help_text=_("ISO 3166 alpha-2")
    )
    preferred_language = models.CharField(
        _("preferred language"), max_length=8, choices=Language.choices, blank=True
    )
    user = models.OneToOneField(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="person"
    )
    # The person's settled credits usage of one UTC calendar month, at most this much
    # (account currency, 2 places; credits.spend_limits); None: no limit of their own.
    credits_monthly_limit = models.DecimalField(
        _("monthly credits limit"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("person")
        verbose_name_plural = _("people")
        ordering = ["display_name"]
        constraints = [
            models.UniqueConstraint(
                "organization", Lower("upn"), name="person_unique_upn_per_org"
            ),
        ]
        indexes = [models.Index(fields=["organization", "display_name"])]

    def __str__(self):
        return f"{self.display_name} <{self.upn}>"

    @property
    def role_codes(self) -> list[str]:
        # Prefetched by the tenant middleware; cached per request.
        if not hasattr(self, "_role_codes"):
            self._role_codes = sorted(self.roles.values_list("role", flat=True))
        return self._role_codes

    @property
    def permissions(self) -> frozenset:
        return permissions_for(self.role_codes)

    def has_perm(self, perm: str) -> bool:
        return perm in self.permissions

    @property
    def initials(self) -> str:
        parts = [p for p in self.display_name.split() if p]
        return "".join(p[0] for p in parts[:2]).upper() or "?"


class PersonRole(models.Model):
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="roles")
    role = models.CharField(_("role"), max_length=64, choices=ROLE_CHOICES)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["person", "role"], name="person_role_unique"),
        ]

    def __str__(self):
        return self.get_role_display()


class AuditEntry(models.Model):
    """Who changed what, when and from where. Written in the same transaction as the change."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="audit_entries"
    )
    actor = models.ForeignKey(
        Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=200)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action}"


class DomainEvent(models.Model):
    """The outbox of what happened in `credits` (and `usage`): recharge_succeeded,
    recharge_failed, balance_zero, funds_expiring, ...

    Rows are written in the transaction of the change that caused them, then handed to the
    subscribers after commit. A beat task re-dispatches rows a crash or a broker outage left
    undispatched, so no event is lost; `dedupe_key` makes each occurrence unique.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="events"
    )
    name = models.CharField(max_length=64, db_index=True)
    payload = models.JSONField(default=dict)
    dedupe_key = models.CharField(max_length=200, unique=True)
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # Dispatches that raised; after credits.platform.events.MAX_DISPATCH_FAILURES the event is
    # parked: the sweep leaves it for a person to look at (Django admin).
    dispatch_failures = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    parked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(
                fields=["occurred_at"],
                name="event_undispatched",
                condition=models.Q(dispatched_at__isnull=True),
            )
        ]

    def __str__(self):
        return f"{self.name} @ {self.occurred_at:%Y-%m-%d %H:%M}"
