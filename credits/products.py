"""The product catalog of domain/products.csv, as constants, with the calling plan and
conferencing licenses Microsoft sells that the file does not list yet (each cited below).

A product is what a subscription sells seats of; its capability code is what the PSTN
usage report shows as the license that paid for a call. Calling plans bring minute pools:
per usage country, plan kind and UTC calendar month, sized by the licenses assigned at the
time of the call (see credits.services.licenses.pool_take_minutes).
"""

from dataclasses import dataclass
from datetime import date

from django.utils.translation import gettext_lazy as _

CREDITS = "MCOPSTNC"
TEAMS_PHONE = "MCOEV"
DOMESTIC_PLAN = "MCOPSTN1"
DOMESTIC_INTERNATIONAL_PLAN = "MCOPSTN2"
PAYG_PLAN = "MCOPSTN_PAYG_1"
AUDIO_CONFERENCING = "MCOMEETADD"
# Sold by Microsoft, not yet in domain/products.csv. The capability codes are the ones
# Microsoft's PSTN usage report shows for them ("MCOPSTN5 - Domestic Calling Plan (120 min
# calling plan)", "MCOPSTN6 - Domestic Calling Plan (240 min calling plan)", "MCOMEETACPEA -
# Pay Per Minute Audio Conferencing":
# https://learn.microsoft.com/microsoftteams/teams-analytics-and-reports/pstn-usage-report;
# also domain/capabilities.csv). The plans themselves: "Calling Plans for Microsoft 365",
# https://learn.microsoft.com/microsoftteams/calling-plans-for-office-365, and the product
# names of "Product names and service plan identifiers for licensing",
# https://learn.microsoft.com/entra/identity/users/licensing-service-plan-reference
# ("Microsoft 365 Domestic Calling Plan (120 Minutes)", "... (240 Minutes)").
DOMESTIC_PLAN_120 = "MCOPSTN5"
DOMESTIC_PLAN_240 = "MCOPSTN6"
AUDIO_CONFERENCING_PAY_PER_MINUTE = "MCOMEETACPEA"
RESOURCE_ACCOUNT = "PHONESYSTEM_VIRTUALUSER"

# Pool kinds (PoolKey.kind).
DOMESTIC = "domestic"
INTERNATIONAL = "international"
CONFERENCE = "conference"
POOL_KINDS = (DOMESTIC, INTERNATIONAL, CONFERENCE)
POOL_KIND_LABELS = {
    DOMESTIC: _("Domestic calling"),
    INTERNATIONAL: _("International calling"),
    CONFERENCE: _("Audio Conferencing dial-out"),
}

# Domestic plans include 3000 minutes per license in these usage countries, 1200 elsewhere.
DOMESTIC_3000_COUNTRIES = frozenset({"US", "CA", "PR"})
DOMESTIC_MINUTES_HIGH = 3000
DOMESTIC_MINUTES_LOW = 1200
INTERNATIONAL_MINUTES = 600
CONFERENCE_MINUTES = 60
# The smaller domestic plans: the same minutes per license in every country.
SMALL_DOMESTIC_MINUTES = {DOMESTIC_PLAN_120: 120, DOMESTIC_PLAN_240: 240}

# domain/zone-a.csv: Audio Conferencing dial-out minutes cover these destinations only.
ZONE_A = frozenset(
    """AU AT BE BR BG CA CN HR CZ DK EE FI FR DE GR HK HU IN IE IT JP LU MY MX NL NZ NO PL
    PT PR RO RU SG SK SI ZA KR ES SE CH TW TH GB US""".split()
)


@dataclass(frozen=True)
class Product:
    sku: str
    name: str  # lazy translation
    capability: str
    unlimited: bool = False
    free: bool = False
    calling_plan: bool = False
    needs_teams_phone: bool = False
    description: str = ""


PRODUCTS: dict[str, Product] = {
    p.sku: p
    for p in [
        Product(
            CREDITS, _("Communications Credits"), "MCOPSTNPP", unlimited=True,
            description=_("Access to the shared prepaid balance."),
        ),
        Product(
            TEAMS_PHONE, _("Teams Phone Standard"), "MCOEV",
            description=_("Required by every calling plan."),
        ),
        Product(
            DOMESTIC_PLAN, _("Domestic Calling Plan"), "MCOPSTN1", calling_plan=True,
            needs_teams_phone=True,
            description=_("3000 domestic minutes (US, Canada, Puerto Rico) or 1200 elsewhere, "
                          "pooled per usage country and month."),
        ),
        Product(
            DOMESTIC_INTERNATIONAL_PLAN, _("Domestic and International Calling Plan"),
            "MCOPSTN2", calling_plan=True, needs_teams_phone=True,
            description=_("Domestic minutes as the Domestic plan, plus 600 international "
                          "minutes, pooled per usage country and month."),
        ),
        Product(
            PAYG_PLAN, _("Pay-As-You-Go Calling Plan"), "MCOPSTN_PAYG_1", calling_plan=True,
            needs_teams_phone=True,
            description=_("Every outbound minute is charged to Communications Credits."),
        ),
        Product(
            DOMESTIC_PLAN_120, _("Domestic Calling Plan (120 minutes)"), "MCOPSTN5",
            calling_plan=True, needs_teams_phone=True,
            description=_("120 domestic minutes per license, pooled per usage country and "
                          "month."),
        ),
        Product(
            DOMESTIC_PLAN_240, _("Domestic Calling Plan (240 minutes)"), "MCOPSTN6",
            calling_plan=True, needs_teams_phone=True,
            description=_("240 domestic minutes per license, pooled per usage country and "
                          "month."),
        ),
        Product(
            AUDIO_CONFERENCING, _("Audio Conferencing"), "MCOMEETADD",
            description=_("60 dial-out minutes per license per month, tenant-wide, "
                          "Zone A destinations only."),
        ),
        Product(
            AUDIO_CONFERENCING_PAY_PER_MINUTE, _("Audio Conferencing pay-per-minute"),
            "MCOMEETACPEA",
            description=_("Meeting dial-out paid per minute from Communications Credits, "
                          "without included minutes."),
        ),
        Product(
            RESOURCE_ACCOUNT, _("Teams Phone Resource Account"), "MCOEV_VIRTUALUSER", free=True,
            description=_("For auto attendants and call queues."),
        ),
    ]
}
SKUS = tuple(PRODUCTS)
CALLING_PLANS = frozenset(sku for sku, p in PRODUCTS.items() if p.calling_plan)
PRODUCT_CHOICES = [(p.sku, p.name) for p in PRODUCTS.values()]


def product(sku: str) -> Product | None:
    return PRODUCTS.get((sku or "").strip().upper())


def domestic_minutes_per_license(country: str) -> int:
    return DOMESTIC_MINUTES_HIGH if country in DOMESTIC_3000_COUNTRIES else DOMESTIC_MINUTES_LOW


def included_minutes(sku: str, kind: str, country: str = "") -> int:
    """Minutes one license of `sku` adds to a pool of `kind` in usage country `country`."""
    if kind == DOMESTIC and sku in (DOMESTIC_PLAN, DOMESTIC_INTERNATIONAL_PLAN):
        return domestic_minutes_per_license(country)
    if kind == DOMESTIC and sku in SMALL_DOMESTIC_MINUTES:
        return SMALL_DOMESTIC_MINUTES[sku]
    if kind == INTERNATIONAL and sku == DOMESTIC_INTERNATIONAL_PLAN:
        return INTERNATIONAL_MINUTES
    if kind == CONFERENCE and sku == AUDIO_CONFERENCING:
        return CONFERENCE_MINUTES
    return 0


# Which SKUs feed which pool kind.
POOL_SKUS = {
    DOMESTIC: (DOMESTIC_PLAN, DOMESTIC_INTERNATIONAL_PLAN, DOMESTIC_PLAN_120,
               DOMESTIC_PLAN_240),
    INTERNATIONAL: (DOMESTIC_INTERNATIONAL_PLAN,),
    CONFERENCE: (AUDIO_CONFERENCING,),
}
POOL_CAPABILITY = {
    DOMESTIC: "MCOPSTN1",
    INTERNATIONAL: "MCOPSTN2",
    CONFERENCE: "MCOMEETADD",
}


# The plans whose calls to domestic numbers take domestic pool minutes, in the order their
# capability is reported when a person holds more than one.
DOMESTIC_POOL_PLANS = (DOMESTIC_PLAN, DOMESTIC_PLAN_240, DOMESTIC_PLAN_120,
                       DOMESTIC_INTERNATIONAL_PLAN)


@dataclass(frozen=True)
class PoolKey:
    """One minute pool of one month (credits.services.licenses.pool_take_minutes)."""

    kind: str  # "domestic" | "international" | "conference"
    country: str  # usage country ISO2 for domestic/international; "" for conference
    month: date  # first day of the UTC month of the call start
