"""`manage.py refund_purchase --org SLUG --invoice NUMBER [--amount N] --reason TEXT`: give
back part or all of a purchase or auto-recharge to the card it was paid with, up to what of
it is unspent (DESIGN.md section 8). Without --amount, all of the unspent remainder.

Exit 0: refunded; prints the credit note's number, and the new balance on the last line.
Exit 1: refused (nothing of it is unspent, more than the remainder asked, the gateway
refused); prints why. Exit 2: bad input (unknown organization or invoice, an amount or a
reason that cannot be used). Exit 3: the gateway has not answered yet; prints `pending`
and the refund's reference: do not run it again, the beat settles it.
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from credits.models import Invoice, Organization, RefundStatus
from credits.platform.services import Actor, ServiceError
from credits.selectors.billing import credit_balance
from credits.services.refunds import parse_refund_amount, refund_request

REFUSED = {"nothing_unspent", "above_unspent", "no_charge"}


class Command(BaseCommand):
    help = ("Refund a purchase or auto-recharge (by invoice number) up to its unspent "
            "remainder; prints the credit note's number and the new balance.")

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--invoice", required=True, help="invoice number, e.g. 2026-000012")
        parser.add_argument("--amount",
                            help="up to 2 decimal places; default: all that is unspent")
        parser.add_argument("--reason", required=True, help="why the purchase is refunded")

    def handle(self, *args, **opts):
        translation.activate("en")
        org = Organization.objects.filter(slug=opts["org"]).first()
        if org is None:
            raise CommandError(f"no organization with slug {opts['org']!r}", returncode=2)
        invoice = Invoice.objects.filter(organization=org,
                                         number=opts["invoice"].strip()).first()
        if invoice is None:
            raise CommandError(f"no invoice {opts['invoice']!r} in organization {org.slug}",
                               returncode=2)
        try:
            amount = (parse_refund_amount(opts["amount"], label="--amount")
                      if opts["amount"] is not None else None)
            refund = refund_request(invoice=invoice, amount=amount, reason=opts["reason"],
                                    actor=Actor.system("refund_purchase command"))
        except ServiceError as exc:
            if exc.code in REFUSED:
                raise CommandError(f"refused: {exc.message}", returncode=1) from exc
            raise CommandError(exc.message, returncode=2) from exc
        if refund.status == RefundStatus.PENDING:
            self.stdout.write(f"pending {refund.pk}")
            self.stdout.write(f"the refund of {refund.amount} {refund.currency} is not "
                              "confirmed yet; do not refund again: the sweep settles it")
            raise CommandError(f"pending {refund.pk}", returncode=3)
        if refund.status != RefundStatus.SUCCEEDED:
            raise CommandError(f"refused: the payment provider did not refund "
                               f"({refund.failure_code}): {refund.failure_reason}",
                               returncode=1)
        self.stdout.write(f"refunded {refund.amount} {refund.currency} of invoice "
                          f"{invoice.number}")
        self.stdout.write(f"credit note {refund.credit_note.number}")
        self.stdout.write(f"balance: {credit_balance(organization=org)} {refund.currency}")
