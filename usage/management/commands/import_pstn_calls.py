"""`manage.py import_pstn_calls FILE --org SLUG`: Microsoft's export (CSV, zip) or Graph JSON.

Prints one summary line per kind of row, PSTN first (DESIGN.md section 8):
`PSTN: imported N, duplicates M, rejected K` and `Direct Routing: imported N, ...`, then
each rejected row with its reasons."""

import sys
import tempfile

from django.core.management.base import BaseCommand, CommandError

from credits.models import Organization
from credits.platform.services import Actor
from usage.direct_routing import DIRECT_ROUTING
from usage.imports import calls_import_file
from usage.ingest import FileError


def _reasons(item: dict) -> str:
    reasons = "; ".join(f"{k}: {v}" for k, v in item["errors"].items())
    kind = "Direct Routing " if item.get("kind") == DIRECT_ROUTING else ""
    return f"{kind}row {item['index'] + 1} (id {item['id'] or '-'}): {reasons}\n"


class Command(BaseCommand):
    help = ("Import PSTN and Direct Routing calls: Microsoft's PSTN usage export CSV, the "
            "export zip (PSTN.calls.*.csv and DirectRouting.calls.*.csv), or Graph JSON "
            "(pstnCallLogRow or directRoutingLogRow; a page {\"value\": [...]} or a list). "
            "Exit 0 when every row was taken, 1 when some were rejected, 2 when the file "
            "could not be read.")

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--org", required=True, help="organization slug")

    def handle(self, *args, file, org, **opts):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"no organization with slug {org!r}", returncode=2)
        # The summary line comes first but is known last: the rejected rows wait in a
        # temporary file, so a file of a million bad rows does not wait in memory.
        with tempfile.TemporaryFile("w+", encoding="utf-8",
                                    errors="backslashreplace") as spool:
            try:
                totals = calls_import_file(
                    organization=organization, path=file, source="import",
                    actor=Actor.system("import_pstn_calls"),
                    on_rejected=lambda item: spool.write(_reasons(item)))
            except (OSError, FileError) as exc:
                self.stderr.write(f"cannot read {file}: {exc}")
                sys.exit(2)
            self.stdout.write(f"PSTN: imported {totals.accepted}, duplicates "
                              f"{totals.duplicates}, rejected {totals.rejected_count}")
            self.stdout.write(f"Direct Routing: imported {totals.dr_accepted}, duplicates "
                              f"{totals.dr_duplicates}, rejected {totals.dr_rejected_count}")
            for warning in totals.warnings:
                self.stderr.write(f"warning: {warning}")
            spool.seek(0)
            for line in spool:
                self.stdout.write(line, ending="")
        if totals.rejected_count or totals.dr_rejected_count:
            sys.exit(1)
