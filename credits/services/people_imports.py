"""Uploads of a people or license CSV (Users > Add multiple users) as jobs.

One code path: every upload is a PeopleImportJob applied by credits.people_import's
`import_csv`, the same function the `import_people` command runs. A file of up to
SYNC_MAX_ROWS rows is applied in the request (the page shows its results at once); a
larger one by a Celery task, the page following its progress. Each row's outcome is
stored as it is known (in batches of PROGRESS_EVERY rows), so the result page pages through
them and the results CSV lists every row.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from credits.queueing import enqueue

from ..models import Organization, PeopleImportJob, PeopleImportRow, Person
from ..models import PeopleImportStatus as Status
from ..people_import import import_csv
from ..platform.services import Actor, audit_record

logger = logging.getLogger(__name__)

# Above this many rows, a file is applied in the background (about 1.6 ms a row: 500 rows
# keep the request under a second).
SYNC_MAX_ROWS = 500
TASK = "credits.tasks.run_people_import"
# A queued job older than this was never picked up (broker down): enqueue it again. A
# running one older than RUNNING_TIMEOUT lost its worker: it ends as failed.
REQUEUE_AFTER = timedelta(minutes=5)
RUNNING_TIMEOUT = timedelta(hours=2)


def people_import_start(*, organization: Organization, requester: Person | None,
                        data: bytes, file_name: str, rows: int, actor: Actor,
                        grow_seats: bool, may_create_people: bool,
                        may_set_roles: bool) -> PeopleImportJob:
    """Record the upload and apply it: now when it has at most SYNC_MAX_ROWS `rows`,
    otherwise by the worker after commit."""
    with transaction.atomic():
        job = PeopleImportJob.objects.create(
            organization=organization, requester=requester, file_name=(file_name or "")[:200],
            file_size=len(data), data=data, rows_total=rows, grow_seats=grow_seats,
            may_create_people=may_create_people, may_set_roles=may_set_roles)
        audit_record(organization=organization, actor=actor, action="people.import.request",
                     target=job, changes={"file": job.file_name, "rows": rows})
        if rows > SYNC_MAX_ROWS:
            # Broker down: the job stays queued and the sweep enqueues it again.
            transaction.on_commit(lambda: enqueue(TASK, job.pk))
    if rows <= SYNC_MAX_ROWS:
        people_import_run(job_id=job.pk)
        job.refresh_from_db()
    return job


def _claim(job_id: int) -> PeopleImportJob | None:
    with transaction.atomic():
        job = (PeopleImportJob.objects.select_for_update(of=("self",))
               .select_related("organization", "requester").filter(pk=job_id).first())
        if job is None or not job.is_active:
            return None
        # A redelivered task starts again: every row is applied again (an applied row is
        # then an update with nothing to change) and its outcome stored afresh.
        job.rows.all().delete()
        job.status = Status.RUNNING
        job.started_at = timezone.now()
        job.rows_done = job.taken = job.rejected_count = 0
        job.save(update_fields=["status", "started_at", "rows_done", "taken",
                                "rejected_count"])
    return job


def people_import_run(*, job_id: int) -> PeopleImportJob | None:
    """Apply the job's file row by row, storing each outcome; mark it done or failed and
    drop the file's bytes. None when the job is gone or already over."""
    job = _claim(job_id)
    if job is None:
        return None
    actor = Actor(person=job.requester,
                  label=job.requester.upn if job.requester else f"people import {job.pk}")
    stored = 0

    def progress(report, total: int) -> None:
        nonlocal stored
        new = report.rows[stored:]
        PeopleImportRow.objects.bulk_create([
            PeopleImportRow(job_id=job.pk, line=r.line, upn=r.upn[:256], ok=r.ok,
                            code=(r.code or "")[:40], message=str(r.message),
                            sku=(r.sku or "")[:64], action=(r.action or "")[:32])
            for r in new])
        stored = len(report.rows)
        taken = sum(1 for r in new if r.ok)
        PeopleImportJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(
            kind=report.kind, rows_total=total, rows_done=stored,
            taken=job.taken + taken, rejected_count=job.rejected_count + len(new) - taken)
        job.taken += taken
        job.rejected_count += len(new) - taken

    status, error = Status.DONE, ""
    try:
        report = import_csv(organization=job.organization, data=bytes(job.data), actor=actor,
                            grow_seats=job.grow_seats,
                            may_create_people=job.may_create_people,
                            may_set_roles=job.may_set_roles, on_progress=progress)
        if report.fatal:
            status, error = Status.FAILED, report.fatal
    except Exception as exc:
        logger.exception("people import %s failed", job.pk)
        status, error = Status.FAILED, f"{type(exc).__name__}: {exc}"
    PeopleImportJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(
        status=status, error=error[:500], data=b"", finished_at=timezone.now())
    return PeopleImportJob.objects.get(pk=job.pk)


def people_imports_sweep(*, now=None) -> dict:
    """Beat: enqueue again the jobs the broker lost; fail those whose worker vanished."""
    now = now or timezone.now()
    requeued = list(PeopleImportJob.objects.filter(
        status=Status.QUEUED, created_at__lte=now - REQUEUE_AFTER).values_list("pk", flat=True))
    for job_id in requeued:
        enqueue(TASK, job_id)
    failed = PeopleImportJob.objects.filter(
        status=Status.RUNNING, started_at__lte=now - RUNNING_TIMEOUT).update(
        status=Status.FAILED, data=b"", finished_at=now,
        error="The upload stopped before the end (its worker was lost); the rows listed "
              "were applied: upload the file again to finish it.")
    return {"requeued": len(requeued), "failed": failed}
