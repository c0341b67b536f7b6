"""Refunds of purchases and automatic recharges, and their credit notes; plus the
simulated payment gateway's memory of refunds (credits.payments.simulated).

Design:
- A `Refund` is one request to give money back to the card a purchase or auto-recharge
  (found by its `Invoice`) was paid with. Its id is the gateway's idempotency key, so a
  retry (after a time-out, by the sweep) never refunds twice. While pending, its amount is
  reserved: concurrent refunds of the same purchase see it and cannot together exceed the
  purchase's unspent remainder (services.refunds).
- A succeeded refund has one `refund` ledger entry (negative, taken from that purchase's
  lot) and one `CreditNote`, numbered `CN-YYYY-NNNNNN` in its own gapless series per
  calendar year (`CreditNoteSequence`, the same row-lock mechanism as invoices).
- Amounts are in the account currency, 2 decimal places.
"""

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..platform.models import Organization, Person
from .billing import MONEY, CreditAccount, Invoice, LedgerEntry

__all__ = [
    "RefundStatus",
    "Refund",
    "CreditNote",
    "CreditNoteSequence",
    "SimulatedGatewayRefund",
    "REFUND_REASON_MAX_LENGTH",
]

# The reason a billing admin gives; printed on the credit note.
REFUND_REASON_MAX_LENGTH = 200


class RefundStatus(models.TextChoices):
    PENDING = "pending", _("In progress")
    SUCCEEDED = "succeeded", _("Refunded")
    FAILED = "failed", _("Failed")


class Refund(models.Model):
    """Money given back for one purchase or auto-recharge. Its id is the gateway's
    idempotency key."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="refunds")
    account = models.ForeignKey(CreditAccount, on_delete=models.CASCADE,
                                related_name="refunds")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="refunds")
    # Positive, account currency, 2 places.
    amount = models.DecimalField(_("amount"), **MONEY)
    currency = models.CharField(max_length=3)
    reason = models.CharField(_("reason"), max_length=REFUND_REASON_MAX_LENGTH)
    status = models.CharField(max_length=16, choices=RefundStatus.choices,
                              default=RefundStatus.PENDING)
    failure_code = models.CharField(max_length=32, blank=True)
    failure_reason = models.CharField(max_length=200, blank=True)
    gateway_reference = models.CharField(max_length=64, blank=True)
    gateway_tries = models.PositiveIntegerField(default=0)
    # After a time-out: when the sweep may ask again under the same key.
    retry_at = models.DateTimeField(null=True, blank=True)
    # A refund form's own key: submitting the same confirmation twice refunds once.
    request_key = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=200, blank=True)
    actor = models.ForeignKey(Person, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("refund")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            models.UniqueConstraint(fields=["account", "request_key"],
                                    condition=~Q(request_key=""),
                                    name="refund_unique_request_key"),
            models.CheckConstraint(
                condition=Q(status="pending", completed_at__isnull=True)
                | (~Q(status="pending") & Q(completed_at__isnull=False)),
                name="refund_completed_when_done",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="refund_pending",
                         condition=Q(status="pending")),
        ]

    def __str__(self):
        return f"{_('Refund')} {self.amount} {self.currency} ({self.status})"


class CreditNoteSequence(models.Model):
    """The last credit-note number issued in a calendar year; locked by the transaction
    that writes the refund's ledger entry, so the series has no gap."""

    year = models.PositiveSmallIntegerField(primary_key=True)
    last = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("credit note sequence")

    def __str__(self):
        return f"{self.year}: {self.last}"


class CreditNote(models.Model):
    """The document of one succeeded refund, referencing the invoice it corrects.
    Numbered `CN-YYYY-NNNNNN`."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="credit_notes")
    number = models.CharField(_("credit note number"), max_length=32)
    refund = models.OneToOneField(Refund, on_delete=models.PROTECT, related_name="credit_note")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    ledger_entry = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT,
                                        related_name="credit_note")
    # Positive: the amount given back (the ledger entry holds it negative).
    amount = models.DecimalField(_("amount"), **MONEY)
    currency = models.CharField(max_length=3)
    reason = models.CharField(_("reason"), max_length=REFUND_REASON_MAX_LENGTH)
    issued_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("credit note")
        ordering = ["-issued_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["number"], name="credit_note_unique_number"),
            models.CheckConstraint(condition=Q(amount__gt=0),
                                   name="credit_note_amount_positive"),
        ]

    def __str__(self):
        return self.number


class SimulatedGatewayRefund(models.Model):
    """What the simulated gateway remembers per refund idempotency key (the gateway's side,
    not ours): a retry with the same key returns the same result and refunds once."""

    idempotency_key = models.CharField(max_length=64, unique=True)
    charge = models.ForeignKey("SimulatedGatewayCharge", on_delete=models.CASCADE,
                               related_name="refunds")
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16)  # succeeded | failed
    error_code = models.CharField(max_length=32, blank=True)
    reference = models.CharField(max_length=64, unique=True)
    tries = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.reference} {self.status}"
