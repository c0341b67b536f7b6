"""Django admin of notifications, read-only: they record what happened."""

from django.contrib import admin

from .models import Delivery, EventRouting, Notification


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    fields = ["recipient_name", "email", "language", "status", "attempts", "reason", "sent_at"]
    readonly_fields = fields


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    # Read-only: notifications record what happened; the message center is where admins act.
    list_display = ["name", "organization", "occurred_at"]
    list_filter = ["name"]
    readonly_fields = ["organization", "event", "name", "payload", "dedupe_key",
                       "audience_person", "occurred_at"]
    inlines = [DeliveryInline]

    def has_add_permission(self, request):
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["key", "recipient_name", "email", "status", "attempts", "updated_at"]
    list_filter = ["status"]
    search_fields = ["email", "recipient_name", "key"]
    readonly_fields = ["organization", "notification", "person", "recipient_name", "email",
                       "language", "key", "status", "reason", "last_error", "attempts",
                       "next_attempt_at", "sent_at"]

    def has_add_permission(self, request):
        return False


@admin.register(EventRouting)
class EventRoutingAdmin(admin.ModelAdmin):
    list_display = ["organization", "event", "roles"]
