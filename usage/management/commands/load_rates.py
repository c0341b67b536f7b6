"""`manage.py load_rates FILE --org SLUG`: loads a rate deck CSV."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from credits.models import Organization
from credits.platform.services import Actor, ServiceError
from usage.decks import DeckError, parse_deck
from usage.services import rate_deck_load


class Command(BaseCommand):
    help = ("Load a rate deck CSV (domain/rate-deck-format.md) into an organization. Nothing "
            "is loaded when a line is bad, unless --skip-bad-rows.")

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--skip-bad-rows", action="store_true",
                            help="load the good rows and report the bad ones")
        parser.add_argument("--merge", action="store_true",
                            help="add to the current deck instead of replacing it (rows with "
                                 "the same direction, prefix and effective_from are replaced)")

    def handle(self, *args, file, org, skip_bad_rows, merge, **opts):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"no organization with slug {org!r}")
        try:
            data = Path(file).read_bytes()
            rates, errors = parse_deck(data, organization.currency)
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc}") from exc
        except DeckError as exc:
            raise CommandError(str(exc)) from exc
        for line, reason in errors:
            self.stderr.write(f"line {line}: {reason}")
        if errors and not skip_bad_rows:
            raise CommandError(f"{len(errors)} bad line(s); nothing loaded "
                               "(use --skip-bad-rows to load the good ones)")
        try:
            count = rate_deck_load(organization=organization, rates=rates,
                                   source_name=Path(file).name, replace=not merge,
                                   actor=Actor.system("load_rates"))
        except ServiceError as exc:
            raise CommandError(f"{exc.message}; nothing loaded") from exc
        self.stdout.write(f"loaded {count} rates into {organization.slug}"
                          + (f", skipped {len(errors)} bad line(s)" if errors else ""))
