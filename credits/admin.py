"""Django admin for the credits models: organizations, people, ledger, payments, licenses."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import AuditEntry, DomainEvent, Organization, Person, PersonRole, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "is_staff", "is_active", "last_login"]
    search_fields = ["email"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "country", "currency", "billing_account_type"]
    search_fields = ["name", "slug"]


class PersonRoleInline(admin.TabularInline):
    model = PersonRole
    extra = 0


@admin.register(Person)
class PersonAdmin(admin.ModelAdmin):
    list_display = ["display_name", "upn", "organization", "usage_location"]
    list_filter = ["organization", "usage_location"]
    search_fields = ["display_name", "upn", "email"]
    inlines = [PersonRoleInline]
    raw_id_fields = ["user"]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "organization", "actor_label", "action", "target_label"]
    list_filter = ["organization", "action"]

    # The audit log is evidence: nobody edits or deletes it, not even staff.
    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(DomainEvent)
class DomainEventAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "organization", "name", "dispatched_at", "parked_at",
                    "dispatch_failures"]
    list_filter = ["name", "organization", ("parked_at", admin.EmptyFieldListFilter)]
    readonly_fields = ["organization", "name", "payload", "dedupe_key", "occurred_at",
                       "dispatch_failures", "last_error"]


# --- licenses ---
from .models import LicenseAssignment, MinutePool, Subscription  # noqa: E402


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["organization", "sku", "seats", "created_at"]
    list_filter = ["sku", "organization"]


@admin.register(LicenseAssignment)
class LicenseAssignmentAdmin(admin.ModelAdmin):
    # Assignments are changed through the Licenses pages (seat locks, audit); read-only here.
    list_display = ["person", "sku", "usage_location", "assigned_at", "removed_at"]
    list_filter = ["sku", "organization"]
    search_fields = ["person__upn", "person__display_name"]
    readonly_fields = [f.name for f in LicenseAssignment._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MinutePool)
class MinutePoolAdmin(admin.ModelAdmin):
    list_display = ["organization", "month", "kind", "country", "used_minutes", "total_minutes"]
    list_filter = ["kind", "month", "organization"]
    readonly_fields = [f.name for f in MinutePool._meta.fields]


# --- Communications Credits (billing) ------------------------------------------------------
from .models import (  # noqa: E402
    CreditAccount,
    Invoice,
    LedgerEntry,
    PaymentMethod,
    RechargeAttempt,
    SimulatedGatewayCharge,
)


class _ReadOnlyAdmin(admin.ModelAdmin):
    """Money history is evidence: staff read it; changes go through the services."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CreditAccount)
class CreditAccountAdmin(_ReadOnlyAdmin):
    list_display = ["organization", "currency", "balance", "auto_recharge_enabled",
                    "auto_recharge_amount", "auto_recharge_trigger", "declines_in_a_row"]
    search_fields = ["organization__name", "organization__slug"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(_ReadOnlyAdmin):
    list_display = ["created_at", "organization", "kind", "amount", "balance_after",
                    "idempotency_key", "actor_label"]
    list_filter = ["kind", "organization"]
    search_fields = ["idempotency_key", "description"]


@admin.register(PaymentMethod)
class PaymentMethodAdmin(_ReadOnlyAdmin):
    list_display = ["organization", "brand", "last4", "exp_month", "exp_year", "removed_at"]
    list_filter = ["organization"]
    exclude = ["gateway_token"]


@admin.register(RechargeAttempt)
class RechargeAttemptAdmin(_ReadOnlyAdmin):
    list_display = ["created_at", "organization", "kind", "amount", "currency", "status",
                    "reason_code", "gateway_tries"]
    list_filter = ["status", "kind", "organization"]


@admin.register(Invoice)
class InvoiceAdmin(_ReadOnlyAdmin):
    list_display = ["number", "organization", "amount", "currency", "card_label", "issued_at"]
    search_fields = ["number"]


@admin.register(SimulatedGatewayCharge)
class SimulatedGatewayChargeAdmin(_ReadOnlyAdmin):
    list_display = ["created_at", "reference", "idempotency_key", "amount", "currency",
                    "status", "error_code", "tries"]
