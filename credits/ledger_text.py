"""A ledger entry's description in the reader's language.

Entries store their description in English (it is part of the immutable record, and the
transactions export and API give it as it is); pages show it translated, rebuilt from the
entry's kind and the parameters the English text carries. A text of another shape (an
adjustment's reason, typed by a person) is shown as it is.
"""

import re
from datetime import date

from django.utils.translation import gettext as _

from .models import LedgerKind

_WITH_CARD = re.compile(
    r"^Communications Credits (?:purchase|auto-recharge)(?: \((?P<card>.*)\))?$")
_EXPIRY = re.compile(r"^Unused credits of (?P<day>\d{4}-\d{2}-\d{2}) expired$")
_REFUND = re.compile(r"^Refund of invoice (?P<number>\S+): (?P<reason>.*)$", re.S)
_USAGE = re.compile(r"^(?P<call_type>[a-z_]+) (?P<number>.*?) ?(?P<minutes>\d+) min$")


def ledger_description(entry) -> str:
    text = entry.description or ""
    kind = entry.kind
    if kind in (LedgerKind.PURCHASE, LedgerKind.AUTO_RECHARGE) and (m := _WITH_CARD.match(text)):
        words = (_("Communications Credits purchase") if kind == LedgerKind.PURCHASE
                 else _("Communications Credits auto-recharge"))
        return f"{words} ({m['card']})" if m["card"] else words
    if kind == LedgerKind.EXPIRY and (m := _EXPIRY.match(text)):
        from .templatetags.dates import format_day

        return _("Unused credits of %(date)s expired") % {
            "date": format_day(date.fromisoformat(m["day"]))}
    if kind == LedgerKind.REFUND and (m := _REFUND.match(text)):
        return _("Refund of invoice %(number)s: %(reason)s") % {
            "number": m["number"], "reason": m["reason"]}
    if kind == LedgerKind.USAGE and (m := _USAGE.match(text)):
        from .call_names import call_type_name
        from .templatetags.numbers import num

        name = call_type_name(m["call_type"])
        return _("%(call_type)s %(number)s, %(minutes)s min") % {
            "call_type": name, "number": m["number"], "minutes": num(int(m["minutes"]))}
    return text
