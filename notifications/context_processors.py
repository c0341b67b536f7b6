"""The unread count of the top bar's bell, counted once per request."""

from . import selectors


def unread_count_of(request) -> int:
    """The signed-in person's unread count, kept on the request: the bell and the home
    page's message center card both show it."""
    if not hasattr(request, "_notifications_unread_count"):
        request._notifications_unread_count = selectors.unread_count(person=request.person)
    return request._notifications_unread_count


def unread(request):
    """The unread count of the bell in the top bar (overrides credits' placeholder 0)."""
    if getattr(request, "person", None) is None:
        return {}
    return {"unread_count": unread_count_of(request)}
