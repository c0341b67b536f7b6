from datetime import date

from django.core.management.base import BaseCommand, CommandError

from credits.models import Organization
from usage.rollups import rollups_rebuild


class Command(BaseCommand):
    help = ("Recompute the PSTN usage report's daily rollups from the call records (repair, "
            "or after loading calls outside the ingestion path). Without --from/--to, every "
            "day.")

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--from", dest="start", help="first UTC day, YYYY-MM-DD")
        parser.add_argument("--to", dest="end", help="last UTC day, YYYY-MM-DD")

    def handle(self, *args, org, start=None, end=None, **opts):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"no organization with slug {org!r}", returncode=2)
        try:
            first = date.fromisoformat(start) if start else None
            last = date.fromisoformat(end) if end else None
        except ValueError as exc:
            raise CommandError(f"dates are YYYY-MM-DD: {exc}", returncode=2) from None
        calls = rollups_rebuild(organization=organization, start=first, end=last)
        self.stdout.write(f"rebuilt rollups of {calls} calls")
