"""`manage.py adjust_balance`: a signed manual credit (N > 0) or debit (N < 0) of the
balance, for support staff (DESIGN.md section 8). The same --reference twice adjusts once.

Exit codes: 0 adjusted (or already adjusted under this reference), 1 refused (the reason
is printed: the reference was used for another amount, or a debit would take the balance
below zero without --confirm-below-zero), 2 bad input (unknown organization, an amount,
reason or reference that cannot be used). The last line is the new balance.
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from credits.models import Organization
from credits.platform.services import Actor, ServiceError
from credits.services.adjustments import balance_adjust, parse_adjustment_amount

REFUSED = {"reference_used", "needs_confirmation"}


class Command(BaseCommand):
    help = ("A signed manual credit (N > 0) or debit (N < 0) of an organization's balance; "
            "the same reference twice adjusts once; prints the new balance.")

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--amount", required=True,
                            help="signed amount, up to 2 decimal places: 50, -12.50")
        parser.add_argument("--reason", required=True, help="why the balance is adjusted")
        parser.add_argument("--reference", required=True,
                            help="a ticket or case number; the same reference adjusts once")
        parser.add_argument("--confirm-below-zero", action="store_true",
                            help="allow a debit that takes the balance below zero")

    def handle(self, *args, **opts):
        translation.activate("en")
        org = Organization.objects.filter(slug=opts["org"]).first()
        if org is None:
            raise CommandError(f"no organization with slug {opts['org']!r}", returncode=2)
        try:
            amount = parse_adjustment_amount(opts["amount"], label="--amount")
            result = balance_adjust(
                organization=org, amount=amount, reason=opts["reason"],
                reference=opts["reference"], actor=Actor.system("adjust_balance command"),
                confirm_below_zero=opts["confirm_below_zero"],
            )
        except ServiceError as exc:
            if exc.code in REFUSED:
                hint = (" (pass --confirm-below-zero to allow it)"
                        if exc.code == "needs_confirmation" else "")
                raise CommandError(f"refused: {exc.message}{hint}", returncode=1) from exc
            raise CommandError(exc.message, returncode=2) from exc
        entry = result.entry
        if result.created:
            self.stdout.write(f"adjusted {entry.amount:+} {result.currency} "
                              f"(reference {opts['reference'].strip()})")
        else:
            self.stdout.write(f"already adjusted {entry.amount:+} {result.currency} under "
                              f"reference {opts['reference'].strip()} on "
                              f"{entry.created_at:%Y-%m-%d}: nothing changed")
        self.stdout.write(f"balance: {result.balance} {result.currency}")
