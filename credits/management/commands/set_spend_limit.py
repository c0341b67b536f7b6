"""`manage.py set_spend_limit --org SLUG [--person UPN] --monthly N|off`: the
organization's (or one person's) monthly credits spend limit (DESIGN.md section 8,
credits.spend_limits).

N is an amount in the account currency with at most 2 decimal places (0 stops every call
that credits would pay); `off` removes the limit. Prints the limit and the month's settled
spend against it on its last line.

Exit codes: 0 set (or already so), 1 refused by a rule (the reason is printed), 2 bad
input (unknown organization or person, an amount that cannot be read).
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone, translation

from credits.models import Organization
from credits.platform.services import Actor, ServiceError
from credits.selectors.spend_limits import organization_spend, person_spend
from credits.services.spend_limits import person_spend_limit_set, spend_limit_set
from credits.spend_limits import LimitError, month_key, parse_limit


class Command(BaseCommand):
    help = ("Set or remove the monthly credits spend limit of an organization, or of one "
            "person with --person.")

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--person", default="", help="user principal name of a person")
        parser.add_argument("--monthly", required=True,
                            help="the limit per calendar month (UTC), e.g. 500 or 99.50; "
                                 "off for no limit")

    def handle(self, *args, **opts):
        translation.activate("en")
        org = Organization.objects.filter(slug=opts["org"]).first()
        if org is None:
            raise CommandError(f"no organization with slug {opts['org']!r}", returncode=2)
        upn = (opts["person"] or "").strip()
        person = None
        if upn:
            person = org.people.filter(upn__iexact=upn).first()
            if person is None:
                raise CommandError(f"no person {upn!r} in {org.slug}", returncode=2)
        try:
            limit = parse_limit(opts["monthly"], label="--monthly")
        except LimitError as exc:
            raise CommandError(exc.message, returncode=2) from exc
        actor = Actor.system("set_spend_limit command")
        try:
            if person is None:
                spend_limit_set(organization=org, monthly_limit=limit, actor=actor)
            else:
                person = person_spend_limit_set(person=person, monthly_limit=limit,
                                                actor=actor)
        except ServiceError as exc:
            code = 2 if exc.code == "invalid_limit" else 1
            raise CommandError(f"refused: {exc.message}" if code == 1 else exc.message,
                               returncode=code) from exc
        now = timezone.now()
        line = (organization_spend(organization=org, at=now) if person is None
                else person_spend(person=person, at=now))
        whose = "monthly spend limit" if person is None else \
            f"monthly credits limit of {person.upn}"
        if line.limit is None:
            self.stdout.write(f"{whose}: off (spent in {month_key(line.month)}: "
                              f"{line.spent} {line.currency})")
        else:
            self.stdout.write(f"{whose}: {line.limit} {line.currency} (spent in "
                              f"{month_key(line.month)}: {line.spent} {line.currency}, "
                              f"{line.percent}%)")
