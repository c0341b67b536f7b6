"""`manage.py create_org SLUG --name --country --currency`: a new, empty organization."""

from django.core.management.base import BaseCommand, CommandError

from credits.models import BillingAccountType
from credits.platform.services import ServiceError, organization_create


class Command(BaseCommand):
    help = "Create a new, empty organization."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--country", required=True, help="ISO 3166 alpha-2, e.g. US")
        parser.add_argument("--currency", required=True, help="ISO 4217, e.g. USD")
        parser.add_argument("--billing-region", help="country of the billing account")
        parser.add_argument(
            "--billing-account-type",
            choices=BillingAccountType.values,
            default=BillingAccountType.DIRECT,
        )

    def handle(self, *args, **opts):
        from django.core.exceptions import ValidationError

        try:
            org = organization_create(
                name=opts["name"],
                slug=opts["slug"],
                country=opts["country"],
                currency=opts["currency"],
                billing_region=opts["billing_region"],
                billing_account_type=opts["billing_account_type"],
            )
        except ServiceError as exc:
            raise CommandError(f"{exc.field}: {exc.message}") from exc
        except ValidationError as exc:
            errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            raise CommandError(errors) from exc
        self.stdout.write(f"created organization {org.slug} ({org.name}, {org.country}, "
                          f"{org.currency})")
