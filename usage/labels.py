"""Readable, translated names for the codes of Microsoft's PSTN usage report
(domain/call-types.csv, domain/capabilities.csv) and of this system's rating.

Pages show the name; where Microsoft's report shows the code (call type, capability), the
code stays beside the name, so a row can still be matched with Microsoft's. API fields and
the machine columns of exports keep the codes.
"""

from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from credits.call_names import (  # noqa: F401 (the names the report pages use)
    CALL_TYPE_NAMES,
    CAPABILITY_NAMES,
    call_type_name,
    capability_name,
)

from .rating import MAX_CHARGE_PER_CALL

# Why a call could not be rated (CallRecord.unrated_reason).
UNRATED_REASONS = {
    "unknown_call_type": _("the call type is not one this system knows"),
    "masked_number": _("the priced number is masked"),
    "ambiguous_masked_number": _(
        "the priced number is masked and its hidden digits could change the matching rate"),
    "missing_number": _("the priced number is empty"),
    "not_a_number": _("the priced number is not a phone number"),
    "no_rate": _("no rate in the deck matches the number"),
    "no_toll_free_rate": _("the called toll-free number has no inbound toll-free rate"),
    "charge_over_limit": format_lazy(
        _("the call would cost more than {limit}, the limit for one call"),
        limit=MAX_CHARGE_PER_CALL),
}


def unrated_reason(code: str) -> str:
    return str(UNRATED_REASONS.get(code or "", code or ""))


def with_code(name: str, code: str) -> str:
    """"Outbound call (user_out)": the name, and Microsoft's code beside it."""
    if not code or name == code:
        return code or ""
    return f"{name} ({code})"
