"""The prepaid credit account, its immutable ledger, saved cards, recharge attempts and
invoices; plus the simulated payment gateway's own tables (credits.payments.simulated).

Design:
- `CreditAccount.balance` is a cache of `sum(LedgerEntry.amount)` for the account. Every
  write locks the account row (SELECT ... FOR UPDATE) first, then checks, then writes the
  entry and the new cached balance in the same transaction, so the two never drift.
- `LedgerEntry` rows are never updated or deleted: `save()` refuses an existing row,
  `delete()` refuses, and the default manager's queryset refuses `update()`/`delete()`.
  A mistake is corrected by a new `adjustment` entry. Amounts are in the account currency,
  2 decimal places; the sign per kind is a database CheckConstraint.
- `RechargeAttempt.id` is the idempotency key sent to the payment gateway. At most one
  automatic recharge is pending per account: a partial UniqueConstraint, not a hope.
- Only a gateway token, the brand, the last 4 digits and the expiry of a card are kept;
  never its number or CVC.
"""

import uuid

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..money import MAX_AMOUNT, MIN_AMOUNT, ZERO
from ..payments.cards import card_expired
from ..platform.models import Organization, Person

__all__ = [
    "AutoRechargeMode",
    "CreditAccount",
    "LedgerKind",
    "LedgerEntry",
    "LedgerEntryImmutable",
    "PaymentMethod",
    "RechargeKind",
    "RechargeStatus",
    "RechargeAttempt",
    "Invoice",
    "InvoiceSequence",
    "SimulatedGatewayCard",
    "SimulatedGatewayCharge",
]

MONEY = {"max_digits": 14, "decimal_places": 2}
# A target balance sits at least this far above the trigger (whole units, account currency).
TARGET_MARGIN = MIN_AMOUNT
# The smallest daily cap of automatic recharges a person may set (account currency).
DAILY_CAP_FLOOR = 1000
# A purchase order number, as the buyer's accounts payable wrote it.
PO_NUMBER_MAX_LENGTH = 40


class AutoRechargeMode(models.TextChoices):
    ADD_AMOUNT = "add_amount", _("Add this amount")
    TARGET_BALANCE = "target_balance", _("Recharge to this balance")


class CreditAccount(models.Model):
    """One prepaid balance per organization, in its billing currency."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="credit_account"
    )
    currency = models.CharField(_("currency"), max_length=3)
    # Cached sum of the ledger (account currency, 2 places); written only under the row lock.
    balance = models.DecimalField(_("balance"), default=ZERO, **MONEY)
    low_balance_threshold = models.DecimalField(
        _("low balance warning level"), null=True, blank=True, **MONEY
    )
    auto_recharge_enabled = models.BooleanField(_("auto-recharge"), default=False)
    # Whole amounts in the account currency (MIN_AMOUNT .. MAX_AMOUNT).
    auto_recharge_amount = models.DecimalField(
        _("add this amount"), null=True, blank=True, **MONEY
    )
    auto_recharge_trigger = models.DecimalField(
        _("when balance is below"), null=True, blank=True, **MONEY
    )
    auto_recharge_payment_method = models.ForeignKey(
        "PaymentMethod",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("payment method"),
    )
    auto_recharge_mode = models.CharField(
        _("recharge mode"), max_length=16, choices=AutoRechargeMode.choices,
        default=AutoRechargeMode.ADD_AMOUNT,
    )
    # "Recharge to this balance": whole, at least the trigger + TARGET_MARGIN.
    auto_recharge_target = models.DecimalField(
        _("recharge to this balance"), null=True, blank=True, **MONEY
    )
    # Automatic recharges of one UTC day add up to at most this (whole, account currency);
    # None: the default rule of credits.recharge_rules.
    auto_recharge_daily_cap = models.DecimalField(
        _("daily cap"), null=True, blank=True, **MONEY
    )
    # Copied onto each automatic recharge, and so onto its invoice.
    auto_recharge_po_number = models.CharField(
        _("PO number"), max_length=PO_NUMBER_MAX_LENGTH, blank=True
    )
    # Settled credits usage of one UTC calendar month (credits.spend_limits), at most this
    # much; None: no limit.
    monthly_spend_limit = models.DecimalField(
        _("monthly spend limit"), null=True, blank=True, **MONEY
    )
    declines_in_a_row = models.PositiveIntegerField(default=0)
    # Back-off after a failed automatic recharge: no new attempt before this instant.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("credit account")
        constraints = [
            models.CheckConstraint(
                condition=Q(auto_recharge_amount__isnull=True)
                | Q(auto_recharge_amount__gte=MIN_AMOUNT, auto_recharge_amount__lte=MAX_AMOUNT),
                name="credit_account_recharge_amount_range",
            ),
            models.CheckConstraint(
                condition=Q(auto_recharge_trigger__isnull=True)
                | Q(auto_recharge_trigger__gte=MIN_AMOUNT,
                    auto_recharge_trigger__lte=MAX_AMOUNT),
                name="credit_account_recharge_trigger_range",
            ),
            models.CheckConstraint(
                condition=Q(auto_recharge_enabled=False)
                | Q(
                    auto_recharge_trigger__isnull=False,
                    auto_recharge_payment_method__isnull=False,
                )
                & (Q(auto_recharge_mode="add_amount", auto_recharge_amount__isnull=False)
                   | Q(auto_recharge_mode="target_balance",
                       auto_recharge_target__isnull=False)),
                name="credit_account_recharge_complete_when_on",
            ),
            models.CheckConstraint(
                condition=Q(auto_recharge_mode__in=["add_amount", "target_balance"]),
                name="credit_account_recharge_mode_known",
            ),
            models.CheckConstraint(
                condition=Q(auto_recharge_target__isnull=True)
                | Q(auto_recharge_target__gte=MIN_AMOUNT, auto_recharge_target__lte=MAX_AMOUNT),
                name="credit_account_recharge_target_range",
            ),
            models.CheckConstraint(
                condition=~Q(auto_recharge_mode="target_balance")
                | Q(auto_recharge_target__isnull=True)
                | Q(auto_recharge_trigger__isnull=True)
                | Q(auto_recharge_target__gte=F("auto_recharge_trigger") + TARGET_MARGIN),
                name="credit_account_recharge_target_above_trigger",
            ),
            models.CheckConstraint(
                condition=Q(auto_recharge_daily_cap__isnull=True)
                | Q(auto_recharge_daily_cap__gte=DAILY_CAP_FLOOR,
                    auto_recharge_daily_cap__lte=MAX_AMOUNT),
                name="credit_account_recharge_daily_cap_range",
            ),
            models.CheckConstraint(
                condition=Q(low_balance_threshold__isnull=True) | Q(low_balance_threshold__gte=0),
                name="credit_account_low_threshold_positive",
            ),
        ]

    def __str__(self):
        return f"{self.organization} ({self.currency})"


class LedgerKind(models.TextChoices):
    PURCHASE = "purchase", _("Purchase")
    AUTO_RECHARGE = "auto_recharge", _("Auto-recharge")
    USAGE = "usage", _("Usage")
    EXPIRY = "expiry", _("Expiry")
    REFUND = "refund", _("Refund")
    ADJUSTMENT = "adjustment", _("Adjustment")


# Kinds bought with money: purchases and automatic recharges.
LOT_KINDS = (LedgerKind.PURCHASE, LedgerKind.AUTO_RECHARGE)
# The lots of the expiry rule (12 months, first in, first out): every entry that brings
# money in, so the bought kinds above and credit adjustments (a goodwill credit is a lot
# of its own). Usage, expiries, refunds and debit adjustments consume them.
LOT_ENTRIES = Q(amount__gt=0)


class LedgerEntryImmutable(Exception):
    """Raised on any attempt to change or remove a ledger entry."""


class LedgerEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise LedgerEntryImmutable("ledger entries are never updated")

    def delete(self):
        raise LedgerEntryImmutable("ledger entries are never deleted")

    # QuerySet.update_or_create and bulk_update reach update(); refuse them by name too.
    def bulk_update(self, objs, fields, batch_size=None):
        raise LedgerEntryImmutable("ledger entries are never updated")


class LedgerEntry(models.Model):
    """One balance change. Immutable: a correction is a new `adjustment` entry."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="ledger_entries"
    )
    account = models.ForeignKey(CreditAccount, on_delete=models.CASCADE, related_name="entries")
    kind = models.CharField(_("type"), max_length=16, choices=LedgerKind.choices)
    # Signed, account currency, 2 places: positive adds to the balance.
    amount = models.DecimalField(_("amount"), **MONEY)
    balance_after = models.DecimalField(_("balance after"), **MONEY)
    idempotency_key = models.CharField(max_length=200)
    description = models.CharField(_("description"), max_length=200, blank=True)
    # Who or what caused it: a person's UPN, "auto-recharge", "usage API", "expiry"...
    actor_label = models.CharField(max_length=200, blank=True)
    actor = models.ForeignKey(
        Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    recharge_attempt = models.OneToOneField(
        "RechargeAttempt", on_delete=models.PROTECT, null=True, blank=True,
        related_name="ledger_entry",
    )
    # For purchases and auto-recharges: when the lot's unused remainder expires.
    expires_at = models.DateTimeField(null=True, blank=True)
    # For expiry entries: the lot that expired.
    expired_lot = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="expiry_entry"
    )
    occurred_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = LedgerEntryQuerySet.as_manager()

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["-created_at", "-id"]
        constraints = [
            # The key first: a batch's charge keys are looked up by this index alone
            # (credits.platform.db.existing_values_pg_sql), whatever the statistics.
            models.UniqueConstraint(
                fields=["idempotency_key", "account"], name="ledger_unique_key_per_account"
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind__in=["purchase", "auto_recharge"], amount__gt=0)
                    | Q(kind__in=["usage", "expiry", "refund"], amount__lt=0)
                    | (Q(kind="adjustment") & ~Q(amount=0))
                ),
                name="ledger_amount_sign_per_kind",
            ),
            models.CheckConstraint(
                condition=Q(kind="expiry", expired_lot__isnull=False)
                | (~Q(kind="expiry") & Q(expired_lot__isnull=True)),
                name="ledger_expiry_names_its_lot",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "-created_at", "-id"], name="ledger_account_recent"),
            models.Index(fields=["account", "kind", "occurred_at"], name="ledger_account_kind"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.amount} -> {self.balance_after}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise LedgerEntryImmutable("ledger entries are never updated")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise LedgerEntryImmutable("ledger entries are never deleted")


class PaymentMethod(models.Model):
    """A saved card: a gateway token and what a person needs to recognise the card."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="payment_methods"
    )
    gateway_token = models.CharField(max_length=64, unique=True)
    brand = models.CharField(_("brand"), max_length=32)
    last4 = models.CharField(_("last 4 digits"), max_length=4)
    exp_month = models.PositiveSmallIntegerField(_("expiry month"))
    exp_year = models.PositiveSmallIntegerField(_("expiry year"))
    holder_name = models.CharField(_("name on card"), max_length=128, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Removed cards stay for the history of attempts and invoices that name them.
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("payment method")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(exp_month__gte=1, exp_month__lte=12), name="payment_method_month"
            ),
            models.CheckConstraint(condition=Q(last4__regex=r"^[0-9]{4}$"),
                                   name="payment_method_last4"),
        ]

    def __str__(self):
        return self.label

    @property
    def label(self) -> str:
        return f"{self.brand} •••• {self.last4}"

    @property
    def expiry_label(self) -> str:
        return f"{self.exp_month:02d}/{self.exp_year}"

    def is_expired(self, today=None) -> bool:
        return card_expired(self.exp_month, self.exp_year, today)


class RechargeKind(models.TextChoices):
    PURCHASE = "purchase", _("Purchase")
    AUTO_RECHARGE = "auto_recharge", _("Auto-recharge")


class RechargeStatus(models.TextChoices):
    PENDING = "pending", _("In progress")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class RechargeAttempt(models.Model):
    """One try to take money from a card: a one-time purchase or an automatic recharge.
    Its id is the gateway's idempotency key, so a retry never charges twice."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="recharge_attempts"
    )
    account = models.ForeignKey(CreditAccount, on_delete=models.CASCADE, related_name="attempts")
    kind = models.CharField(max_length=16, choices=RechargeKind.choices)
    amount = models.DecimalField(_("amount"), **MONEY)
    currency = models.CharField(max_length=3)
    payment_method = models.ForeignKey(PaymentMethod, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=16, choices=RechargeStatus.choices, default=RechargeStatus.PENDING
    )
    reason_code = models.CharField(max_length=32, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    gateway_reference = models.CharField(max_length=64, blank=True)
    gateway_tries = models.PositiveIntegerField(default=0)
    # After a transient gateway error: when the same key may be tried again.
    retry_at = models.DateTimeField(null=True, blank=True)
    # A one-time purchase form's own key: submitting the same confirmation twice buys once.
    request_key = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=200, blank=True)
    # The buyer's address, for the audit entry written when the charge settles.
    actor_ip = models.GenericIPAddressField(null=True, blank=True)
    actor = models.ForeignKey(
        Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    balance_before = models.DecimalField(null=True, blank=True, **MONEY)
    # The buyer's purchase order number, printed on the invoice.
    po_number = models.CharField(_("PO number"), max_length=PO_NUMBER_MAX_LENGTH, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("recharge attempt")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(status="pending", kind="auto_recharge"),
                name="one_auto_recharge_in_flight_per_account",
            ),
            models.UniqueConstraint(
                fields=["account", "request_key"],
                condition=~Q(request_key=""),
                name="recharge_unique_request_key",
            ),
            models.CheckConstraint(
                # Room above MAX_AMOUNT: an automatic recharge adds whole multiples of its
                # amount.
                condition=Q(amount__gte=MIN_AMOUNT, amount__lte=MAX_AMOUNT * 10),
                name="recharge_amount_range",
            ),
            models.CheckConstraint(
                condition=Q(status="pending", completed_at__isnull=True)
                | (~Q(status="pending") & Q(completed_at__isnull=False)),
                name="recharge_completed_when_done",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="recharge_pending",
                         condition=Q(status="pending")),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.amount} {self.currency} ({self.status})"


class InvoiceSequence(models.Model):
    """The last invoice number issued in a calendar year. Its row is locked by the
    transaction that credits the balance, so numbers are gapless: a rolled-back recharge
    gives its number back with everything else."""

    year = models.PositiveSmallIntegerField(primary_key=True)
    last = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("invoice sequence")

    def __str__(self):
        return f"{self.year}: {self.last}"


class Invoice(models.Model):
    """The receipt of one succeeded purchase or auto-recharge. Numbered `YYYY-NNNNNN`, one
    gapless series per calendar year (services.invoices)."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="credit_invoices"
    )
    number = models.CharField(_("invoice number"), max_length=32)
    attempt = models.OneToOneField(RechargeAttempt, on_delete=models.PROTECT,
                                   related_name="invoice")
    ledger_entry = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT,
                                        related_name="invoice")
    amount = models.DecimalField(_("amount"), **MONEY)
    currency = models.CharField(max_length=3)
    card_label = models.CharField(max_length=64)
    issued_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("invoice")
        ordering = ["-issued_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["number"], name="invoice_unique_number"),
        ]

    def __str__(self):
        return self.number


# --- the simulated gateway's own tables (credits.payments.simulated), not ours -------------


class SimulatedGatewayCard(models.Model):
    """The simulated gateway's card vault (the gateway's side, not ours): what a token
    does when charged. Holds no card number and no CVC."""

    token = models.CharField(max_length=64, unique=True)
    behaviour = models.CharField(max_length=32)
    brand = models.CharField(max_length=32)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    # For processing_error cards: how many more charges fail transiently (None: all).
    transient_errors_left = models.IntegerField(null=True, blank=True)
    # What a refund of this card's charges does ("": succeeds; credits.payments.simulated).
    refund_behaviour = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.token} ({self.behaviour})"


class SimulatedGatewayCharge(models.Model):
    """What the simulated gateway remembers per idempotency key, persistently: a retry
    with the same key returns the same final result and never charges twice."""

    idempotency_key = models.CharField(max_length=64, unique=True)
    token = models.CharField(max_length=64)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16)  # succeeded | failed | processing_error
    error_code = models.CharField(max_length=32, blank=True)
    reference = models.CharField(max_length=64, unique=True)
    tries = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.reference} {self.status}"
