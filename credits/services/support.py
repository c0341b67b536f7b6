"""Support requests from organizations that may not buy credits here."""

from django.db import transaction
from django.utils.translation import gettext as _

from ..models import Organization
from ..platform.services import Actor, ServiceError, audit_record

__all__ = ["support_request_create"]


@transaction.atomic
def support_request_create(*, organization: Organization, subject: str, message: str,
                           actor) -> str:
    """Record a support request (an organization that may not buy credits asks for help);
    returns its reference."""
    actor = Actor.coerce(actor)
    if not message.strip():
        raise ServiceError(_("Message: describe what you need."), field="message")
    entry = audit_record(organization=organization, actor=actor,
                         action="support_request.create",
                         changes={"subject": subject[:200], "message": message[:2000]})
    return f"SR-{entry.pk:06d}"
