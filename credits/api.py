"""The credits part of the JSON API (django-ninja). `config/api.py` mounts `router` behind
the per-organization bearer-token auth, which sets `request.auth` to the Organization."""

from ninja import Router, Schema

from .platform.api import Error
from .selectors.billing import credit_account_summary

router = Router(tags=["credits"])


class AutoRechargeOut(Schema):
    enabled: bool
    amount: str | None
    threshold: str | None
    mode: str = "add_amount"  # "add_amount" | "target_balance"
    target: str | None = None  # the balance a recharge brings back ("target_balance")
    dailyCap: str | None = None  # noqa: N815 (automatic recharges of one UTC day, at most)
    paymentMethod: str | None  # noqa: N815 (the API's field names are camelCase)


class BalanceOut(Schema):
    balance: str
    currency: str
    autoRecharge: AutoRechargeOut  # noqa: N815


# Documented like every endpoint: a missing or bad token is 401, too many requests 429.
@router.get("/credits/balance", response={200: BalanceOut, 401: Error, 429: Error},
            summary="Communications Credits balance")
def credits_balance(request):
    """The prepaid balance ("123.45", account currency) and the auto-recharge settings."""
    summary = credit_account_summary(organization=request.auth)
    return {**summary, "balance": str(summary["balance"])}
