"""`manage.py pull_microsoft --org SLUG [--days N]`: pull call records from Microsoft Graph
now, from the watermarks (or the last N days), through the same ingestion as the API
(DESIGN.md section 8). Prints per kind `PSTN: pulled N, duplicates M, rejected K` and
`Direct Routing: pulled ...` (N new rows stored, M rows already there), then each rejected
row's reasons. Exit 0 when the pull succeeded, 1 with the reason in words when sign-in or
Graph failed (or another pull of the organization is running)."""

import sys

from django.core.management.base import BaseCommand, CommandError

from credits.models import Organization
from credits.platform.services import ServiceError
from usage.microsoft.pull import KIND_LABELS, KINDS, microsoft_pull
from usage.models import PullRunKind


class Command(BaseCommand):
    help = ("Pull PSTN and Direct Routing call records from Microsoft Graph now. Exit 0 on "
            "success, 1 with the reason when sign-in or Graph failed.")

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--days", type=int, default=None,
                            help="pull the last N days again (a backfill), 1 to 365")

    def handle(self, *args, org, days, **opts):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"no organization with slug {org!r}")
        kind = PullRunKind.BACKFILL if days is not None else PullRunKind.MANUAL
        try:
            outcome = microsoft_pull(organization=organization, kind=kind, days=days)
        except ServiceError as exc:
            self.stderr.write(f"{exc.field or 'error'}: {exc.message}")
            sys.exit(1)
        for name in KINDS:
            t = outcome.totals[name]
            self.stdout.write(f"{KIND_LABELS[name]}: pulled {t.pulled}, duplicates "
                              f"{t.duplicates}, rejected {t.rejected}")
        if outcome.run is not None:
            for item in outcome.run.rejected_sample:
                reasons = "; ".join(f"{k}: {v}" for k, v in (item.get("errors") or {}).items())
                self.stdout.write(f"rejected {KIND_LABELS.get(item.get('kind'), '')} row "
                                  f"(id {item.get('id') or '-'}): {reasons}")
        if not outcome.ok:
            self.stderr.write(f"pull failed: {outcome.message}")
            sys.exit(1)
