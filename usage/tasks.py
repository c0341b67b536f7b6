"""Celery tasks of `usage`: thin wrappers that take ids and call a service."""

from celery import shared_task

# --- reports and exports (issue 6) ---


@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_export(export_id: int) -> str | None:
    """Write one export's file; a redelivery after a lost worker writes it again."""
    from .exports import export_run

    export = export_run(export_id=export_id)
    return export.status if export is not None else None


@shared_task
def expire_exports() -> int:
    """Daily: delete export files past their 7 days."""
    from .exports import exports_expire

    return exports_expire()
