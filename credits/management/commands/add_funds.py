"""`manage.py add_funds`: a one-time purchase for support staff (DESIGN.md section 8).

Exit 0: succeeded; prints `invoice NUMBER`, and the new balance on the last line.
Exit 1: declined or refused; prints the reason.
Exit 3: pending (the gateway gave no final answer yet); prints `pending` and the attempt's
reference. Do not run it again for the same order: the beat sweep settles the attempt and
the credit roles are told the outcome."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from credits.models import Organization, RechargeStatus
from credits.platform.services import Actor, ServiceError
from credits.selectors.billing import credit_account_get, payment_methods
from credits.services.payment_methods import payment_method_add
from credits.services.purchases import credits_purchase


class Command(BaseCommand):
    help = ("A one-time Communications Credits purchase through the payment gateway, for "
            "support staff; prints the new balance.")

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--amount", required=True, help="whole number, 50 to 100,000")
        parser.add_argument(
            "--card",
            help="a card number to save and charge (test cards of the simulated gateway); "
                 "without it, the auto-recharge card or the newest saved card is charged",
        )

    def handle(self, *args, **opts):
        org = Organization.objects.filter(slug=opts["org"]).first()
        if org is None:
            raise CommandError(f"no organization with slug {opts['org']!r}")
        actor = Actor.system("add_funds command")
        try:
            if opts["card"]:
                # The command has no expiry or CVC to ask for: a test card valid for years.
                method = payment_method_add(
                    organization=org, number=opts["card"], exp_month=12,
                    exp_year=timezone.now().year + 3, cvc="123", actor=actor,
                )
            else:
                account = credit_account_get(organization=org)
                method = account.auto_recharge_payment_method if account else None
                if method is None or method.removed_at is not None:
                    method = payment_methods(organization=org).first()
                if method is None:
                    raise CommandError("the organization has no saved card; pass --card NUMBER")
            attempt = credits_purchase(organization=org, amount=opts["amount"],
                                       payment_method=method, actor=actor)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        if attempt.status == RechargeStatus.PENDING:
            self.stdout.write(f"pending {attempt.pk}")
            self.stdout.write(f"the payment of {attempt.amount} {attempt.currency} with "
                              f"{method.label} is not confirmed yet; do not pay again: the "
                              "sweep settles it and the credit roles are told")
            raise CommandError(f"pending {attempt.pk}", returncode=3)
        if attempt.status != RechargeStatus.SUCCEEDED:
            raise CommandError(f"payment declined ({attempt.reason_code}): {attempt.reason}")
        account = credit_account_get(organization=org)
        self.stdout.write(f"added {attempt.amount} {attempt.currency} with {method.label}")
        self.stdout.write(f"invoice {attempt.invoice.number}")
        self.stdout.write(f"balance: {account.balance} {account.currency}")
