"""Reads of the prepaid credit account. Every function takes the organization it reads in."""

import math
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_CEILING, Decimal

from django.db.models import F, Min, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from ..models import (
    AutoRechargeMode,
    BillingAccountType,
    CreditAccount,
    Invoice,
    LedgerEntry,
    LedgerKind,
    Organization,
    PaymentMethod,
    RechargeAttempt,
    RechargeKind,
    RechargeStatus,
)
from ..money import CENT, MIN_AMOUNT, ZERO
from ..recharge_rules import (
    RechargeDue,
    RechargeSettings,
    daily_cap_of,
    recharge_due,
    utc_day_start,
)


def credit_account_get(*, organization: Organization) -> CreditAccount | None:
    return (CreditAccount.objects.select_related("auto_recharge_payment_method")
            .filter(organization=organization).first())


def credit_balance(*, organization: Organization) -> Decimal:
    """0.00 when the organization has no account yet."""
    balance = (CreditAccount.objects.filter(organization=organization)
               .values_list("balance", flat=True).first())
    return balance if balance is not None else ZERO


def balance_below_warning(*, balance: Decimal, threshold: Decimal | None) -> bool:
    """Under the admin's warning level (None: no level). The banner and the balance_low
    notification both read this rule."""
    return threshold is not None and balance < threshold


def balance_alert(*, account: CreditAccount | None, balance: Decimal) -> str | None:
    """Which balance banner to show: "zero" (paid calls are stopped), "low" (under the
    admin's warning level) or None. One rule for every page that shows the banners."""
    if account is None:
        return None
    if balance <= 0:
        return "zero"
    if balance_below_warning(balance=balance, threshold=account.low_balance_threshold):
        return "low"
    return None


def auto_recharge_spent_today(*, account: CreditAccount, now=None) -> Decimal:
    """Automatic recharges of the current UTC day, pending or succeeded: what counts toward
    the daily cap."""
    now = now or timezone.now()
    if account.pk is None:
        return ZERO
    return (account.attempts.filter(
        kind=RechargeKind.AUTO_RECHARGE, created_at__gte=utc_day_start(now),
        status__in=[RechargeStatus.PENDING, RechargeStatus.SUCCEEDED],
    ).aggregate(s=Sum("amount"))["s"] or ZERO)


@dataclass(frozen=True)
class ChargeNow:
    """What auto-recharge charges now: an attempt already in flight, or a new one."""

    amount: Decimal  # 0.00: nothing
    payment_method: PaymentMethod | None
    pending: RechargeAttempt | None = None
    due: RechargeDue | None = None


def auto_recharge_charge_now(*, account: CreditAccount, settings: RechargeSettings | None = None,
                             payment_method: PaymentMethod | None = None,
                             now=None) -> ChargeNow:
    """The charge auto-recharge makes at once with `settings` (the account's by default),
    leaving aside whether it is on: the automatic attempt in flight, or the amount
    `recharge_due` gives for the balance and today's recharges. Under the account lock it
    is what the service charges; without it, what a confirmation page announces."""
    pending = None
    if account.pk is not None:  # an account not created yet has no attempts
        pending = (account.attempts.filter(status=RechargeStatus.PENDING,
                                           kind=RechargeKind.AUTO_RECHARGE)
                   .select_related("payment_method").first())
    if pending is not None:
        return ChargeNow(amount=pending.amount, payment_method=pending.payment_method,
                         pending=pending)
    settings = settings or RechargeSettings.of_account(account)
    due = recharge_due(settings=settings, balance=account.balance,
                       spent_today=auto_recharge_spent_today(account=account, now=now))
    return ChargeNow(amount=due.amount,
                     payment_method=payment_method or account.auto_recharge_payment_method,
                     due=due)


def auto_recharge_paused_by_cap(*, account: CreditAccount | None, now=None) -> bool:
    """Auto-recharge is on, the balance is below the trigger, and today's daily cap leaves
    no room for a recharge: nothing is added before the next UTC day."""
    if (account is None or not account.auto_recharge_enabled
            or account.auto_recharge_trigger is None
            or account.balance >= account.auto_recharge_trigger):
        return False
    charge = auto_recharge_charge_now(account=account, now=now)
    return charge.due is not None and charge.due.capped and charge.amount == 0


def auto_recharge_daily_cap_shown(*, account: CreditAccount) -> dict | None:
    """The daily cap in force and whether it is the default rule, for the settings card."""
    if account.auto_recharge_trigger is None:
        return None
    settings = RechargeSettings.of_account(account)
    if settings.mode == AutoRechargeMode.TARGET_BALANCE and settings.target is None:
        return None
    if settings.mode == AutoRechargeMode.ADD_AMOUNT and settings.amount is None:
        return None
    return {"cap": daily_cap_of(settings), "default": settings.daily_cap is None}


def credit_account_summary(*, organization: Organization) -> dict:
    account = credit_account_get(organization=organization)
    if account is None:
        return {"balance": ZERO, "currency": organization.currency,
                "autoRecharge": {"enabled": False, "amount": None, "threshold": None,
                                 "mode": "add_amount", "target": None, "dailyCap": None,
                                 "paymentMethod": None}}
    pm = account.auto_recharge_payment_method
    daily_cap = auto_recharge_daily_cap_shown(account=account)

    def whole(value):
        return None if value is None else str(int(value))

    return {
        "balance": account.balance,
        "currency": account.currency,
        "autoRecharge": {
            "enabled": account.auto_recharge_enabled,
            "amount": whole(account.auto_recharge_amount),
            "threshold": whole(account.auto_recharge_trigger),
            "mode": account.auto_recharge_mode,
            "target": whole(account.auto_recharge_target),
            "dailyCap": whole(daily_cap["cap"]) if daily_cap else None,
            "paymentMethod": pm.label if pm and pm.removed_at is None else None,
        },
    }


def ledger_entries(*, organization: Organization) -> QuerySet[LedgerEntry]:
    """Newest first."""
    return LedgerEntry.objects.filter(organization=organization).select_related(
        *ledger_document_relations()).order_by("-created_at", "-id")


def payment_methods(*, organization: Organization) -> QuerySet[PaymentMethod]:
    return PaymentMethod.objects.filter(organization=organization, removed_at__isnull=True)


def preferred_payment_method(*, organization: Organization) -> PaymentMethod | None:
    """The card a purchase offers first: the one auto-recharge uses, else the newest card
    that has not expired (an expired card cannot pay)."""
    cards = list(payment_methods(organization=organization))
    auto_id = CreditAccount.objects.filter(organization=organization).values_list(
        "auto_recharge_payment_method_id", flat=True).first()
    for card in cards:
        if card.pk == auto_id:
            return card
    return next((c for c in cards if not c.is_expired()), cards[0] if cards else None)


def payment_method_get(*, organization: Organization, pk) -> PaymentMethod:
    return PaymentMethod.objects.get(organization=organization, pk=pk, removed_at__isnull=True)


def recharge_attempts(*, organization: Organization) -> QuerySet[RechargeAttempt]:
    return RechargeAttempt.objects.filter(organization=organization).select_related(
        "payment_method").order_by("-created_at")


def last_recharge(*, organization: Organization) -> RechargeAttempt | None:
    return recharge_attempts(organization=organization).first()


def invoices(*, organization: Organization) -> QuerySet[Invoice]:
    return Invoice.objects.filter(organization=organization).select_related(
        "attempt", "ledger_entry")


def invoice_get(*, organization: Organization, pk) -> Invoice:
    return invoices(organization=organization).get(pk=pk)


def usage_spend(*, organization: Organization, days: int, now=None) -> Decimal:
    """Credits spent on usage over the last `days` days (positive)."""
    now = now or timezone.now()
    total = (LedgerEntry.objects.filter(
        organization=organization, kind=LedgerKind.USAGE,
        occurred_at__gte=now - timedelta(days=days), occurred_at__lte=now,
    ).aggregate(s=Sum("amount"))["s"] or ZERO)
    return -total


def days_left_at_recent_rate(*, organization: Organization, balance: Decimal | None = None,
                             now=None) -> int | None:
    """Days of spend the balance covers at the last 30 days' rate; None without spend."""
    spend = usage_spend(organization=organization, days=30, now=now)
    if spend <= 0:
        return None
    if balance is None:
        balance = credit_balance(organization=organization)
    if balance <= 0:
        return 0
    return int(math.floor(balance / (spend / 30)))


def _round_up_to(value: Decimal, step: int) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def recommended_amounts(*, organization: Organization, now=None) -> dict:
    """DESIGN.md section 9: from the last 30-60 days of credit spend, a trigger of about a
    week's spend and an amount of about a month's, never below 50. Without history the
    seed's advice: start low, at the 50 minimum, and adjust after a month or two."""
    now = now or timezone.now()
    first = (LedgerEntry.objects.filter(organization=organization, kind=LedgerKind.USAGE)
             .aggregate(m=Min("occurred_at"))["m"])
    if first is None:
        return {"has_history": False, "days": 0, "daily": ZERO,
                "trigger": MIN_AMOUNT, "amount": MIN_AMOUNT}
    days = max(1, min(60, (now - first).days or 1))
    daily = usage_spend(organization=organization, days=days, now=now) / days
    trigger = max(MIN_AMOUNT, _round_up_to(daily * 7, 10))
    amount = max(MIN_AMOUNT, _round_up_to(daily * 30, 10))
    return {"has_history": True, "days": days, "daily": daily.quantize(CENT),
            "trigger": trigger, "amount": amount}


@dataclass(frozen=True)
class Eligibility:
    allowed: bool
    code: str = ""
    reason: str | Promise = ""
    next_step: str | Promise = ""
    offer_support_request: bool = False


def purchase_eligibility(*, organization: Organization) -> Eligibility:
    """Some organizations may not buy credits here; the page says why and what to do."""
    if organization.billing_account_type == BillingAccountType.PARTNER:
        return Eligibility(
            False, "partner",
            _("Your organization buys its plans through a partner (Cloud Solution "
              "Provider), so Communications Credits cannot be bought here."),
            _("Ask your partner to add Communications Credits to your subscription."),
        )
    if organization.billing_account_type == BillingAccountType.MCA:
        return Eligibility(
            False, "mca",
            _("Your billing account is post-paid (Microsoft Customer Agreement). Prepaid "
              "Communications Credits cannot be bought on a post-paid account."),
            _("Usage is billed on your invoice instead; contact your account manager to "
              "change the billing account."),
        )
    if organization.billing_region and organization.billing_region != organization.country:
        return Eligibility(
            False, "region",
            _("Your organization is in a different country or region (%(org)s) than the "
              "billing address of its agreement (%(billing)s), so Communications Credits "
              "cannot be bought for now.") % {"org": organization.country,
                                               "billing": organization.billing_region},
            _("Open a support request and support will work with you until a permanent "
              "solution is in place."),
            offer_support_request=True,
        )
    return Eligibility(True)


def auto_recharge_sweep_accounts(*, now=None, limit: int = 1000) -> list[int]:
    """Organizations whose automatic recharge is due (the event path may have missed them)."""
    now = now or timezone.now()
    return list(
        CreditAccount.objects.filter(
            auto_recharge_enabled=True, balance__lt=F("auto_recharge_trigger"))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .values_list("organization_id", flat=True)[:limit]
    )


def stale_recharge_attempt_ids(*, older_than_seconds: int = 120, now=None) -> list:
    """Pending attempts nobody finished (a worker died, a message was lost, the gateway
    gave no final answer), oldest first, whose retry back-off is over."""
    now = now or timezone.now()
    return list(
        RechargeAttempt.objects.filter(
            status=RechargeStatus.PENDING,
            created_at__lte=now - timedelta(seconds=older_than_seconds),
        ).filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
        .order_by("created_at").values_list("pk", flat=True)[:500]
    )


# Documents a ledger entry may point to, by their reverse one-to-one accessor: the invoice
# of a purchase or recharge, the credit note of a refund (when that model exists).
LEDGER_DOCUMENTS = ("invoice", "credit_note")


def pending_purchase(*, organization: Organization) -> RechargeAttempt | None:
    """The organization's latest purchase whose payment is not confirmed yet (the sweep
    settles it); while there is one, the add-funds page offers no new order."""
    return (RechargeAttempt.objects.filter(organization=organization,
                                           kind=RechargeKind.PURCHASE,
                                           status=RechargeStatus.PENDING)
            .select_related("payment_method").order_by("-created_at").first())


def ledger_document_relations() -> tuple[str, ...]:
    reverse = {rel.get_accessor_name() for rel in LedgerEntry._meta.related_objects
               if rel.one_to_one}
    return tuple(name for name in LEDGER_DOCUMENTS if name in reverse)


def ledger_entries_between(*, organization: Organization, start, end) -> QuerySet[LedgerEntry]:
    """Entries written in [start, end), in the order they were written. Every write holds
    the account lock while it takes its id, so in id order each entry's balance after is
    the previous one's plus its amount (created_at can tie within a batch)."""
    return (LedgerEntry.objects.filter(organization=organization, created_at__gte=start,
                                       created_at__lt=end)
            .select_related(*ledger_document_relations()).order_by("id"))


def ledger_balance_at(*, organization: Organization, at) -> Decimal:
    """The balance after the last entry written before `at` (0.00 before any)."""
    balance = (LedgerEntry.objects.filter(organization=organization, created_at__lt=at)
               .order_by("-id").values_list("balance_after", flat=True).first())
    return balance if balance is not None else ZERO
