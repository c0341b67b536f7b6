"""The one place where access to a page is decided.

Every view of this project declares what it needs with one of these decorators, and
`credits.platform.middleware.TenantMiddleware.process_view` enforces it for every request. A view of
ours that declares nothing is refused (fail closed), and a test walks every routed URL to
make sure none is left undeclared.

A page that is read by some and changed by others declares both:
`@permission("view_billing", change="manage_billing")` lets view_billing holders read it
(GET, HEAD) and only manage_billing holders post to it; the view body checks nothing.
"""

from dataclasses import dataclass

PUBLIC = "public"
SIGNED_IN = "signed_in"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class ReadChange:
    """Who may read a page and who may change it through it."""

    read: frozenset
    change: frozenset


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


def permission(*perms, change: str | tuple[str, ...] | None = None):
    """A signed-in person holding at least one of `perms` (see credits.platform.roles); with
    `change`, a request that is not a read needs one of those instead."""
    if not perms:
        raise ValueError("name at least one permission")
    access = frozenset(perms)
    if change is not None:
        access = ReadChange(access, frozenset((change,) if isinstance(change, str)
                                              else change))

    def decorator(view):
        return _declare(view, access)

    return decorator


def access_of(view_func):
    view_class = getattr(view_func, "view_class", None)
    if view_class is not None and hasattr(view_class, "access"):
        return view_class.access
    return getattr(view_func, "access", None)


def person_may(person, access, method: str = "GET") -> bool:
    """May `person` (None: not signed in) make a `method` request to a page declared
    `access`? Links and menus ask about reading (the default)."""
    if access == PUBLIC:
        return True
    if person is None:
        return False
    if access == SIGNED_IN:
        return True
    if isinstance(access, ReadChange):
        access = access.read if method in READ_METHODS else access.change
    return bool(person.permissions & access)

