"""Celery tasks of `usage`: thin wrappers that take ids and call a service."""

from celery import shared_task

from .exports import export_run, exports_expire
from .imports import import_job_run, import_jobs_sweep

# --- reports and exports ---


@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_export(export_id: int) -> str | None:
    """Write one export's file; a redelivery after a lost worker writes it again."""
    export = export_run(export_id=export_id)
    return export.status if export is not None else None


@shared_task
def expire_exports() -> int:
    """Daily: delete export files past their 7 days, and what killed exports left behind
    (`.part` files, scratch folders) once a day old."""
    return exports_expire()


# --- imports of uploaded call files ---


@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_import(job_id: int) -> str | None:
    """Import one uploaded file; a redelivery after a lost worker imports it again (the
    rows already stored count as duplicates, charged once)."""
    job = import_job_run(job_id=job_id)
    return job.status if job is not None else None


@shared_task
def sweep_imports() -> dict:
    """Every few minutes: imports the broker lost are enqueued again, imports whose worker
    vanished end as failed, and upload files of no live import are deleted."""
    return import_jobs_sweep()


# --- the Microsoft Graph connector ---


@shared_task
def pull_microsoft_all() -> int:
    """Every 15 minutes (MS_PULL_INTERVAL_SECONDS): one pull task per connected
    organization. A pull still running is left alone (at most one per organization)."""
    from credits.queueing import enqueue

    from .microsoft.pull import connections_to_pull

    return sum(enqueue("usage.tasks.pull_microsoft", org_id, "scheduled", None)
               for org_id in connections_to_pull())


@shared_task
def pull_microsoft(organization_id: int, kind: str = "scheduled",
                   days: int | None = None) -> str:
    """One pull (or backfill of `days` days) of one organization's call records."""
    from credits.models import Organization

    from .microsoft.pull import microsoft_pull

    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        return "no organization"
    outcome = microsoft_pull(organization=organization, kind=kind, days=days)
    return "ok" if outcome.ok else outcome.error_code
