"""The demo's Direct Routing calls (a step of `seed_demo`, after usage.demo): 90 days of calls
through two Session Border Controllers of Contoso's own carrier, some of them failed with
the SIP codes an admin meets in Microsoft's report. Idempotent: the ids are derived from
the organization and the call's number, so a second run stores nothing new. Never charged.

Numbers are fictional ones reserved for drama: +1 206 555 01xx (North American Numbering
Plan) and +44 20 7946 0xxx (Ofcom).
"""

import random
import uuid
from datetime import UTC, datetime, time, timedelta

from django.utils import timezone

from credits.platform.services import Actor

from .direct_routing_store import direct_routing_ingest
from .ingest import MAX_ROWS_PER_BATCH

SBCS = ("sbc1.contoso.com", "sbc2.contoso.com")
REGIONS = ("USWE", "USEA", "EUWE")
# (final SIP code, Microsoft subcode, phrase, weight) of failed calls.
FAILURES = (
    (486, 560486, "Busy Here", 5),
    (404, 560404, "Not Found", 3),
    (408, 560408, "Request Timeout", 2),
    (503, 560503, "Service Unavailable", 2),
    (480, 560480, "Temporarily Unavailable", 1),
)
CALL_TYPES = (("dr_out", 6), ("dr_in", 5), ("dr_in_ucap", 2), ("dr_out_user_transfer", 1),
              ("dr_out_user_forwarding", 1))
DAYS = 90
_NAMESPACE = uuid.UUID("0c7d2f0e-93b4-4c39-8a55-6a8f5c1d2b10")


def _pstn_number(rng: random.Random) -> str:
    if rng.random() < 0.8:
        return f"+1206555{rng.randint(100, 199):04d}"
    return f"+4420794600{rng.randint(0, 99):02d}"


def demo_direct_routing_rows(org, people: list, today) -> list[dict]:
    rng = random.Random(f"{org.slug}-direct-routing")
    rows = []
    n = 0
    for back in range(DAYS, 0, -1):
        day = today - timedelta(days=back)
        if day.weekday() >= 5:
            continue
        for _ in range(rng.randint(3, 9)):
            n += 1
            person = rng.choice(people)
            call_type = rng.choices([t for t, _w in CALL_TYPES],
                                    [w for _t, w in CALL_TYPES])[0]
            sbc = SBCS[0] if rng.random() < 0.7 else SBCS[1]
            # The second SBC is the flaky one.
            failed = rng.random() < (0.06 if sbc == SBCS[0] else 0.2)
            invite = datetime.combine(day, time(8), tzinfo=UTC) + timedelta(
                seconds=rng.randint(0, 9 * 3600), milliseconds=rng.randint(0, 999))
            staff = f"+1206555{150 + person.pk % 50:04d}"
            outside = _pstn_number(rng)
            inbound = call_type.startswith("dr_in")
            bot = call_type.endswith("ucap")
            row = {
                "id": str(uuid.uuid5(_NAMESPACE, f"{org.pk}:{n}")),
                "correlationId": str(uuid.uuid5(_NAMESPACE, f"{org.pk}:{n}:correlation")),
                "userId": None if bot else str(person.directory_id),
                "userPrincipalName": "" if bot else person.upn,
                "userDisplayName": "Contoso main line" if bot else person.display_name,
                "inviteDateTime": invite.isoformat(),
                "callType": call_type,
                "callerNumber": outside if inbound else staff,
                "calleeNumber": staff if inbound else outside,
                "trunkFullyQualifiedDomainName": sbc,
                "mediaBypassEnabled": sbc == SBCS[0],
                "mediaPathLocation": "" if sbc == SBCS[0] else rng.choice(REGIONS),
                "signalingLocation": rng.choice(REGIONS),
                "userCountryCode": person.usage_location or "US",
            }
            if failed:
                code, subcode, phrase, _w = rng.choices(FAILURES,
                                                        [f[3] for f in FAILURES])[0]
                failure = invite + timedelta(seconds=rng.randint(1, 30))
                row.update(startDateTime=failure.isoformat(),
                           failureDateTime=failure.isoformat(), duration=0,
                           successfulCall=False, finalSipCode=code, callEndSubReason=subcode,
                           finalSipCodePhrase=phrase)
            else:
                start = invite + timedelta(seconds=rng.randint(2, 12))
                duration = rng.randint(20, 1500)
                row.update(startDateTime=start.isoformat(),
                           endDateTime=(start + timedelta(seconds=duration)).isoformat(),
                           duration=duration, successfulCall=True, finalSipCode=0,
                           callEndSubReason=540000, finalSipCodePhrase="BYE")
            rows.append(row)
    return rows


def seed(org, out) -> None:
    people = [p for p in org.people.all().order_by("pk") if p.upn]
    if not people:
        return
    rows = demo_direct_routing_rows(org, people, timezone.now().astimezone(UTC).date())
    accepted = duplicates = rejected = 0
    actor = Actor.system("seed_demo")
    for offset in range(0, len(rows), MAX_ROWS_PER_BATCH):
        part = direct_routing_ingest(organization=org,
                                     rows=rows[offset:offset + MAX_ROWS_PER_BATCH],
                                     source="demo", actor=actor)
        accepted += part.accepted
        duplicates += part.duplicates
        rejected += len(part.rejected)
    out.write(f"direct routing: imported {accepted}, duplicates {duplicates}, "
              f"rejected {rejected}")
