import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from credits.models import Organization
from credits.services.tenants import Actor
from usage.ingest import FileError, rows_from_file
from usage.services import calls_ingest_all


class Command(BaseCommand):
    help = ("Import PSTN calls: Microsoft's PSTN usage export CSV, the export zip, or Graph "
            "JSON (a page {\"value\": [...]} or a list). Exit 0 when every row was taken, 1 "
            "when some were rejected, 2 when the file could not be read.")

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--org", required=True, help="organization slug")

    def handle(self, *args, file, org, **opts):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"no organization with slug {org!r}", returncode=2)
        try:
            rows = rows_from_file(Path(file).name, Path(file).read_bytes())
        except (OSError, FileError) as exc:
            self.stderr.write(f"cannot read {file}: {exc}")
            sys.exit(2)
        result = calls_ingest_all(organization=organization, rows=rows, source="import",
                                  actor=Actor.system("import_pstn_calls"))
        self.stdout.write(f"imported {result.accepted}, duplicates {result.duplicates}, "
                          f"rejected {len(result.rejected)}")
        for item in result.rejected:
            reasons = "; ".join(f"{k}: {v}" for k, v in item["errors"].items())
            self.stdout.write(f"row {item['index'] + 1} (id {item['id'] or '-'}): {reasons}")
        if result.rejected:
            sys.exit(1)
