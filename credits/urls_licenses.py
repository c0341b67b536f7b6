"""Users and licenses pages. Owned by the licenses capability."""

from django.urls import path

from .views import licenses as views

urlpatterns = [
    path("billing/licenses/", views.billing_licenses, name="billing_licenses"),
    path("billing/licenses/<str:sku>/seats/", views.billing_seats, name="billing_seats"),
    path("reports/minute-pools/", views.minute_pools, name="reports_minute_pools"),
    path("users/", views.users, name="users"),
    path("users/bulk/", views.users_bulk, name="users_bulk"),
    path("users/import/", views.users_import, name="users_import"),
    path("users/<int:pk>/licenses/", views.person_licenses_page, name="person_licenses"),
]
