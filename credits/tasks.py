"""Celery tasks of `credits`: thin wrappers that take ids and call a service."""

from celery import shared_task

from . import events


@shared_task(acks_late=True)
def dispatch_event(event_id: int) -> bool:
    return events.event_dispatch(event_id=event_id)


@shared_task
def dispatch_pending_events() -> int:
    count = 0
    for event_id in events.pending_event_ids():
        count += bool(events.event_dispatch(event_id=event_id))
    return count
