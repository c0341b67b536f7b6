import signal
import sys
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from credits.models import Organization
from usage.exports import ExportJob, write_export
from usage.models import ExportFormat
from usage.report import EARLIEST, LATEST, ReportFilters


@contextmanager
def _stopped_cleanly():
    """SIGTERM (a `kill`, a container stopping) becomes an exception, so the writer removes
    its partial file and scratch folder as it does for Ctrl-C."""
    def stop(signum, frame):
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread (called from code): nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Command(BaseCommand):
    help = ("Export the PSTN usage of an organization for the UTC days FROM..TO (both "
            "included): an Excel workbook (xlsx) or Microsoft's CSV zip (csv-zip). The same "
            "files as the report's Export buttons, external numbers masked alike.")

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
        parser.add_argument("--to", dest="end", required=True, help="last day, YYYY-MM-DD")
        parser.add_argument("--format", dest="fmt", required=True,
                            choices=list(ExportFormat.values))
        parser.add_argument("-o", "--output", required=True, help="file to write")
        parser.add_argument("--direct-routing", action="store_true",
                            help="add the Direct Routing calls of the range (a DirectRouting "
                                 "sheet, a DirectRouting.calls.<date>.csv member)")

    def handle(self, *args, org, start, end, fmt, output, direct_routing=False, **opts):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"no organization with slug {org!r}", returncode=2)
        try:
            first, last = date.fromisoformat(start), date.fromisoformat(end)
        except ValueError as exc:
            raise CommandError(f"dates are YYYY-MM-DD: {exc}", returncode=2) from None
        if last < first:
            raise CommandError("--to is before --from", returncode=2)
        if first < EARLIEST or last > LATEST:
            raise CommandError(f"dates are from {EARLIEST} to {LATEST}", returncode=2)
        job = ExportJob(organization, ReportFilters(start=first, end=last, range="custom"),
                        timezone.now(), None, "export_pstn_usage",
                        direct_routing=direct_routing)
        try:
            with _stopped_cleanly():
                rows = write_export(Path(output), job, fmt)
        except OSError as exc:
            self.stderr.write(f"cannot write {output}: {exc}")
            sys.exit(2)
        self.stdout.write(f"exported {rows} calls to {output}")
