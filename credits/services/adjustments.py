"""Manual adjustments of the balance: a goodwill credit or a correction, by a billing
administrator (the Transactions page) or support staff (`manage.py adjust_balance`).

An adjustment is one immutable `adjustment` ledger entry, signed: positive credits the
balance, negative debits it. Its idempotency key is made from the reference the person
gives (a ticket number, a form's key), never from the clock: the same reference twice
adjusts once, also when two requests race, because the key is checked under the account
lock and the database holds it unique per account.

Amounts have at most 2 decimal places (cents), like every ledger amount: a goodwill
credit of 12.50 is an ordinary correction.

A credit adjustment is a lot of its own for the expiry rule: it expires 12 months after
it was made, like bought credits (services.expiry). A debit that would leave the balance
below zero needs the caller's explicit confirmation (`confirm_below_zero`).
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import LedgerEntry, LedgerKind, Organization
from ..money import CENT, MAX_AMOUNT, PLAIN_DECIMAL, THOUSANDS, ZERO, money
from ..platform.services import Actor, ServiceError, audit_record
from ..templatetags.money import format_money
from .ledger import _emit_crossings, credit_account_lock, ledger_append, recharge_check_on_commit
from .recharges import LOT_LIFETIME_DAYS

__all__ = [
    "AdjustmentResult",
    "REASON_MAX_LENGTH",
    "REFERENCE_MAX_LENGTH",
    "adjustment_key",
    "balance_adjust",
    "parse_adjustment_amount",
]

KEY_PREFIX = "adjustment:"
# Both fit the entry's 200-character description: "<reason> (ref. <reference>)".
REASON_MAX_LENGTH = 120
REFERENCE_MAX_LENGTH = 64


@dataclass(frozen=True)
class AdjustmentResult:
    entry: LedgerEntry
    # False when the reference had adjusted the balance before: nothing new was written.
    created: bool
    balance: Decimal
    currency: str


def adjustment_key(reference: str) -> str:
    """The ledger idempotency key of the adjustment made under `reference`."""
    return KEY_PREFIX + reference.strip()


def parse_adjustment_amount(value, *, label) -> Decimal:
    """A signed amount a person typed ("-12.50", "+50", "1,000"): not zero, at most 2
    decimal places, within +/- MAX_AMOUNT. Raises ServiceError naming `label`."""
    if isinstance(value, float):  # money is Decimal: a float has lost cents already
        raise TypeError(f"{label}: amount must be a Decimal, not float")
    invalid = ServiceError(
        _("%(field)s: enter an amount such as 50 or -12.50.") % {"field": label},
        field="amount")
    if isinstance(value, (Decimal, int)):
        amount = Decimal(value)
    else:
        # Spaces (also no-break ones) group thousands in French: "-1 000".
        text = "".join(ch for ch in str(value or "") if not ch.isspace())
        if len(text) > 16:
            raise invalid
        if "," in text:
            # Only as a thousands separator ("1,000"): "12,50" is 12.50 to a French
            # reader, and reading it as 1,250 would move a hundred times too much.
            if not THOUSANDS.fullmatch(text.lstrip("+-")):
                raise invalid
            text = text.replace(",", "")
        if not PLAIN_DECIMAL.fullmatch(text):
            raise invalid
        try:
            amount = Decimal(text)
        except InvalidOperation as exc:
            raise invalid from exc
    if not amount.is_finite():
        raise invalid
    if amount != amount.quantize(CENT):
        raise ServiceError(_("%(field)s: use at most 2 decimal places.") % {"field": label},
                           field="amount")
    if amount == 0:
        raise ServiceError(_("%(field)s: an adjustment cannot be zero.") % {"field": label},
                           field="amount")
    if abs(amount) > MAX_AMOUNT:
        raise ServiceError(_("%(field)s must be between -%(max)s and %(max)s.")
                           % {"field": label, "max": f"{MAX_AMOUNT:,}"}, field="amount")
    return money(amount)


def _text(value, *, field: str, label: str, max_length: int) -> str:
    text = " ".join(str(value or "").split())  # no line breaks or tabs in a ledger line
    if not text:
        raise ServiceError(_("%(field)s is required.") % {"field": label}, field=field)
    if len(text) > max_length:
        raise ServiceError(_("%(field)s must be at most %(max)s characters.")
                           % {"field": label, "max": max_length}, field=field)
    if any(not ch.isprintable() for ch in text):
        raise ServiceError(_("%(field)s contains characters that cannot be printed.")
                           % {"field": label}, field=field)
    return text


@transaction.atomic
def balance_adjust(
    *,
    organization: Organization,
    amount: Decimal,
    reason: str,
    reference: str,
    actor,
    confirm_below_zero: bool = False,
) -> AdjustmentResult:
    """Credit (amount > 0) or debit (amount < 0) the balance by hand, once per reference.

    The same reference with the same amount returns the first adjustment (created=False);
    with another amount it is refused (code "reference_used"). A debit that leaves the
    balance below zero is refused (code "needs_confirmation") unless `confirm_below_zero`.
    """
    if isinstance(amount, float):
        raise TypeError("adjustment amount must be a Decimal, not float")
    amount = Decimal(amount)
    if not amount.is_finite() or amount != amount.quantize(CENT):
        raise ServiceError(_("Amount: use at most 2 decimal places."), field="amount")
    amount = money(amount)
    if amount == 0:
        raise ServiceError(_("Amount: an adjustment cannot be zero."), field="amount")
    reason = _text(reason, field="reason", label=_("Reason"), max_length=REASON_MAX_LENGTH)
    reference = _text(reference, field="reference", label=_("Reference"),
                      max_length=REFERENCE_MAX_LENGTH)
    actor = Actor.coerce(actor)
    account = credit_account_lock(organization=organization)
    key = adjustment_key(reference)
    # Under the lock: a concurrent adjustment with this reference has committed or not
    # started, so this read is the answer (the unique key would refuse a second row).
    earlier = LedgerEntry.objects.filter(account=account, idempotency_key=key).first()
    if earlier is not None:
        if earlier.amount != amount:
            raise ServiceError(
                _("The reference %(reference)s was already used on %(date)s for an "
                  "adjustment of %(amount)s. Use another reference.") % {
                    "reference": reference,
                    "date": earlier.created_at.date().isoformat(),
                    "amount": format_money(earlier.amount, account.currency)},
                field="reference", code="reference_used")
        return AdjustmentResult(entry=earlier, created=False, balance=account.balance,
                                currency=account.currency)
    before = account.balance
    after = before + amount
    if amount < 0 and after < ZERO and not confirm_below_zero:
        raise ServiceError(
            _("This debit takes the balance below zero, to %(after)s: paid calls stop "
              "until the balance is funded again. Confirm the debit to go ahead.")
            % {"after": format_money(after, account.currency)},
            field="amount", code="needs_confirmation")
    now = timezone.now()
    entry = ledger_append(
        account=account, kind=LedgerKind.ADJUSTMENT, amount=amount, key=key,
        description=f"{reason} (ref. {reference})", actor=actor, now=now,
        # A credit is a lot of its own: it expires like bought credits.
        expires_at=now + timedelta(days=LOT_LIFETIME_DAYS) if amount > 0 else None,
    )
    audit_record(organization=organization, actor=actor, action="credits.adjust",
                 target=entry, changes={
                     "amount": str(amount), "reason": reason, "reference": reference,
                     "balance": {"from": str(before), "to": str(account.balance)},
                     **({"below_zero_confirmed": True}
                        if amount < 0 and account.balance < 0 else {})})
    _emit_crossings(account=account, before=before, entries=[entry])
    recharge_check_on_commit(account)
    return AdjustmentResult(entry=entry, created=True, balance=account.balance,
                            currency=account.currency)
