"""`manage.py import_people FILE --org SLUG`: the admin center's add-multiple-users CSV."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from credits.models import Organization
from credits.people_import import import_csv
from credits.platform.services import Actor


class Command(BaseCommand):
    help = (
        "Import people from the admin center's 'add multiple users' CSV "
        "(userPrincipalName,displayName,email,usageLocation,preferredLanguage,roles,licenses), "
        "buying the seats the licenses need. Exit 0: all rows taken; 1: some rejected; "
        "2: the file could not be read."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--org", required=True, help="organization slug")

    def handle(self, *args, **opts):
        org = Organization.objects.filter(slug=opts["org"]).first()
        if org is None:
            raise CommandError(f"no organization {opts['org']!r}")
        path = Path(opts["file"])
        try:
            data = sys.stdin.buffer.read() if opts["file"] == "-" else path.read_bytes()
        except OSError as exc:
            self.stderr.write(f"cannot read {path}: {exc.strerror or exc}")
            sys.exit(2)
        report = import_csv(
            organization=org, data=data, actor=Actor.system("import_people"), grow_seats=True
        )
        if report.fatal:
            self.stderr.write(f"cannot read {path}: {report.fatal}")
            sys.exit(2)
        for row in report.rows:
            status = "ok" if row.ok else "rejected"
            reason = f" [{row.code}]" if row.code else ""
            self.stdout.write(f"line {row.line}: {row.upn or '-'}: {status}{reason}: {row.message}")
        self.stdout.write(f"imported {report.taken}, rejected {report.rejected}")
        if report.exit_code:
            sys.exit(report.exit_code)
