"""Routes of the billing pages: Communications Credits, bills, licenses and users."""

from django.urls import path

from .views import adjustments, billing, licenses, refunds, spend_limits

CC = "billing/communications-credits/"

urlpatterns = [
    # Billing: Communications Credits, bills and payments.
    path(CC, billing.credits_overview, name="billing_credits"),
    path(f"{CC}add-funds/", billing.add_funds, name="billing_add_funds"),
    path(f"{CC}add-funds/confirm/", billing.add_funds_confirm, name="billing_add_funds_confirm"),
    path(f"{CC}auto-recharge/", billing.auto_recharge, name="billing_auto_recharge"),
    path(f"{CC}spend-limit/", spend_limits.spend_limit, name="billing_spend_limit"),
    path(f"{CC}payment-methods/", billing.payment_methods, name="billing_payment_methods"),
    path(f"{CC}payment-methods/<int:pk>/remove/", billing.payment_method_remove,
         name="billing_payment_method_remove"),
    path(f"{CC}transactions/", billing.transactions, name="billing_transactions"),
    path(f"{CC}transactions/export/", adjustments.transactions_export,
         name="billing_transactions_export"),
    path(f"{CC}adjust-balance/", adjustments.adjust_balance, name="billing_adjust_balance"),
    path(f"{CC}adjust-balance/confirm/", adjustments.adjust_balance_confirm,
         name="billing_adjust_balance_confirm"),
    path(f"{CC}support-request/", billing.support_request, name="billing_support_request"),
    path("billing/bills/", billing.bills, name="billing_bills"),
    path("billing/invoices/<int:pk>/", billing.invoice_detail, name="billing_invoice"),
    path("billing/invoices/<int:pk>/pdf", billing.invoice_pdf_download,
         name="billing_invoice_pdf"),
    path("billing/invoices/<int:pk>/refund/", refunds.invoice_refund,
         name="billing_invoice_refund"),
    path("billing/invoices/<int:pk>/refund/confirm/", refunds.invoice_refund_confirm,
         name="billing_invoice_refund_confirm"),
    path("billing/credit-notes/<int:pk>/", refunds.credit_note_detail,
         name="billing_credit_note"),
    path("billing/credit-notes/<int:pk>/pdf", refunds.credit_note_pdf_download,
         name="billing_credit_note_pdf"),
    # Licenses and users.
    path("billing/licenses/", licenses.billing_licenses, name="billing_licenses"),
    path("billing/licenses/<str:sku>/seats/", licenses.billing_seats, name="billing_seats"),
    path("users/", licenses.users, name="users"),
    path("users/bulk/", licenses.users_bulk, name="users_bulk"),
    path("users/import/", licenses.users_import, name="users_import"),
    path("users/import/<int:pk>/", licenses.users_import_job, name="users_import_job"),
    path("users/import/<int:pk>/results.csv", licenses.users_import_results_csv,
         name="users_import_results_csv"),
    path("users/bulk/limit/", spend_limits.users_bulk_limit, name="users_bulk_limit"),
    path("users/<int:pk>/limit/", spend_limits.person_spend_limit,
         name="person_spend_limit"),
    path("users/<int:pk>/licenses/", licenses.person_licenses_page, name="person_licenses"),
]
