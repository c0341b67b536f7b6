"""`{% load words %}`: codes turned into words for pages, in the reader's language.

- `{{ entry.action|audit_action }}`, `{{ entry|audit_changes:currency }}` (a list of lines):
  credits.audit_text.
- `{{ attempt|decline_reason }}`, `{{ code|decline_reason }}`: credits.payments.reasons.
- `{{ entry|ledger_description }}`: credits.ledger_text.
"""

from django import template

from ..audit_text import action_name, change_lines
from ..ledger_text import ledger_description as _ledger_description
from ..payments.reasons import reason_for, recharge_failure_reason

register = template.Library()


@register.filter(name="audit_action")
def audit_action(action) -> str:
    return action_name(str(action or ""))


@register.filter(name="audit_changes")
def audit_changes(entry, currency="USD") -> list[str]:
    return change_lines(getattr(entry, "changes", entry), currency=currency or "USD")


@register.filter(name="decline_reason")
def decline_reason(value) -> str:
    """A failed attempt (its kind matters: credits.payments.reasons) or a reason code."""
    if hasattr(value, "reason_code"):
        return recharge_failure_reason(kind=value.kind, code=value.reason_code)
    return reason_for(str(value or ""))


@register.filter(name="ledger_description")
def ledger_description(entry) -> str:
    return _ledger_description(entry)
