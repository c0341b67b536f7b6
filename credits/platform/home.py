"""The home page's cards and the registry of their builders. A card is shown only to people
allowed to open the page it links to."""

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from .access import person_may

# (title, text, url name, access); the app owning the page fills in its card's figures.
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

# Cards filled in by the module that owns their page: url name -> function(request) -> card
# fields to update. Each app registers its builders from AppConfig.ready() (credits never
# imports usage or notifications, and the platform never imports billing).
CARD_PROVIDERS = {}

# Banners shown above the cards, by the same url name and under the same access as its card:
# url name -> function(request) -> rendered HTML (empty when there is nothing to say).
BANNER_PROVIDERS = {}


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


def banners_for(request) -> list:
    person = request.person
    banners = []
    for _title, _text, url_name, access in CARDS:
        if url_name in BANNER_PROVIDERS and person_may(person, access):
            html = BANNER_PROVIDERS[url_name](request)
            if html.strip():
                banners.append(html)
    return banners
