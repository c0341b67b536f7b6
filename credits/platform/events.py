"""Domain events: `credits` and `usage` say what happened; other apps subscribe.

`credits` never imports its subscribers (notifications subscribes in its AppConfig.ready()).
An event is a `DomainEvent` row written in the same transaction as the change (an outbox),
then dispatched after commit by a Celery task (`event_recorded`, connected by
credits.apps); the beat task `dispatch_pending_events` picks up anything a crash or a
broker outage left behind. Handlers must be idempotent: an event may be dispatched again
after a crash between a handler and the commit. A dispatch that raises is counted on the
event; after MAX_DISPATCH_FAILURES the event is parked (`parked_at`) and the sweep leaves
it, so one bad handler cannot hold up the events behind it.
"""

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone

from .models import DomainEvent, Organization

logger = logging.getLogger(__name__)

MAX_DISPATCH_FAILURES = 5

# Sent after the commit of an event's transaction with `event_id`.
event_recorded = Signal()

# Handlers are registered once at start-up (AppConfig.ready); this is configuration, not
# per-process state, so every web and worker process has the same registry.
_handlers: dict[str, list[Callable[[DomainEvent], None]]] = defaultdict(list)


def subscribe(name: str, handler: Callable[[DomainEvent], None]) -> None:
    if handler not in _handlers[name]:
        _handlers[name].append(handler)


def event_emit(
    *, organization: Organization, name: str, payload: dict, dedupe_key: str,
    occurred_at: datetime | None = None,
) -> DomainEvent | None:
    """Record an event in the current transaction; returns None when this occurrence
    (same dedupe_key) was already recorded. `occurred_at` dates an event about the past
    (a pool used up by calls imported later) when it happened, not when it was noticed."""
    try:
        with transaction.atomic():
            event = DomainEvent.objects.create(
                organization=organization, name=name, payload=payload, dedupe_key=dedupe_key,
                **({"occurred_at": occurred_at} if occurred_at is not None else {}),
            )
    except IntegrityError:
        return None
    transaction.on_commit(lambda: event_recorded.send(sender=DomainEvent, event_id=event.pk))
    return event


def event_dispatch(*, event_id: int) -> bool:
    """Run the handlers of one event once; True when it was dispatched by this call. When a
    handler raises, nothing of the dispatch is kept, the failure is counted on the event
    (parking it after MAX_DISPATCH_FAILURES) and the error is raised again."""
    try:
        with transaction.atomic():
            event = (
                # Only the event row: select_related would lock the organization too.
                DomainEvent.objects.select_for_update(skip_locked=True, of=("self",),
                                                      no_key=True)
                .filter(pk=event_id, dispatched_at__isnull=True, parked_at__isnull=True)
                .select_related("organization")
                .first()
            )
            if event is None:
                return False
            for handler in _handlers.get(event.name, []):
                handler(event)
            event.dispatched_at = timezone.now()
            event.save(update_fields=["dispatched_at"])
    except Exception as exc:
        _dispatch_failed(event_id, exc)
        raise
    return True


def _dispatch_failed(event_id: int, exc: Exception) -> None:
    with transaction.atomic():
        DomainEvent.objects.filter(pk=event_id, dispatched_at__isnull=True).update(
            dispatch_failures=F("dispatch_failures") + 1, last_error=repr(exc)[:500])
        DomainEvent.objects.filter(pk=event_id, parked_at__isnull=True,
                                   dispatch_failures__gte=MAX_DISPATCH_FAILURES).update(
            parked_at=timezone.now())


def pending_event_ids(*, older_than_seconds: int = 30, limit: int = 500) -> list[int]:
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
    return list(
        DomainEvent.objects.filter(dispatched_at__isnull=True, parked_at__isnull=True,
                                   occurred_at__lte=cutoff)
        .order_by("occurred_at")
        .values_list("pk", flat=True)[:limit]
    )
