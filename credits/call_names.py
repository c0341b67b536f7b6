"""Readable, translated names of Microsoft's call types and license capabilities
(domain/call-types.csv, domain/capabilities.csv). Here, in credits, because ledger entries
of usage are described with them too (credits never imports usage); usage.labels uses them
for the reports.
"""

from django.utils.translation import gettext_lazy as _

CALL_TYPE_NAMES = {
    "user_in": _("Inbound call"),
    "user_out": _("Outbound call"),
    "user_out_conf": _("Outbound: added to a call"),
    "user_out_transfer": _("Outbound: transferred"),
    "user_out_forwarding": _("Outbound: forwarded"),
    "conf_in": _("Conference dial-in"),
    "conf_out": _("Conference dial-out"),
    "unassigned_in": _("Call to an unassigned number"),
    "ucap_in": _("Inbound: auto attendant or call queue"),
    "ucap_out": _("Outbound: auto attendant or call queue"),
    # Direct Routing (domain/graph-direct-routing-log-row.md): the same kinds of call,
    # through the organization's own Session Border Controller.
    "dr_in": _("Inbound call"),
    "dr_out": _("Outbound call"),
    "dr_in_ucap": _("Inbound: auto attendant or call queue"),
    "dr_out_ucap": _("Outbound: auto attendant or call queue"),
    "dr_out_user_conf": _("Outbound: added to a call"),
    "dr_out_user_transfer": _("Outbound: transferred"),
    "dr_out_user_forwarding": _("Outbound: forwarded"),
    "dr_emergency_out": _("Emergency call"),
}

CAPABILITY_NAMES = {
    "MCOPSTNPP": _("Communications Credits"),
    "MCOPSTN1": _("Domestic Calling Plan"),
    "MCOPSTN2": _("Domestic and International Calling Plan"),
    "MCOPSTN5": _("Domestic Calling Plan (120 min)"),
    "MCOPSTN6": _("Domestic Calling Plan (240 min)"),
    "MCOPSTN8": _("Domestic Calling Plan (120 min, not pooled)"),
    "MCOPSTN9": _("International Calling Plan"),
    "MCOPSTNU": _("Domestic and International Calling Plan"),
    "MCOPSTNCAP": _("Common Area Phone"),
    "MCOEV": _("Teams Phone (auto attendant or call queue)"),
    "MCOEV_VIRTUALUSER": _("Teams Phone Resource Account"),
    "MCOMEETADD": _("Audio Conferencing"),
    "MCOMEETADD_DIALOUT_US": _("Audio Conferencing dial-out to US and Canada"),
    "MCOMEETACPEA": _("Audio Conferencing pay-per-minute"),
    "FREECALL": _("Free (not priced by Microsoft)"),
}


def call_type_name(code: str) -> str:
    """"Outbound call" for user_out; an unknown code as it is."""
    return str(CALL_TYPE_NAMES.get(code or "", code or ""))


def capability_name(code: str) -> str:
    return str(CAPABILITY_NAMES.get(code or "", code or ""))
