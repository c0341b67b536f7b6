"""Billing pages (Communications Credits, bills & payments). Owned by the billing capability."""

from django.urls import path

from .views import billing as views

CC = "billing/communications-credits/"

urlpatterns = [
    path(CC, views.credits_overview, name="billing_credits"),
    path(f"{CC}add-funds/", views.add_funds, name="billing_add_funds"),
    path(f"{CC}add-funds/confirm/", views.add_funds_confirm, name="billing_add_funds_confirm"),
    path(f"{CC}auto-recharge/", views.auto_recharge, name="billing_auto_recharge"),
    path(f"{CC}payment-methods/", views.payment_methods, name="billing_payment_methods"),
    path(f"{CC}payment-methods/<int:pk>/remove/", views.payment_method_remove,
         name="billing_payment_method_remove"),
    path(f"{CC}transactions/", views.transactions, name="billing_transactions"),
    path(f"{CC}support-request/", views.support_request, name="billing_support_request"),
    path("billing/bills/", views.bills, name="billing_bills"),
    path("billing/invoices/<int:pk>/", views.invoice_detail, name="billing_invoice"),
]
