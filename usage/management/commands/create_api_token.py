"""`manage.py create_api_token --org SLUG --name NAME`: prints only the new token."""

from django.core.management.base import BaseCommand, CommandError

from credits.models import Organization
from credits.platform.services import Actor, ServiceError
from usage.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for an organization; prints only the token (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--name", required=True, help="what the token is for")

    def handle(self, *args, org, name, **opts):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"no organization with slug {org!r}")
        try:
            _token, raw = api_token_create(organization=organization, name=name,
                                           actor=Actor.system("create_api_token"))
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(raw)
