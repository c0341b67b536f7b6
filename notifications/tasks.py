"""Celery tasks of notifications: thin wrappers that take ids and call a service."""

from celery import shared_task

from . import selectors, services


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=services.SMTP_ERRORS,
    retry_backoff=services.RETRY_BACKOFF,
    retry_backoff_max=services.RETRY_BACKOFF_MAX,
    retry_jitter=True,
    max_retries=services.MAX_ATTEMPTS - 1,
)
def send_delivery(self, delivery_id: int) -> str:
    # Safe to run twice (acks_late, the sweep): the service sends only a queued delivery.
    return services.delivery_send(delivery_id=delivery_id)


@shared_task
def retry_stuck_deliveries() -> int:
    """Enqueue again the queued deliveries whose task was lost (broker down, worker
    killed) or is more than a minute late."""
    return services.enqueue_deliveries(selectors.due_delivery_ids(late_by_seconds=60))
