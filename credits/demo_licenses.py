"""Demo subscriptions and licenses for `contoso` (run by seed_demo after the people exist).

A mix of plans in four usage countries (US, CA, FR, GB): domestic, domestic and
international, pay-as-you-go, Audio Conferencing; some people with Communications Credits
and some without; one person with credits and nothing to use them on (the page warns), one
unlicensed. Assignments are dated 120 days back so the 90 days of demo call history find
the licenses in force when each call started. Idempotent.
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from .models import LicenseAssignment, Subscription
from .platform.services import Actor
from .services.licenses import license_assign, subscription_ensure, subscription_set_seats

SEATS = {
    "MCOEV": 20,
    "MCOPSTN1": 10,
    "MCOPSTN2": 6,
    "MCOPSTN_PAYG_1": 5,
    "MCOMEETADD": 12,
    "PHONESYSTEM_VIRTUALUSER": 5,
}

# upn prefix -> SKUs (Teams Phone listed before the plans that need it)
LICENSES = {
    "megan.bowen": ["MCOEV", "MCOPSTN2", "MCOMEETADD", "MCOPSTNC"],
    "alex.wilber": ["MCOEV", "MCOPSTN1", "MCOMEETADD", "MCOPSTNC"],
    "adele.vance": ["MCOEV", "MCOPSTN1"],
    "camille.dubois": ["MCOEV", "MCOPSTN2", "MCOMEETADD", "MCOPSTNC"],
    "jeanne.leroy": ["MCOMEETADD"],
    "oliver.smith": ["MCOEV", "MCOPSTN1", "MCOPSTNC"],
    "richard.malk": ["MCOEV", "MCOPSTN_PAYG_1", "MCOPSTNC"],
    "isaiah.langer": ["MCOEV", "MCOPSTN1", "MCOMEETADD"],
    "lynne.robbins": ["MCOEV", "MCOPSTN1", "MCOPSTNC"],
    "lucas.martin": ["MCOEV", "MCOPSTN_PAYG_1", "MCOPSTNC"],
    "chloe.bernard": ["MCOEV", "MCOPSTN1", "MCOMEETADD"],
    "emma.wilson": ["MCOEV", "MCOPSTN2", "MCOPSTNC"],
    "harry.jones": ["MCOPSTNC"],
    "diego.siciliani": ["MCOEV", "MCOPSTN2", "MCOMEETADD", "MCOPSTNC"],
    "mainline": ["PHONESYSTEM_VIRTUALUSER", "MCOPSTNC"],
    # nestor.wilke: unlicensed
}
HISTORY_DAYS = 120


def seed(org, out) -> None:
    actor = Actor.system("seed_demo")
    since = timezone.now() - timedelta(days=HISTORY_DAYS)
    created = 0
    with transaction.atomic():
        subscription_ensure(organization=org, sku="MCOPSTNC", actor=actor)
        for sku, seats in SEATS.items():
            sub = subscription_ensure(organization=org, sku=sku, actor=actor)
            if (sub.seats or 0) < seats:
                subscription_set_seats(subscription=sub, seats=seats, actor=actor)
        people = {p.upn.split("@")[0]: p for p in org.people.all()}
        for prefix, skus in LICENSES.items():
            person = people.get(prefix)
            if person is None:
                continue
            for sku in skus:
                if LicenseAssignment.objects.filter(
                    person=person, sku=sku, removed_at__isnull=True
                ).exists():
                    continue
                assignment = license_assign(person=person, sku=sku, actor=actor)
                # Backdated so the demo call history (90 days) is rated with them.
                LicenseAssignment.objects.filter(pk=assignment.pk).update(assigned_at=since)
                created += 1
    subs = Subscription.objects.filter(organization=org).count()
    active = LicenseAssignment.objects.filter(organization=org, removed_at__isnull=True).count()
    out.write(f"licenses: {subs} subscriptions, {active} assigned ({created} new)")
