"""The platform's middleware: who is signed in and which organization (TenantMiddleware,
which also enforces each view's declared access), the Content-Security-Policy, and the
browser's middleware kept off the API (`PagesOnly`)."""

from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.auth.views import redirect_to_login
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.middleware import csrf
from django.shortcuts import render
from django.utils import translation

from .access import PUBLIC, access_of, person_may
from .errors import is_api
from .models import Person

OUR_APPS = ("credits.", "usage.", "notifications.", "config.")


class PagesOnly:
    """Mixed into a middleware of the browser's: it runs for pages only, and requests under
    /api/ skip it.

    The API authenticates every request by its bearer token (usage.api_auth) and keeps no
    state between requests: a session read, the signed-in user and person, CSRF tokens
    (a bearer token is not sent by the browser on its own, so there is no cross-site
    request to forge) and messages are work done for nothing, and a cookie set on an API
    answer would be wrong. What the API does need still runs for it: security headers,
    WhiteNoise, CommonMiddleware, the language from Accept-Language, the CSP header."""

    def __call__(self, request):
        if is_api(request):
            return self.get_response(request)
        return super().__call__(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        parent = getattr(super(), "process_view", None)
        if parent is None or is_api(request):
            return None
        return parent(request, view_func, view_args, view_kwargs)


class SessionMiddleware(PagesOnly, sessions.SessionMiddleware):
    pass


class CsrfViewMiddleware(PagesOnly, csrf.CsrfViewMiddleware):
    pass


class AuthenticationMiddleware(PagesOnly, auth.AuthenticationMiddleware):
    pass


class MessageMiddleware(PagesOnly, messages.MessageMiddleware):
    pass


class TenantMiddleware:
    """Attaches the signed-in person and their organization to the request, switches to
    the person's language, and enforces each view's declared access."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.person = None
        request.organization = None
        if is_api(request):
            # The API's organization is its token's (usage.api_auth): no person to read.
            return self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            person = (
                Person.objects.select_related("organization")
                .prefetch_related("roles")
                .filter(user=user)
                .first()
            )
            if person is not None:
                person._role_codes = sorted(r.role for r in person.roles.all())
                request.person = person
                request.organization = person.organization
                if person.preferred_language:
                    translation.activate(person.preferred_language)
                    request.LANGUAGE_CODE = person.preferred_language
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if is_api(request):
            return None  # every API route checks its bearer token (config.api)
        module = getattr(view_func, "__module__", "") or ""
        view_class = getattr(view_func, "view_class", None)
        if view_class is not None:
            module = view_class.__module__
        if not module.startswith(OUR_APPS):
            return None  # Django's admin, ninja's API: they enforce their own access.
        access = access_of(view_func)
        if access is None:
            # Fail closed: a page that forgot to declare its access is nobody's page.
            return render(request, "403.html", status=403)
        if access == PUBLIC:
            return None
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        if not person_may(request.person, access, request.method):
            return render(request, "403.html", status=403)
        return None


class ContentSecurityPolicyMiddleware:
    """Pages use only the app's own scripts and styles: no inline script, no CDN."""

    POLICY = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
        "base-uri 'self'; object-src 'none'"
    )

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path_info.startswith("/admin/"):
            response.setdefault("Content-Security-Policy", self.POLICY)
        return response
