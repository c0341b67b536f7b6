"""The demo organization `contoso`, seeded by `manage.py seed_demo`.

Each app contributes a `demo.seed(org, out)` step (credits first, then usage, then
notifications); every step is idempotent, so seeding twice changes nothing.
"""

from django.db import transaction

from .models import Organization
from .platform.services import Actor, organization_create, person_create, person_enable_sign_in

DEMO_SLUG = "contoso"
DEMO_PASSWORD = "Contoso-Demo-2026!"
DEMO_ADMIN_EMAIL = "megan.bowen@contoso.com"

# display name, upn prefix, usage location, language, roles
PEOPLE = [
    ("Megan Bowen", "megan.bowen", "US", "en", ["global_administrator"]),
    ("Alex Wilber", "alex.wilber", "US", "en", ["billing_administrator"]),
    ("Adele Vance", "adele.vance", "US", "en", ["license_administrator"]),
    ("Camille Dubois", "camille.dubois", "FR", "fr", ["teams_communications_administrator"]),
    ("Jeanne Leroy", "jeanne.leroy", "FR", "fr", ["global_reader"]),
    ("Oliver Smith", "oliver.smith", "GB", "en", ["teams_administrator"]),
    ("Richard Malk", "richard.malk", "US", "en", []),
    ("Isaiah Langer", "isaiah.langer", "US", "en", []),
    ("Lynne Robbins", "lynne.robbins", "CA", "en", []),
    ("Lucas Martin", "lucas.martin", "FR", "fr", []),
    ("Chloé Bernard", "chloe.bernard", "FR", "fr", []),
    ("Emma Wilson", "emma.wilson", "GB", "en", []),
    ("Harry Jones", "harry.jones", "GB", "en", []),
    ("Diego Siciliani", "diego.siciliani", "US", "en", []),
    ("Nestor Wilke", "nestor.wilke", "US", "", []),
    ("Contoso Main Line", "mainline", "US", "", []),
]


def seed(out) -> Organization:
    actor = Actor.system("seed_demo")
    with transaction.atomic():
        org = Organization.objects.filter(slug=DEMO_SLUG).first()
        if org is None:
            org = organization_create(
                name="Contoso", slug=DEMO_SLUG, country="US", currency="USD", actor=actor
            )
            out.write("created organization contoso")
        existing = set(org.people.values_list("upn", flat=True))
        for name, prefix, country, lang, roles in PEOPLE:
            upn = f"{prefix}@contoso.com"
            if upn in existing:
                continue
            person = person_create(
                organization=org,
                display_name=name,
                upn=upn,
                # The resource account has no mailbox: notifications must skip it.
                email="" if prefix == "mainline" else upn,
                usage_location=country,
                preferred_language=lang,
                roles=roles,
                actor=actor,
            )
            if roles:
                person_enable_sign_in(person=person, password=DEMO_PASSWORD, actor=actor)
        out.write(f"people: {org.people.count()}")
    return org
