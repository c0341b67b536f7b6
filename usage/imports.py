"""Importing a PSTN calls file: one path for the upload page and `import_pstn_calls`.

`calls_import_file` reads the file twice, both times streaming (usage.import_files): first
to the end without storing anything, so a file that cannot be read is refused whole (exit
code 2 of the command, "nothing was imported" on the page); then batch by batch through
`calls_ingest`, each batch its own transaction. Memory holds one batch of rows and the
first MAX_REJECTED_KEPT rejected rows, whatever the file's size; the count of rejected
rows, and the `on_rejected` callback, cover them all.

The upload page saves the file under IMPORT_DIR and records an ImportJob
(`import_job_start`); a Celery task runs it (`import_job_run`), updating the job's counters
after every batch so the page can show progress, and deletes the file when the job ends.
"""

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from credits.models import Organization, Person
from credits.money import ZERO
from credits.platform.services import Actor, audit_record
from credits.queueing import enqueue

from . import import_files, ingest
from .direct_routing import DIRECT_ROUTING
from .direct_routing_store import direct_routing_ingest
from .ingest import FileError
from .models import ImportJob, ImportStatus
from .services import calls_ingest_batches

logger = logging.getLogger(__name__)

MAX_REJECTED_KEPT = 1000
KEPT_CHARS = 300
COPY_BLOCK = 1 << 20


@dataclass
class ImportTotals:
    """What an import did so far. `rejected` holds the first MAX_REJECTED_KEPT rejected
    rows ({"index", "id", "errors"}, index from 0 over the whole file)."""

    rows_total: int | None = None
    rows_read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected_count: int = 0
    unrated: int = 0
    charged: int = 0
    total_charge: Decimal = ZERO
    rejected: list[dict] = field(default_factory=list)
    # What was read but ignored without failing the import, each said once (unknown
    # columns, zip members of no known name).
    warnings: list[str] = field(default_factory=list)
    # The Direct Routing rows of the file (stored, never charged); the counters above are
    # the PSTN rows'. Their rejected rows are in `rejected` too, with "kind".
    dr_accepted: int = 0
    dr_duplicates: int = 0
    dr_rejected_count: int = 0


def calls_import_file(*, organization: Organization, path, source: str, actor: Actor,
                      totals: ImportTotals | None = None,
                      on_batch: Callable[[ImportTotals], None] | None = None,
                      on_rejected: Callable[[dict], None] | None = None) -> ImportTotals:
    """Import every row of the file at `path`. Raises FileError (nothing stored) when the
    file cannot be read; `on_batch` is called after each committed batch, `on_rejected`
    with every rejected row in file order. Pass `totals` to see the counts of a run that
    stopped half-way."""
    totals = totals if totals is not None else ImportTotals()
    totals.rows_total = import_files.scan(path)
    if on_batch is not None:
        on_batch(totals)
    batches = import_files.iter_kind_batches(path, ingest.FILE_ROWS_PER_BATCH,
                                             notes=totals.warnings)
    offset = 0
    for kind, batch in batches:
        if kind == DIRECT_ROUTING:
            part = direct_routing_ingest(organization=organization, rows=batch,
                                         source=source, actor=actor)
            totals.dr_accepted += part.accepted
            totals.dr_duplicates += part.duplicates
            totals.dr_rejected_count += len(part.rejected)
        else:
            for _o, _c, part in calls_ingest_batches(
                    organization=organization, batches=[batch], source=source, actor=actor):
                totals.accepted += part.accepted
                totals.duplicates += part.duplicates
                totals.unrated += part.unrated
                totals.charged += part.charged
                totals.total_charge += part.total_charge
                totals.rejected_count += len(part.rejected)
        totals.rows_read = offset + len(batch)
        for item in part.rejected:
            item = {**item, "index": item["index"] + offset}
            if kind == DIRECT_ROUTING:
                item["kind"] = DIRECT_ROUTING
            if len(totals.rejected) < MAX_REJECTED_KEPT:
                totals.rejected.append(_kept(item))
            if on_rejected is not None:
                on_rejected(item)
        offset += len(batch)
        if on_batch is not None:
            on_batch(totals)
    return totals


def _kept(item: dict) -> dict:
    """A rejected row as kept in the totals (and the job's JSON): an id or a reason can be
    as long as a cell (128K characters), which a thousand of would not keep memory bounded,
    and PostgreSQL's JSON holds neither NUL nor a lone surrogate."""
    row_id = item.get("id")
    kept = {"index": item["index"],
            "id": _text(row_id) if isinstance(row_id, str) else None,
            "errors": {_text(str(k)): _text(str(v))
                       for k, v in list(item.get("errors", {}).items())[:30]}}
    if item.get("kind") == DIRECT_ROUTING:
        kept["kind"] = DIRECT_ROUTING
    return kept


def _text(value: str) -> str:
    value = value[:KEPT_CHARS]
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return value.encode("unicode_escape").decode("ascii")
    return value.replace("\x00", "\\x00")


# --- the upload page's background job -----------------------------------------------------


def import_dir() -> Path:
    return Path(settings.IMPORT_DIR)


def import_job_start(*, organization: Organization, requester: Person, upload,
                     actor: Actor) -> ImportJob:
    """Save an uploaded file, check what a few reads can (its type, a zip's directory and
    sizes, each CSV header), record the job and start it after commit. Raises FileError,
    keeping nothing, when the file is refused."""
    relative = Path(str(organization.pk)) / f"{secrets.token_hex(16)}.upload"
    path = import_dir() / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "xb") as out:
            for chunk in upload.chunks(COPY_BLOCK):
                out.write(chunk)
        import_files.sniff(path)
        with transaction.atomic():
            job = ImportJob.objects.create(
                organization=organization, requester=requester,
                file_name=(upload.name or "")[:200], file_size=path.stat().st_size,
                file_path=str(relative))
            audit_record(organization=organization, actor=actor, action="calls.import.request",
                         target=job, changes={"file": job.file_name, "size": job.file_size})
            # Broker down: the job stays queued, the page says so and the sweep retries.
            transaction.on_commit(lambda: enqueue("usage.tasks.run_import", job.pk))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return job


def _claim(job_id: int) -> ImportJob | None:
    with transaction.atomic():
        job = (ImportJob.objects.select_for_update(of=("self",))
               .select_related("organization", "requester").filter(pk=job_id).first())
        if job is None or not job.is_active:
            return None
        # A redelivered task (worker lost) starts again: rows stored by the first run come
        # back as duplicates and are not charged twice.
        job.status = ImportStatus.RUNNING
        job.started_at = timezone.now()
        job.rows_total = None
        job.rows_read = job.accepted = job.duplicates = job.rejected_count = job.unrated = 0
        job.dr_accepted = job.dr_duplicates = job.dr_rejected_count = 0
        job.save(update_fields=["status", "started_at", "rows_total", "rows_read",
                                "accepted", "duplicates", "rejected_count", "unrated",
                                "dr_accepted", "dr_duplicates", "dr_rejected_count"])
    return job


def _counters(totals: ImportTotals) -> dict:
    return {"rows_total": totals.rows_total, "rows_read": totals.rows_read,
            "accepted": totals.accepted, "duplicates": totals.duplicates,
            "rejected_count": totals.rejected_count, "unrated": totals.unrated,
            "dr_accepted": totals.dr_accepted, "dr_duplicates": totals.dr_duplicates,
            "dr_rejected_count": totals.dr_rejected_count}


def import_job_run(*, job_id: int) -> ImportJob | None:
    """Import the job's file, updating its counters after every batch; mark it done or
    failed and delete the file. None when the job is gone or already over."""
    job = _claim(job_id)
    if job is None:
        return None
    path = import_dir() / job.file_path
    actor = Actor(person=job.requester,
                  label=job.requester.upn if job.requester else f"import {job.pk}")
    totals = ImportTotals()

    def progress(current: ImportTotals) -> None:
        ImportJob.objects.filter(pk=job.pk, status=ImportStatus.RUNNING).update(
            **_counters(current))

    status, error = ImportStatus.DONE, ""
    try:
        calls_import_file(organization=job.organization, path=path, source="upload",
                          actor=actor, totals=totals, on_batch=progress)
    except (FileError, OSError) as exc:
        status, error = ImportStatus.FAILED, str(exc)
    except Exception as exc:
        logger.exception("import %s failed", job.pk)
        status, error = ImportStatus.FAILED, f"{type(exc).__name__}: {exc}"
    finally:
        path.unlink(missing_ok=True)
    # Unless another run of the same job (a redelivery) finished it meanwhile.
    running = ImportJob.objects.filter(pk=job.pk, status=ImportStatus.RUNNING)
    try:
        running.update(status=status, error=error[:500], rejected=totals.rejected,
                       warnings=[_text(w) for w in totals.warnings[:20]],
                       file_path="", finished_at=timezone.now(), **_counters(totals))
    except Exception:  # the job must not stay "running": record the end without details
        logger.exception("could not record the end of import %s", job.pk)
        running.update(status=status, error=error[:500], file_path="",
                       finished_at=timezone.now(), **_counters(totals))
    return ImportJob.objects.get(pk=job.pk)


# A queued job older than this was never picked up (the broker was down when it was
# enqueued): enqueue it again. A running job older than RUNNING_TIMEOUT lost its worker
# without a redelivery: it ends as failed, and its file goes.
REQUEUE_AFTER = timedelta(minutes=5)
RUNNING_TIMEOUT = timedelta(hours=12)
ORPHAN_FILE_AGE = timedelta(days=1)


def import_jobs_sweep(*, now=None) -> dict:
    """Beat: re-enqueue jobs the broker lost, fail jobs whose worker vanished, and delete
    upload files that belong to no waiting or running job."""
    now = now or timezone.now()
    requeued = list(ImportJob.objects.filter(status=ImportStatus.QUEUED,
                                             created_at__lte=now - REQUEUE_AFTER)
                    .values_list("pk", flat=True))
    for job_id in requeued:
        enqueue("usage.tasks.run_import", job_id)
    stale = ImportJob.objects.filter(status=ImportStatus.RUNNING,
                                     started_at__lte=now - RUNNING_TIMEOUT)
    failed = 0
    for job in stale:
        if ImportJob.objects.filter(pk=job.pk, status=ImportStatus.RUNNING).update(
                status=ImportStatus.FAILED, file_path="", finished_at=now,
                error="The import stopped before the end (its worker was lost); the rows "
                      "stored so far are kept: upload the file again to finish it."):
            failed += 1
            if job.file_path:
                (import_dir() / job.file_path).unlink(missing_ok=True)
    live = {p for p in ImportJob.objects.filter(
        status__in=(ImportStatus.QUEUED, ImportStatus.RUNNING)).values_list(
        "file_path", flat=True) if p}
    removed = 0
    root = import_dir()
    if root.is_dir():
        cutoff = (now - ORPHAN_FILE_AGE).timestamp()
        for path in root.glob("*/*.upload"):
            if str(path.relative_to(root)) not in live and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
    return {"requeued": len(requeued), "failed": failed, "removed": removed}
