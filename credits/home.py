"""The cards on the home page. Each card is (template, context) and is shown only to
people allowed to open the page it links to."""

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from .access import person_may

# (title, text, url name, access); a capability's app replaces its card when it lands.
CARDS = [
    (_("Communications Credits"), _("Not available yet."), "billing_credits",
     frozenset({"view_billing"})),
    (_("Licenses"), _("Not available yet."), "users", frozenset({"view_people"})),
    (_("Usage this month"), _("Not available yet."), "reports_pstn_usage",
     frozenset({"view_usage"})),
    (_("Message center"), _("Not available yet."), "notifications", "signed_in"),
]


def cards_for(request):
    person = request.person
    cards = []
    for title, text, url_name, access in CARDS:
        if person_may(person, access):
            cards.append({"title": title, "text": text, "url": reverse(url_name)})
    return cards
