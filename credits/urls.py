"""Routes of the billing pages: Communications Credits, bills, licenses and users."""

from django.urls import path

from .views import billing, licenses

CC = "billing/communications-credits/"

urlpatterns = [
    # Billing: Communications Credits, bills and payments.
    path(CC, billing.credits_overview, name="billing_credits"),
    path(f"{CC}add-funds/", billing.add_funds, name="billing_add_funds"),
    path(f"{CC}add-funds/confirm/", billing.add_funds_confirm, name="billing_add_funds_confirm"),
    path(f"{CC}auto-recharge/", billing.auto_recharge, name="billing_auto_recharge"),
    path(f"{CC}payment-methods/", billing.payment_methods, name="billing_payment_methods"),
    path(f"{CC}payment-methods/<int:pk>/remove/", billing.payment_method_remove,
         name="billing_payment_method_remove"),
    path(f"{CC}transactions/", billing.transactions, name="billing_transactions"),
    path(f"{CC}support-request/", billing.support_request, name="billing_support_request"),
    path("billing/bills/", billing.bills, name="billing_bills"),
    path("billing/invoices/<int:pk>/", billing.invoice_detail, name="billing_invoice"),
    path("billing/invoices/<int:pk>/pdf", billing.invoice_pdf_download,
         name="billing_invoice_pdf"),
    # Licenses and users.
    path("billing/licenses/", licenses.billing_licenses, name="billing_licenses"),
    path("billing/licenses/<str:sku>/seats/", licenses.billing_seats, name="billing_seats"),
    path("users/", licenses.users, name="users"),
    path("users/bulk/", licenses.users_bulk, name="users_bulk"),
    path("users/import/", licenses.users_import, name="users_import"),
    path("users/<int:pk>/licenses/", licenses.person_licenses_page, name="person_licenses"),
]
