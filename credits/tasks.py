"""Celery tasks of `credits`: thin wrappers that take ids and call a service.

Recharge tasks are idempotent (the attempt id is the gateway's idempotency key and a
finished attempt is never finished again), so they acknowledge late: a worker that dies
mid-recharge has its message redelivered and the redelivery completes the same attempt.
"""

import logging

from celery import shared_task
from kombu.exceptions import OperationalError

from .models import Organization, RechargeAttempt
from .platform import events
from .selectors.billing import auto_recharge_sweep_accounts, stale_recharge_attempt_ids
from .services.expiry import funds_expire, funds_expiring_notify
from .services.people_imports import people_import_run, people_imports_sweep
from .services.recharges import (
    TransientGatewayError,
    auto_recharge_run,
    recharge_attempt_give_up,
    recharge_attempt_process,
)
from .services.refunds import refunds_settle_pending

logger = logging.getLogger(__name__)

RECHARGE_MAX_RETRIES = 5


@shared_task(acks_late=True)
def dispatch_event(event_id: int) -> bool:
    return events.event_dispatch(event_id=event_id)


@shared_task
def dispatch_pending_events() -> int:
    """Beat: dispatch what a crash or a broker outage left behind. One event whose handler
    fails is logged and counted (and parked after repeated failures); the others go on."""
    count = 0
    for event_id in events.pending_event_ids():
        try:
            count += bool(events.event_dispatch(event_id=event_id))
        except Exception:
            logger.exception("dispatch of event %s failed", event_id)
    return count


def enqueue_dispatch(sender=None, *, event_id: int, **_kwargs) -> None:
    """Receiver of events.event_recorded: dispatch the event in a worker (the sweep does it
    when the broker is down)."""
    try:
        dispatch_event.delay(event_id)
    except Exception:  # broker down: the beat sweep dispatches it later
        logger.warning("could not enqueue dispatch of event %s; the sweep will", event_id)


def on_auto_recharge_due(sender=None, *, organization_id: int, **_kwargs) -> None:
    """Receiver of ledger.auto_recharge_due."""
    enqueue_auto_recharge_check(organization_id)


def enqueue_auto_recharge_check(organization_id: int) -> None:
    """Ask a worker to check the account; a broker outage is logged, the sweep catches up."""
    try:
        auto_recharge_check.delay(organization_id)
    except (OperationalError, OSError):
        logger.warning("could not enqueue auto-recharge of org %s; the sweep will",
                       organization_id)


def _retry_later(attempt_id: str) -> str:
    """After a transient gateway error: try the same attempt (the same idempotency key)
    again after a growing back-off; after the last retry the attempt fails. The count of
    tries lives on the attempt row, so it survives redeliveries and restarts."""
    tries = RechargeAttempt.objects.filter(pk=attempt_id).values_list(
        "gateway_tries", flat=True).first() or 0
    if tries > RECHARGE_MAX_RETRIES:
        return recharge_attempt_give_up(attempt_id=attempt_id).status
    try:
        process_recharge_attempt.apply_async(args=[str(attempt_id)],
                                             countdown=min(60, 2 ** tries))
    except (OperationalError, OSError):
        logger.warning("could not enqueue retry of attempt %s; the sweep will", attempt_id)
    return "retrying"


@shared_task(acks_late=True, reject_on_worker_lost=True)
def auto_recharge_check(organization_id: int) -> str | None:
    """After a balance change below the trigger: start (or resume) the recharge and charge."""
    try:
        attempt = auto_recharge_run(organization_id=organization_id)
    except TransientGatewayError as exc:
        return _retry_later(str(exc.attempt_id))
    return attempt.status if attempt is not None else None


@shared_task(acks_late=True, reject_on_worker_lost=True)
def process_recharge_attempt(attempt_id: str) -> str:
    """Charge one attempt under its own id (idempotent; see _retry_later for retries)."""
    try:
        return recharge_attempt_process(attempt_id=attempt_id).status
    except TransientGatewayError:
        return _retry_later(attempt_id)


@shared_task
def auto_recharge_sweep() -> int:
    """Beat: catch any recharge the event path missed (broker down, worker died), and
    settle the purchases the gateway left pending (no final answer, a transient error).

    Each pending attempt is charged again under its own key, which never charges twice.
    After RECHARGE_MAX_RETRIES tries, the gateway is asked what it did under the key: what
    it confirms is credited, what it refused or never saw fails; when it cannot answer, the
    attempt stays pending for the next sweep, up to UNCONFIRMED_AFTER (a day) after the
    order, and then fails as `unconfirmed`. The outcome's event tells the credit roles and,
    for a purchase that was pending, the person who ordered it."""
    done = 0
    for attempt_id in stale_recharge_attempt_ids():
        try:
            recharge_attempt_process(attempt_id=attempt_id)
        except TransientGatewayError:
            _retry_later(str(attempt_id))
        except Exception:  # one attempt's failure must not stop the others
            logger.exception("recharge sweep failed for attempt %s", attempt_id)
        done += 1
    for organization_id in auto_recharge_sweep_accounts():
        try:
            auto_recharge_run(organization_id=organization_id)
        except TransientGatewayError as exc:
            _retry_later(str(exc.attempt_id))
        except Exception:  # one account's failure must not stop the others
            logger.exception("auto-recharge sweep failed for org %s", organization_id)
        done += 1
    return done


@shared_task
def expire_funds() -> int:
    """Daily beat: expiry entries for lots past 12 months, funds_expiring notices."""
    count = 0
    org_ids = Organization.objects.filter(credit_account__isnull=False).values_list(
        "pk", flat=True)
    for org in Organization.objects.filter(pk__in=list(org_ids)).iterator():
        try:
            count += len(funds_expire(organization=org))
            funds_expiring_notify(organization=org)
        except Exception:  # one organization's failure must not stop the others
            logger.exception("fund expiry failed for org %s", org.pk)
    return count


@shared_task
def refund_sweep() -> int:
    """Beat: settle the refunds the gateway left without an answer (a time-out), each asked
    again under its own idempotency key, which never refunds twice."""
    return refunds_settle_pending()


# --- uploads of people and license CSV files ---


@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_people_import(job_id: int) -> str | None:
    """Apply one uploaded people or license CSV; a redelivery applies it again (each row
    is an update the second time)."""
    job = people_import_run(job_id=job_id)
    return job.status if job is not None else None


@shared_task
def sweep_people_imports() -> dict:
    """Every few minutes: uploads the broker lost are enqueued again; those whose worker
    vanished end as failed."""
    return people_imports_sweep()
