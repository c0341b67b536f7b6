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
