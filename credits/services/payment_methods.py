"""Saved cards: adding one through the payment gateway (only its token is kept) and
removing one."""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import Organization, PaymentMethod
from ..payments.base import get_gateway
from ..platform.services import Actor, ServiceError, audit_record
from .ledger import credit_account_lock

__all__ = ["payment_method_add", "payment_method_remove", "active_payment_method"]


@transaction.atomic
def payment_method_add(
    *, organization: Organization, number: str, exp_month: int, exp_year: int, cvc: str,
    holder_name: str = "", actor,
) -> PaymentMethod:
    """Hand the card to the gateway; keep only its token, brand, last 4 and expiry."""
    actor = Actor.coerce(actor)
    result = get_gateway().tokenize_card(number=number, exp_month=exp_month,
                                         exp_year=exp_year, cvc=cvc)
    if not result.is_success:
        field = {"incorrect_cvc": "cvc", "expired_card": "exp_month"}.get(
            result.error_code, "number")
        raise ServiceError(result.message, field=field, code=result.error_code)
    method = PaymentMethod.objects.create(
        organization=organization, gateway_token=result.token, brand=result.brand,
        last4=result.last4, exp_month=result.exp_month, exp_year=result.exp_year,
        holder_name=holder_name[:128],
    )
    audit_record(organization=organization, actor=actor, action="payment_method.add",
                 target=method, changes={"card": method.label, "expiry": method.expiry_label})
    return method


@transaction.atomic
def payment_method_remove(*, organization: Organization, payment_method: PaymentMethod,
                          actor) -> None:
    actor = Actor.coerce(actor)
    account = credit_account_lock(organization=organization)
    method = PaymentMethod.objects.select_for_update(of=("self",), no_key=True).get(
        organization=organization, pk=payment_method.pk)
    if method.removed_at is not None:
        return
    if account.auto_recharge_enabled and account.auto_recharge_payment_method_id == method.pk:
        raise ServiceError(
            _("This card pays for auto-recharge. Choose another card or turn auto-recharge "
              "off first."), field="payment_method", code="in_use")
    method.removed_at = timezone.now()
    method.save(update_fields=["removed_at"])
    if account.auto_recharge_payment_method_id == method.pk:
        account.auto_recharge_payment_method = None
        account.save(update_fields=["auto_recharge_payment_method", "updated_at"])
    audit_record(organization=organization, actor=actor, action="payment_method.remove",
                 target=method, changes={"card": method.label})


def active_payment_method(organization, payment_method) -> PaymentMethod:
    """The organization's saved card (an instance or a pk), unless it was removed."""
    pk = payment_method.pk if isinstance(payment_method, PaymentMethod) else payment_method
    method = PaymentMethod.objects.filter(organization=organization, pk=pk,
                                          removed_at__isnull=True).first()
    if method is None:
        raise ServiceError(_("Payment method: choose one of your saved cards."),
                           field="payment_method")
    return method
