from . import selectors


def unread(request):
    """The unread count of the bell in the top bar (overrides credits' placeholder 0)."""
    person = getattr(request, "person", None)
    if person is None:
        return {}
    return {"unread_count": selectors.unread_count(person=person)}
