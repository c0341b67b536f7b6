"""The site's URLs: sign-in pages, the API under /api/v1/, each app's pages, error handlers."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from credits.platform.errors import api_not_found
from credits.platform.forms import SignInForm

from . import api

urlpatterns = [
    # The API first: its requests (call authorization sits in the set-up of every call) are
    # the most frequent, and Django tries the patterns in order.
    path("api/v1/", api.urls()),
    # Any other path under /api/: the API's JSON 404, even with DEBUG on (whose technical
    # 404 page would bypass handler404).
    re_path(r"^api/", api_not_found, name="api_not_found"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(authentication_form=SignInForm),
         name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password-reset/",
        auth_views.PasswordResetView.as_view(),
        name="password_reset",
    ),
    path(
        "accounts/password-reset/done/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("", include("credits.platform.urls")),
    path("", include("credits.urls")),
    path("", include("usage.urls")),
    path("", include("notifications.urls")),
]

handler400 = "credits.platform.errors.bad_request"
handler403 = "credits.platform.errors.forbidden"
handler404 = "credits.platform.errors.not_found"
handler500 = "credits.platform.errors.server_error"
