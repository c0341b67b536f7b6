"""The one place where access to a page is decided.

Every view of this project declares what it needs with one of these decorators, and
`credits.middleware.TenantMiddleware.process_view` enforces it for every request. A view of
ours that declares nothing is refused (fail closed), and a test walks every routed URL to
make sure none is left undeclared.
"""

PUBLIC = "public"
SIGNED_IN = "signed_in"


def _declare(view, access):
    # Class-based views are declared on the class; as_view() copies class attributes to
    # the function Django routes to through `view_class`.
    view.access = access
    return view


def public(view):
    """Anyone, signed in or not (sign-in pages, health checks)."""
    return _declare(view, PUBLIC)


def signed_in(view):
    """Any person of the organization who has signed in."""
    return _declare(view, SIGNED_IN)


def permission(*perms):
    """A signed-in person holding at least one of `perms` (see credits.roles)."""
    if not perms:
        raise ValueError("name at least one permission")

    def decorator(view):
        return _declare(view, frozenset(perms))

    return decorator


def access_of(view_func):
    view_class = getattr(view_func, "view_class", None)
    if view_class is not None and hasattr(view_class, "access"):
        return view_class.access
    return getattr(view_func, "access", None)


def person_may(person, access) -> bool:
    if access == PUBLIC:
        return True
    if person is None:
        return False
    if access == SIGNED_IN:
        return True
    return bool(person.permissions & access)
