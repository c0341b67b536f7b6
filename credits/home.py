"""The cards on the home page. Each card is (template, context) and is shown only to
people allowed to open the page it links to."""

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from .access import person_may

# (title, text, url name, access); a capability's app replaces its card when it lands.
CARDS = [
    (_("Communications Credits"), _("Your prepaid balance."), "billing_credits",
     frozenset({"view_billing"})),
    (_("Licenses"), _("Assigned and available seats per product."), "users",
     frozenset({"view_people"})),
    (_("Usage this month"), _("Calls, minutes and credits spent this month."),
     "reports_pstn_usage",
     frozenset({"view_usage"})),
    (_("Message center"), _("No notifications yet."), "notifications", "signed_in"),
]

# Cards filled in by apps that credits must not import (notifications registers its
# builder from AppConfig.ready()): url name -> function(request) -> card fields to update.
CARD_PROVIDERS = {}


def _licenses_card(request):
    from .views.licenses import home_card

    return home_card(request)


CARD_PROVIDERS["users"] = _licenses_card


def _credits_card(request):
    from .views.billing import home_card

    return home_card(request)


CARD_PROVIDERS["billing_credits"] = _credits_card


def cards_for(request):
    person = request.person
    cards = []
    for title, text, url_name, access in CARDS:
        if person_may(person, access):
            card = {"title": title, "text": text, "url": reverse(url_name)}
            if url_name in CARD_PROVIDERS:
                card.update(CARD_PROVIDERS[url_name](request))
            cards.append(card)
    return cards
