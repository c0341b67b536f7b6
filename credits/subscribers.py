"""What credits itself does when its events are dispatched (registered in apps.ready())."""

from .models import DomainEvent, RechargeAttempt
from .platform.services import Actor
from .products import CREDITS
from .services.licenses import subscription_ensure


def license_on_first_funding(event: DomainEvent) -> None:
    """The first money paid in gives the organization the Communications Credits license
    (unlimited seats). Paying is what grants it, stated here rather than inside the
    ledger's write; idempotent, as every handler must be."""
    if not event.payload.get("first_funding"):
        return
    attempt = (RechargeAttempt.objects.filter(pk=event.payload.get("attempt_id"))
               .select_related("actor").first())
    actor = (Actor(person=attempt.actor, label=attempt.actor_label or "auto-recharge")
             if attempt is not None else Actor.system("auto-recharge"))
    subscription_ensure(organization=event.organization, sku=CREDITS, actor=actor)
