"""Services of the Microsoft connector: save and test a connection, pull call records, ask
for a backfill; and the reads of its page.

A pull (`microsoft_pull`):
1. starts a run: the connection row is locked for a moment, runs whose worker vanished are
   closed as interrupted, and a `running` row is inserted; the partial unique constraint
   (one running row per organization) refuses a second one, whatever the workers and beats;
2. plans, per kind (PSTN, Direct Routing), windows from the kind's watermark minus the
   overlap margin (or from where a failed page left off) to now, each at most Graph's 90
   days and each overlapping the previous by the margin;
3. reads each window's pages (usage.microsoft.client) and sends their rows through the
   same ingestion as the API (`calls_ingest`, `direct_routing_ingest`): the same
   validation, rating, charging and idempotency; a row read twice is a duplicate, charged
   once. Rows are gathered across pages and committed in batches of up to
   FILE_ROWS_PER_BATCH, as file imports are (whole pages per batch); after each batch, the
   link of the page after it is saved on the connection, so a pull that stops reads the
   uncommitted pages again (when Graph itself fails, the pages read are committed first).
   The run's page count and heartbeat move per page, its row counters per batch; after
   each window, the kind's watermark moves to the window's end. No lock is held while
   Graph answers;
4. ends the run: succeeded, or failed with the reason in words. After
   MS_PULL_FAILURES_BEFORE_ALERT failures in a row, `connector_failing` is recorded once per
   incident; the first success after it records `connector_recovered`.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from credits.models import Organization
from credits.platform.events import event_emit
from credits.platform.services import Actor, ServiceError, audit_record

from .. import ingest
from ..models import (
    MicrosoftCloud,
    MicrosoftConnection,
    MicrosoftPullRun,
    PullRunKind,
    PullRunStatus,
)
from . import secrets
from .client import Credential, GraphClient
from .errors import ConnectorError, describe, in_every_language

logger = logging.getLogger(__name__)

KINDS = ("pstn", "direct_routing")
KIND_LABELS = {"pstn": "PSTN", "direct_routing": "Direct Routing"}
# Graph's longest range per call of getPstnCalls / getDirectRoutingCalls.
MAX_WINDOW = timedelta(days=90)
# How far back a backfill may reach: the PSTN usage report's year of history.
MAX_BACKFILL_DAYS = 365
# A running pull whose heartbeat is older than this lost its worker.
STALE_AFTER = timedelta(minutes=30)
SOURCE = "graph"
ACTOR = Actor.system("microsoft connector")
REJECTED_SAMPLE = 20
_GUID_CHARS = set("0123456789abcdefABCDEF-")


# --- ingestion seam: one function per kind, the API's own ----------------------------------


def _ingest_pstn(organization, rows, now):
    from ..services import calls_ingest

    return calls_ingest(organization=organization, rows=rows, source=SOURCE, actor=ACTOR,
                        now=now)


def _ingest_direct_routing(organization, rows, now):
    from ..direct_routing_store import direct_routing_ingest

    return direct_routing_ingest(organization=organization, rows=rows, source=SOURCE,
                                 actor=ACTOR, now=now)


INGESTERS: dict[str, Callable] = {"pstn": _ingest_pstn,
                                  "direct_routing": _ingest_direct_routing}
WATERMARKS = {"pstn": "pstn_through", "direct_routing": "direct_routing_through"}
COUNTERS = {"pstn": ("pstn_imported", "pstn_duplicates", "pstn_rejected"),
            "direct_routing": ("dr_imported", "dr_duplicates", "dr_rejected")}


# --- the connection -------------------------------------------------------------------------


def _valid_tenant(value: str) -> bool:
    """A GUID, or a verified domain such as contoso.onmicrosoft.com."""
    if len(value) == 36 and set(value) <= _GUID_CHARS and value.count("-") == 4:
        return True
    labels = value.split(".")
    return (len(labels) >= 2 and len(value) <= 64
            and all(label and label.replace("-", "").isalnum() and label.isascii()
                    for label in labels))


def _valid_guid(value: str) -> bool:
    return len(value) == 36 and set(value) <= _GUID_CHARS and value.count("-") == 4


@transaction.atomic
def microsoft_connection_save(*, organization: Organization, tenant_id: str, client_id: str,
                              cloud: str = MicrosoftCloud.GLOBAL, client_secret: str = "",
                              certificate_pem: str = "", enabled: bool = True,
                              actor: Actor) -> MicrosoftConnection:
    """Create or change the organization's connection. An empty secret keeps the stored
    one; a new secret or certificate replaces the old credential (never read back)."""
    tenant_id, client_id = tenant_id.strip(), client_id.strip()
    client_secret, certificate_pem = client_secret.strip(), certificate_pem.strip()
    if not _valid_tenant(tenant_id):
        raise ServiceError(_t("Enter the directory (tenant) ID: a GUID, or a domain such as "
                              "contoso.onmicrosoft.com."), field="tenant_id")
    if not _valid_guid(client_id):
        raise ServiceError(_t("Enter the application (client) ID: a GUID such as "
                              "00000000-0000-0000-0000-000000000000."), field="client_id")
    if cloud not in MicrosoftCloud.values:
        raise ServiceError(_t("Choose a national cloud."), field="cloud")
    if client_secret and certificate_pem:
        raise ServiceError(_t("Enter a client secret or a certificate, not both."),
                           field="client_secret")
    if len(client_secret) > 1024 or any(ord(c) < 32 for c in client_secret):
        raise ServiceError(_t("This is not a client secret."), field="client_secret")
    connection = (MicrosoftConnection.objects.select_for_update(of=("self",))
                  .filter(organization=organization).first())
    created = connection is None
    if created:
        connection = MicrosoftConnection(organization=organization)
    if (created or not connection.has_credential) and not (client_secret or certificate_pem):
        raise ServiceError(_t("Enter the client secret (or upload a certificate)."),
                           field="client_secret")
    changes = {"tenant_id": tenant_id, "client_id": client_id, "cloud": cloud,
               "enabled": enabled}
    try:
        if client_secret:
            connection.secret_encrypted = secrets.encrypt(client_secret)
            connection.secret_hint = secrets.secret_hint(client_secret)
            connection.certificate_encrypted = connection.certificate_thumbprint = ""
            connection.credential_set_at = timezone.now()
            changes["credential"] = "client secret replaced"
        elif certificate_pem:
            try:
                key_pem, thumbprint = secrets.certificate_parts(certificate_pem)
            except ValueError as exc:
                raise ServiceError(_t("The certificate file must hold an unencrypted private "
                                      "key and its certificate, in PEM: %(reason)s.")
                                   % {"reason": exc}, field="certificate") from exc
            connection.certificate_encrypted = secrets.encrypt(key_pem)
            connection.certificate_thumbprint = thumbprint
            connection.secret_encrypted = connection.secret_hint = ""
            connection.credential_set_at = timezone.now()
            changes["credential"] = f"certificate {thumbprint} set"
    except ConnectorError as exc:
        raise ServiceError(describe(exc.code), field="client_secret") from exc
    identity_changed = not created and (connection.tenant_id, connection.cloud) != (tenant_id,
                                                                                   cloud)
    connection.tenant_id, connection.client_id, connection.cloud = tenant_id, client_id, cloud
    connection.enabled = enabled
    connection.is_demo = False
    if identity_changed:
        # Another tenant's calls: its history starts afresh (ids keep it harmless anyway).
        connection.pstn_through = connection.direct_routing_through = None
        connection.resume = {}
    connection.updated_at = timezone.now()
    connection.save()
    audit_record(organization=organization, actor=actor,
                 action="microsoft.connect" if created else "microsoft.update",
                 target=connection, changes=changes)
    return connection


def _t(text: str) -> str:
    from django.utils.translation import gettext

    return gettext(text)


@transaction.atomic
def microsoft_connection_delete(*, organization: Organization, actor: Actor) -> bool:
    deleted = MicrosoftConnection.objects.filter(organization=organization).delete()[0]
    if deleted:
        audit_record(organization=organization, actor=actor, action="microsoft.disconnect",
                     changes={})
    return bool(deleted)


def client_for(connection: MicrosoftConnection, **kwargs) -> GraphClient:
    """The Graph client of a connection, its credential decrypted for this use only."""
    if connection.certificate_encrypted:
        credential = Credential(private_key_pem=secrets.decrypt(connection.certificate_encrypted),
                                thumbprint=connection.certificate_thumbprint)
    elif connection.secret_encrypted:
        credential = Credential(client_secret=secrets.decrypt(connection.secret_encrypted))
    else:
        raise ConnectorError("no_credential")
    return GraphClient(tenant_id=connection.tenant_id, client_id=connection.client_id,
                       credential=credential, cloud=connection.cloud, **kwargs)


# The factory of Graph clients: tests replace it to inject a sleeper.
CLIENT_FACTORY: Callable[..., GraphClient] = client_for


# --- pulling --------------------------------------------------------------------------------


@dataclass
class KindTotals:
    pulled: int = 0
    duplicates: int = 0
    rejected: int = 0


@dataclass
class PullOutcome:
    run: MicrosoftPullRun | None
    ok: bool
    totals: dict[str, KindTotals] = field(default_factory=lambda: {k: KindTotals()
                                                                   for k in KINDS})
    error_code: str = ""
    error: str = ""
    skipped: bool = False

    @property
    def message(self) -> str:
        return describe(self.error_code, self.error) if self.error_code else ""


def windows(start: datetime, end: datetime, *, overlap: timedelta,
            size: timedelta = MAX_WINDOW) -> list[tuple[datetime, datetime]]:
    """[start, end] cut into windows of at most `size`, each starting `overlap` before the
    previous one's end (rows Microsoft adds late to a range already read are caught)."""
    if end <= start:
        return []
    overlap = min(overlap, size / 2)
    result = []
    lo = start
    while True:
        hi = min(lo + size, end)
        result.append((lo, hi))
        if hi >= end:
            return result
        lo = hi - overlap


def _plan(connection: MicrosoftConnection, now: datetime, days: int | None
          ) -> dict[str, list[tuple[datetime, datetime, str | None]]]:
    """Per kind: (window start, window end, first page's link or None)."""
    overlap = timedelta(minutes=settings.MS_PULL_OVERLAP_MINUTES)
    plan = {}
    for kind in KINDS:
        items: list[tuple[datetime, datetime, str | None]] = []
        resume = (connection.resume or {}).get(kind)
        if days is not None:
            start = now - timedelta(days=days)
        else:
            through = getattr(connection, WATERMARKS[kind])
            start = (through - overlap) if through else \
                now - timedelta(days=settings.MS_PULL_INITIAL_DAYS)
        if resume:
            try:
                r_start = datetime.fromisoformat(resume["start"])
                r_end = datetime.fromisoformat(resume["end"])
                link = resume["next"]
            except (KeyError, TypeError, ValueError):
                resume = None
            else:
                # The failed window, from its failed page; then on from its end.
                items.append((r_start, r_end, link))
                if days is None or r_end - overlap > start:
                    start = r_end - overlap
        items.extend((lo, hi, None) for lo, hi in windows(start, now, overlap=overlap))
        plan[kind] = items
    return plan


def _run_start(*, organization: Organization, kind: str, now: datetime
               ) -> MicrosoftPullRun | None:
    with transaction.atomic():
        # Serializes starters of one organization for a moment (no network I/O inside).
        MicrosoftConnection.objects.select_for_update(of=("self",)).filter(
            organization=organization).first()
        MicrosoftPullRun.objects.filter(
            organization=organization, status=PullRunStatus.RUNNING,
            heartbeat_at__lt=now - STALE_AFTER,
        ).update(status=PullRunStatus.FAILED, finished_at=now, error_code="interrupted",
                 error="")
        if MicrosoftPullRun.objects.filter(organization=organization,
                                           status=PullRunStatus.RUNNING).exists():
            return None
        try:
            with transaction.atomic():
                return MicrosoftPullRun.objects.create(organization=organization, kind=kind,
                                                       started_at=now, heartbeat_at=now)
        except IntegrityError:
            return None


def microsoft_pull(*, organization: Organization, kind: str = PullRunKind.SCHEDULED,
                   days: int | None = None, now: datetime | None = None,
                   sleep: Callable[[float], None] | None = None) -> PullOutcome:
    """One pull of the organization's call records (module docstring). `days`: a backfill
    of the last `days` days instead of from the watermarks. Never raises a ConnectorError:
    the outcome says what happened."""
    now = now or timezone.now()
    connection = MicrosoftConnection.objects.filter(organization=organization).first()
    if connection is None:
        return PullOutcome(None, False, error_code="no_connection")
    if days is not None and not 1 <= days <= MAX_BACKFILL_DAYS:
        raise ServiceError(_t("Enter a number of days from 1 to %(max)s.")
                           % {"max": MAX_BACKFILL_DAYS}, field="days")
    run = _run_start(organization=organization, kind=kind, now=now)
    if run is None:
        return PullOutcome(None, False, error_code="already_running", skipped=True)
    if kind == PullRunKind.BACKFILL:
        MicrosoftConnection.objects.filter(pk=connection.pk).update(
            backfill_days_requested=None)
    outcome = PullOutcome(run, True)
    try:
        _pull(connection, run, outcome, now=now, days=days, sleep=sleep)
    except ConnectorError as exc:
        outcome.ok, outcome.error_code, outcome.error = False, exc.code, exc.detail
    except Exception as exc:
        logger.exception("pull of %s failed", organization.slug)
        outcome.ok, outcome.error_code, outcome.error = False, "internal", type(exc).__name__
        _run_finish(connection, run, outcome)
        raise
    _run_finish(connection, run, outcome)
    return outcome


def _pull(connection: MicrosoftConnection, run: MicrosoftPullRun, outcome: PullOutcome, *,
          now: datetime, days: int | None, sleep) -> None:
    def on_wait(seconds: float) -> None:
        # A long wait is not a dead worker: the heartbeat says so before it.
        MicrosoftPullRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())

    client_kwargs = {"on_wait": on_wait}
    if sleep is not None:
        client_kwargs["sleep"] = sleep
    plan = _plan(connection, now, days)
    run.window_start = min((w[0] for items in plan.values() for w in items), default=now)
    run.window_end = now
    run.windows_total = sum(len(items) for items in plan.values())
    run.save(update_fields=["window_start", "window_end", "windows_total"])
    client = CLIENT_FACTORY(connection, **client_kwargs)
    try:
        for kind, items in plan.items():
            for start, end, first_url in items:
                _pull_window(connection, run, outcome, client, kind, start, end, first_url,
                             now)
                run.windows_done += 1
                MicrosoftPullRun.objects.filter(pk=run.pk).update(
                    windows_done=run.windows_done, heartbeat_at=timezone.now())
    finally:
        run.retries = client.stats.retries
        run.waited_seconds = client.stats.waited


class _WindowBatch:
    """The rows of a window's pages read since the last commit, committed in batches of up
    to FILE_ROWS_PER_BATCH rows: the file imports' batches, each one transaction of the
    kind's ingester (which locks the organization's ingestion and, for the charge, its
    credit account inside that transaction only). `after` is where the window goes on once
    they are committed: the next page's link, or None at the window's end."""

    def __init__(self, connection, run, outcome, kind, start, end, now):
        self.connection, self.run, self.kind, self.now = connection, run, kind, now
        self.totals = outcome.totals[kind]
        self.start, self.end = start, end
        self.rows: list = []
        self.after: str | None = None
        self.dirty = False  # pages read whose link is not saved yet (an empty page's too)

    def add(self, page) -> None:
        limit = ingest.FILE_ROWS_PER_BATCH
        if self.rows and len(self.rows) + len(page.rows) > limit:
            self.commit()  # pages stay whole in a batch: the resume link is a page's
        self.rows.extend(page.rows)
        self.after, self.dirty = page.next_link, True
        run = self.run
        run.pages += 1
        run.heartbeat_at = timezone.now()
        run.save(update_fields=["pages", "heartbeat_at"])
        if len(self.rows) >= limit:
            self.commit()

    def commit(self) -> None:
        if not self.dirty:
            return
        run, kind, totals = self.run, self.kind, self.totals
        limit = ingest.FILE_ROWS_PER_BATCH
        # More than a batch only when one page holds more rows than a batch.
        for offset in range(0, len(self.rows), limit):
            result = INGESTERS[kind](self.connection.organization,
                                     self.rows[offset:offset + limit], self.now)
            totals.pulled += result.accepted
            totals.duplicates += result.duplicates
            totals.rejected += len(result.rejected)
            for rejected in result.rejected:
                if len(run.rejected_sample) < REJECTED_SAMPLE:
                    run.rejected_sample.append({"kind": kind, "id": rejected.get("id"),
                                                "errors": rejected.get("errors")})
        self.rows = []
        self.dirty = False
        imported_f, duplicates_f, rejected_f = COUNTERS[kind]
        setattr(run, imported_f, totals.pulled)
        setattr(run, duplicates_f, totals.duplicates)
        setattr(run, rejected_f, totals.rejected)
        run.heartbeat_at = timezone.now()
        run.save(update_fields=[imported_f, duplicates_f, rejected_f, "heartbeat_at",
                                "rejected_sample"])
        # Only now may the next pull start after these pages: should this worker die
        # before, it starts again from the first of them (ids make a second read harmless).
        resume = dict(self.connection.resume or {})
        if self.after:
            resume[kind] = {"start": self.start.isoformat(), "end": self.end.isoformat(),
                            "next": self.after}
        else:
            resume.pop(kind, None)
        self.connection.resume = resume
        MicrosoftConnection.objects.filter(pk=self.connection.pk).update(resume=resume)


def _pull_window(connection, run, outcome, client, kind, start, end, first_url, now) -> None:
    batch = _WindowBatch(connection, run, outcome, kind, start, end, now)
    try:
        for page in client.pages(kind, start, end, first_url=first_url):
            batch.add(page)
    except ConnectorError:
        # Graph failed on a page, after its retries: the pages read before it are whole, so
        # they are kept and the next pull starts at the failed page.
        batch.commit()
        raise
    batch.commit()
    # The window is read to its end and committed: the watermark may move up to it (never
    # back).
    field_name = WATERMARKS[kind]
    through = getattr(connection, field_name)
    if through is None or end > through:
        setattr(connection, field_name, end)
        MicrosoftConnection.objects.filter(pk=connection.pk).update(**{field_name: end})


def _run_finish(connection: MicrosoftConnection, run: MicrosoftPullRun,
                outcome: PullOutcome) -> None:
    finished = timezone.now()
    threshold = settings.MS_PULL_FAILURES_BEFORE_ALERT
    with transaction.atomic():
        conn = MicrosoftConnection.objects.select_for_update(of=("self",)).get(pk=connection.pk)
        run.status = PullRunStatus.SUCCEEDED if outcome.ok else PullRunStatus.FAILED
        run.finished_at = finished
        run.error_code = outcome.error_code
        run.error = outcome.error
        run.save()
        org = conn.organization
        if outcome.ok:
            if conn.failure_notified:
                event_emit(organization=org, name="connector_recovered",
                           dedupe_key=f"connector_recovered:{conn.pk}:"
                                      f"{conn.failing_since.isoformat()}",
                           payload={"connector": "microsoft",
                                    "failures": conn.consecutive_failures,
                                    "failing_since": conn.failing_since.isoformat()})
            conn.consecutive_failures = 0
            conn.failing_since = None
            conn.failure_notified = False
            conn.last_error = ""
            conn.last_success_at = finished
        else:
            conn.consecutive_failures += 1
            conn.failing_since = conn.failing_since or run.started_at
            conn.last_error = describe(outcome.error_code, outcome.error)[:2000]
            if conn.consecutive_failures >= threshold and not conn.failure_notified:
                event_emit(organization=org, name="connector_failing",
                           dedupe_key=f"connector_failing:{conn.pk}:"
                                      f"{conn.failing_since.isoformat()}",
                           payload={"connector": "microsoft",
                                    "failures": conn.consecutive_failures,
                                    "failing_since": conn.failing_since.isoformat(),
                                    "error_code": outcome.error_code,
                                    "reason": in_every_language(outcome.error_code,
                                                                outcome.error)})
                conn.failure_notified = True
        conn.save(update_fields=["consecutive_failures", "failing_since", "failure_notified",
                                 "last_error", "last_success_at"])
        audit_record(organization=org, actor=ACTOR, action="microsoft.pull", target=run,
                     changes={"kind": run.kind, "status": run.status, "pages": run.pages,
                              "pstn": [run.pstn_imported, run.pstn_duplicates,
                                       run.pstn_rejected],
                              "direct_routing": [run.dr_imported, run.dr_duplicates,
                                                 run.dr_rejected],
                              "error_code": run.error_code})


def microsoft_backfill_request(*, organization: Organization, days: int, actor: Actor) -> None:
    """Ask for the last `days` days to be pulled again in the background."""
    if not isinstance(days, int) or not 1 <= days <= MAX_BACKFILL_DAYS:
        raise ServiceError(_t("Enter a number of days from 1 to %(max)s.")
                           % {"max": MAX_BACKFILL_DAYS}, field="days")
    with transaction.atomic():
        updated = MicrosoftConnection.objects.filter(organization=organization).update(
            backfill_days_requested=days)
        if not updated:
            raise ServiceError(describe("no_connection"))
        audit_record(organization=organization, actor=actor, action="microsoft.backfill",
                     changes={"days": days})
        transaction.on_commit(lambda: _enqueue("usage.tasks.pull_microsoft",
                                               organization.pk, PullRunKind.BACKFILL, days))


def microsoft_pull_request(*, organization: Organization, actor: Actor) -> None:
    """Ask for a pull now, in the background."""
    if not MicrosoftConnection.objects.filter(organization=organization).exists():
        raise ServiceError(describe("no_connection"))
    audit_record(organization=organization, actor=actor, action="microsoft.pull_now",
                 changes={})
    transaction.on_commit(lambda: _enqueue("usage.tasks.pull_microsoft", organization.pk,
                                           PullRunKind.MANUAL, None))


def _enqueue(task: str, *args) -> None:
    from credits.queueing import enqueue

    enqueue(task, *args)


def connections_to_pull() -> list[int]:
    """Organizations whose connection pulls on the schedule (demo connections never do)."""
    return list(MicrosoftConnection.objects.filter(enabled=True, is_demo=False)
                .exclude(secret_encrypted="", certificate_encrypted="")
                .values_list("organization_id", flat=True))


# --- reads of the page ----------------------------------------------------------------------


def connection_of(*, organization: Organization) -> MicrosoftConnection | None:
    return MicrosoftConnection.objects.filter(organization=organization).first()


def runs_of(*, organization: Organization) -> QuerySet[MicrosoftPullRun]:
    """The organization's runs, newest first (the connection page pages them)."""
    return MicrosoftPullRun.objects.filter(organization=organization).order_by(
        "-started_at", "-id")


def run_in_progress(*, organization: Organization) -> MicrosoftPullRun | None:
    return runs_of(organization=organization).filter(status=PullRunStatus.RUNNING).first()


def is_failing(connection: MicrosoftConnection | None) -> bool:
    return bool(connection and connection.consecutive_failures
                >= settings.MS_PULL_FAILURES_BEFORE_ALERT)
