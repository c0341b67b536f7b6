"""The "Message center" card of the home page, filled in through credits.platform.home's provider
registry (credits never imports this app)."""

from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from credits.platform import home

from . import catalog, selectors
from .context_processors import unread_count_of


def message_center_card(request) -> dict:
    person = request.person
    unread = unread_count_of(request)
    latest = selectors.latest_for(person=person, limit=3)
    if not latest:
        return {"text": _("No notifications yet.")}
    return {
        "figure": str(unread),
        "text": ngettext("unread notification", "unread notifications", unread),
        "lines": [
            f"{formats.date_format(n.occurred_at, 'SHORT_DATE_FORMAT')} · "
            f"{catalog.EVENTS[n.name].label if n.name in catalog.EVENTS else n.name}"
            for n in latest
        ],
        "link_label": _("Open the message center"),
    }


def register() -> None:
    home.CARD_PROVIDERS["notifications"] = message_center_card
