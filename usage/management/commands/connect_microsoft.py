"""`manage.py connect_microsoft --org SLUG --tenant-id T --client-id C --client-secret S
[--cloud global|usgov|china]`: connect an organization to Microsoft Graph (DESIGN.md section
8). The secret is stored encrypted (FIELD_ENCRYPTION_KEY) and never printed. Exit 0 when
saved, 1 with the reason in words when refused."""

import sys

from django.core.management.base import BaseCommand, CommandError

from credits.models import Organization
from credits.platform.services import Actor, ServiceError
from usage.microsoft.pull import microsoft_connection_save
from usage.models import MicrosoftCloud


class Command(BaseCommand):
    help = ("Connect an organization to Microsoft Graph with an Entra app registration "
            "(application permission CallRecords.Read.All, admin consent granted).")

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--tenant-id", required=True,
                            help="directory (tenant) ID: a GUID or contoso.onmicrosoft.com")
        parser.add_argument("--client-id", required=True, help="application (client) ID")
        parser.add_argument("--client-secret", required=True,
                            help="the client secret's Value")
        parser.add_argument("--cloud", default=MicrosoftCloud.GLOBAL,
                            choices=MicrosoftCloud.values, help="national cloud")
        parser.add_argument("--disabled", action="store_true",
                            help="do not pull on the schedule (pull_microsoft only)")

    def handle(self, *args, org, tenant_id, client_id, client_secret, cloud, disabled,
               **opts):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"no organization with slug {org!r}")
        try:
            connection = microsoft_connection_save(
                organization=organization, tenant_id=tenant_id, client_id=client_id,
                cloud=cloud, client_secret=client_secret, enabled=not disabled,
                actor=Actor.system("connect_microsoft"))
        except ServiceError as exc:
            self.stderr.write(f"not connected: {exc.field or 'connection'}: {exc.message}")
            sys.exit(1)
        self.stdout.write(f"connected {organization.slug} to tenant {connection.tenant_id} "
                          f"(client {connection.client_id}, cloud {connection.cloud}, "
                          f"secret {connection.secret_hint})")
