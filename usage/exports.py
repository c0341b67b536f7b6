"""Exports of the PSTN usage report: the Excel workbook and Microsoft's CSV zip.

Both stream the call records (a server-side cursor on PostgreSQL) and never hold the rows:
the workbook is written by XlsxWriter in constant-memory mode, the CSV is produced by
PostgreSQL itself (`COPY (SELECT ...) TO STDOUT`, formatting and masking in SQL) and piped
into the zip; on SQLite the same text is produced in Python. The same writers serve the
Downloads page (a Celery task, `export_run`) and `manage.py export_pstn_usage`.

Files are Microsoft's where Microsoft defines them: `Calls.Export.<id>.zip` holds
`PSTN.calls.<UTC date>.csv` with the 20 columns of domain/pstn-export-columns.csv in order
(RFC 4180: CRLF line ends, quotes only where needed; times in UTC ISO 8601) and
`parameters.json`. External numbers are masked as the report masks them (usage.masking).

Microsoft's format carries Microsoft's data: its Charge, Connection Fee, Currency and
Capability are what Microsoft (or the platform that posted the call) reported, blank when
nothing was, so that the file reads back into the same stored values. This system's rating
is in the workbook only, in columns named for it (`XLSX_RATING_HEADER`).
"""

import csv
import io
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import time as clock
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import xlsxwriter
from babel.numbers import get_currency_symbol
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from xlsxwriter.exceptions import FileCreateError

from credits.models import Organization, Person
from credits.money import CENT, ZERO
from credits.pausepoints import pause_point
from credits.platform.events import event_emit
from credits.platform.services import Actor, ServiceError, audit_record
from credits.queueing import enqueue

from . import direct_routing_export, masking, pg
from .ingest import EXPORT_HEADER
from .models import EXPORT_LIFETIME, Export, ExportFormat, ExportStatus
from .report import ReportFilters, calls_queryset, minutes_of, report_totals, user_match

logger = logging.getLogger(__name__)

# Excel's sheet holds 1,048,576 rows; one is the header.
MAX_SHEET_ROWS = 1_048_576
FETCH_SIZE = 5000
PROGRESS_EVERY_S = 1.0
# Excel's day 0 is 1899-12-30 (with the 1900 leap-year bug folded in): serial = days since.
_EXCEL_EPOCH_OFFSET_DAYS = 25569  # 1970-01-01 as an Excel serial

# The CallRecord fields streamed for one row (`stream_rows`), read by name.
ROW_FIELDS = (
    "graph_id", "call_id", "conference_id", "usage_country", "user_id", "upn",
    "user_display_name", "caller_number", "call_type", "inventory_type",
    "destination_context", "destination_name", "callee_number", "start_at", "end_at",
    "duration_s", "reported_connection_charge", "reported_charge", "currency",
    "reported_capability", "charge", "charged_to", "rate_per_minute", "billable_seconds",
    "pool_minutes", "other_party_country",
)
# The workbook's usage sheet: Microsoft's 20 columns (Microsoft's values), then this
# system's rating, then Graph's otherPartyCountryCode under the report's name for it.
XLSX_RATING_HEADER = ["Rated charge", "Charged to", "Rate", "Billable minutes",
                      "Pool minutes"]
XLSX_HEADER = [*EXPORT_HEADER, *XLSX_RATING_HEADER, "From country or region"]

ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class ExportJob:
    """What to export and how to label it."""

    organization: Organization
    filters: ReportFilters
    generated_at: datetime
    export_id: int | None = None
    requested_by: str = ""
    # Add the range's Direct Routing calls (usage.direct_routing_export).
    direct_routing: bool = False

    @property
    def mask_digits(self) -> int:
        return masking.digits_masked(self.organization.country)

    @property
    def currency(self) -> str:
        return self.organization.currency

    def parameters(self, rows: int) -> dict:
        f = self.filters
        return {
            "exportId": self.export_id,
            "organization": self.organization.slug,
            "from": f.start.isoformat(),
            "to": f.end.isoformat(),
            "range": f.range,
            "filters": f.described(),
            "generatedAt": _iso(self.generated_at),
            "timeZone": "UTC",
            "rows": rows,
            "currency": self.currency,
            "maskedDigits": self.mask_digits,
            "requestedBy": self.requested_by,
        }


def _iso(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_call_time(value: datetime) -> str:
    """A call's time in UTC ISO 8601, with its fraction of a second when it has one (Graph
    gives 7 digits; a database keeps 6), so a file read back stores the same time."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if value.microsecond
                          else "%Y-%m-%dT%H:%M:%SZ")


def reported_money_text(value: Decimal | None) -> str:
    """A reported amount as the export writes it: "" when none was reported, 2 places as
    Microsoft's numeric(16, 2) when it has no more, otherwise every place it has (Graph's
    double may carry more), so a file read back stores the same amount."""
    if value is None:
        return ""
    cents = value.quantize(CENT, ROUND_HALF_UP)
    return str(cents) if cents == value else format(value.normalize(), "f")


def _calls(job: ExportJob):
    match = user_match(organization=job.organization, filters=job.filters)
    qs = calls_queryset(organization=job.organization, filters=job.filters, match=match)
    if match is not None and match.empty:
        qs = qs.none()
    return qs.order_by("start_at", "pk")


def stream_rows(job: ExportJob) -> Iterator[tuple]:
    """The rows in (start, id) order, as named tuples of ROW_FIELDS (CallRecord's field
    names), read in chunks (a server-side cursor on PostgreSQL), so memory stays flat
    whatever the count."""
    return _calls(job).values_list(*ROW_FIELDS, named=True).iterator(chunk_size=FETCH_SIZE)


class _Progress:
    """Calls `fn(rows done)` at most once a second."""

    def __init__(self, fn: ProgressFn | None):
        self.fn = fn
        self.last = clock.monotonic()

    def __call__(self, done: int) -> None:
        if self.fn is None:
            return
        now = clock.monotonic()
        if now - self.last >= PROGRESS_EVERY_S:
            self.last = now
            self.fn(done)


PART_SUFFIX = ".part"
SCRATCH_SUFFIX = ".tmp"


def _atomic_path(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(path.name + PART_SUFFIX)


@contextmanager
def _writing(path: Path, *, scratch: bool = False):
    """Yield (the `.part` file to write, a private scratch folder or None) next to `path`.

    The scratch folder holds the writer's own temporary files (XlsxWriter's constant-memory
    row files and the parts it zips) and is always removed; on any exception (a failed
    query, a full disk, a Celery time limit, Ctrl-C) the `.part` goes too, so a failed
    export leaves nothing behind. Only a killed process can leave them: exports_expire
    sweeps those."""
    part = _atomic_path(path)
    folder = Path(tempfile.mkdtemp(prefix=f"{path.name}.", suffix=SCRATCH_SUFFIX,
                                   dir=part.parent)) if scratch else None
    try:
        yield part, folder
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


# --- Excel --------------------------------------------------------------------------------


def excel_serial(value: datetime) -> float:
    """An aware datetime as Excel's serial day number in UTC (Excel has no time zones)."""
    return value.timestamp() / 86400 + _EXCEL_EPOCH_OFFSET_DAYS


class XlsxFormats:
    def __init__(self, workbook, currency: str):
        symbol = get_currency_symbol(currency, locale="en")
        self.header = workbook.add_format({"bold": True, "bg_color": "#F3F2F1",
                                           "bottom": 1})
        self.datetime = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.date = workbook.add_format({"num_format": "yyyy-mm-dd"})
        # A currency format: the symbol in Excel's [$sym] notation (no locale needed).
        self.money = workbook.add_format({"num_format": f"[${symbol}]#,##0.00"})
        self.rate = workbook.add_format({"num_format": f"[${symbol}]#,##0.00000"})
        self.minutes = workbook.add_format({"num_format": "#,##0.0"})
        self.number = workbook.add_format({"num_format": "#,##0"})
        self.bold = workbook.add_format({"bold": True})
        self.title = workbook.add_format({"bold": True, "font_size": 14})


def _money_cell(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def xlsx_cells(row: tuple, digits: int, currency: str) -> tuple:
    """One streamed row as the 26 typed values of the usage sheet (strings stay strings,
    times are Excel serials, amounts are floats; None leaves the cell empty). Microsoft's
    columns hold what Microsoft reported; `currency` (the organization's) is the rating's."""
    caller, callee, start, end = row.caller_number, row.callee_number, row.start_at, row.end_at
    if digits:
        caller, callee = masking.mask_call_numbers(row.call_type, caller, callee, digits)
    if end is None:
        end = start + timedelta(seconds=row.duration_s)
    rate = row.rate_per_minute
    return (
        row.graph_id, row.call_id, row.conference_id, row.usage_country, row.user_id, row.upn,
        row.user_display_name, caller, row.call_type, row.inventory_type,
        row.destination_context, row.destination_name, callee, excel_serial(start),
        excel_serial(end), row.duration_s, _money_cell(row.reported_connection_charge),
        _money_cell(row.reported_charge), row.currency, row.reported_capability,
        float(row.charge), row.charged_to, float(rate) if rate is not None else None,
        row.billable_seconds / 60, row.pool_minutes, row.other_party_country,
    )


# Column kinds of the usage sheet: s(tring), t(ime), n(umber), m(oney), r(ate), b (minutes).
# Reported amounts are numbers without the organization's currency format: Microsoft's
# Currency column says theirs.
_KINDS = "s" * 13 + "tt" + "n" + "nn" + "ss" + "m" + "s" + "r" + "b" + "n" + "s"
assert len(_KINDS) == len(XLSX_HEADER) == 26


def write_cells(sheet, r: int, cells: tuple, fmt: XlsxFormats) -> None:
    """Write one row of the usage sheet. Text goes through write_string, never write(), so
    a value starting with = + - @ stays text and cannot become a formula."""
    ws, wn = sheet.write_string, sheet.write_number
    for c, (kind, value) in enumerate(zip(_KINDS, cells, strict=True)):
        if value is None or value == "":
            continue
        if kind == "s":
            ws(r, c, value)
        elif kind == "t":
            wn(r, c, value, fmt.datetime)
        elif kind == "n":
            wn(r, c, value)
        elif kind == "m":
            wn(r, c, value, fmt.money)
        elif kind == "r":
            wn(r, c, value, fmt.rate)
        else:
            wn(r, c, value, fmt.minutes)


_WIDTHS = [38, 24, 14, 8, 38, 30, 24, 16, 20, 12, 14, 18, 16, 19, 19, 10, 10, 10, 8, 14, 12,
           16, 12, 10, 10, 12]


def start_usage_sheet(workbook, number: int, fmt: XlsxFormats):
    sheet = workbook.add_worksheet("Usage" if number == 1 else f"Usage {number}")
    for c, width in enumerate(_WIDTHS):
        sheet.set_column(c, c, width)
    sheet.freeze_panes(1, 0)
    for c, title in enumerate(XLSX_HEADER):
        sheet.write_string(0, c, title, fmt.header)
    return sheet


class _Summary:
    """Totals accumulated while the rows stream by (bounded by types, users and days)."""

    def __init__(self):
        self.calls = 0
        self.seconds = 0
        self.charge = ZERO
        self.by_type = defaultdict(lambda: [0, 0, ZERO])
        self.by_user = defaultdict(lambda: [0, 0, ZERO, ""])
        self.by_day = defaultdict(lambda: [0, 0, ZERO])

    def add(self, row: tuple) -> None:
        upn, name, call_type, start, duration, charge = (
            row.upn, row.user_display_name, row.call_type, row.start_at, row.duration_s,
            row.charge)
        self.calls += 1
        self.seconds += duration
        self.charge += charge
        t = self.by_type[call_type]
        t[0] += 1
        t[1] += duration
        t[2] += charge
        u = self.by_user[upn]
        u[0] += 1
        u[1] += duration
        u[2] += charge
        u[3] = name or u[3]
        d = self.by_day[start.astimezone(UTC).date()]
        d[0] += 1
        d[1] += duration
        d[2] += charge


def _write_summary(workbook, sheet, summary: _Summary, job: ExportJob, fmt: XlsxFormats):
    f = job.filters
    sheet.set_column(0, 0, 34)
    sheet.set_column(1, 4, 16)
    r = 0
    sheet.write_string(r, 0, "PSTN usage summary", fmt.title)
    r += 1
    sheet.write_string(r, 0, f"{f.start.isoformat()} to {f.end.isoformat()} (UTC)")
    r += 2
    if not summary.calls:
        sheet.write_string(r, 0, _("No calls in this range."), fmt.bold)
        r += 2
    for label, value, cell_format in (
        ("Calls", summary.calls, fmt.number),
        ("Minutes", float(minutes_of(summary.seconds)), fmt.minutes),
        ("Credits spent", float(summary.charge), fmt.money),
    ):
        sheet.write_string(r, 0, label, fmt.bold)
        sheet.write_number(r, 1, value, cell_format)
        r += 1
    r += 1

    def table(title, head, items):
        nonlocal r
        sheet.write_string(r, 0, title, fmt.bold)
        r += 1
        for c, h in enumerate(head):
            sheet.write_string(r, c, h, fmt.header)
        r += 1
        first = r
        for key, cells in items:
            key(r)
            for c, (value, cell_format) in enumerate(cells, start=len(head) - len(cells)):
                sheet.write_number(r, c, value, cell_format)
            r += 1
        last = r - 1
        r += 1
        return first, last

    def text_key(*values):
        def write(row):
            for c, v in enumerate(values):
                if v:
                    sheet.write_string(row, c, v)
        return write

    def date_key(day):
        def write(row):
            sheet.write_number(row, 0, (day - date(1970, 1, 1)).days
                               + _EXCEL_EPOCH_OFFSET_DAYS, fmt.date)
        return write

    def measures(v):
        return ((v[0], fmt.number), (float(minutes_of(v[1])), fmt.minutes),
                (float(v[2]), fmt.money))

    if not summary.by_day:
        return  # no tables to fill, and a chart needs at least one series
    table("By call type", ["Call type", "Calls", "Minutes", "Credits spent"],
          [(text_key(k), measures(v)) for k, v in sorted(summary.by_type.items())])
    day_first, day_last = table(
        "Spend per day", ["Day (UTC)", "Calls", "Minutes", "Credits spent"],
        [(date_key(d), measures(v)) for d, v in sorted(summary.by_day.items())])
    table("By user", ["UPN", "User display name", "Calls", "Minutes", "Credits spent"],
          [(text_key(k, v[3]), measures(v))
           for k, v in sorted(summary.by_user.items(), key=lambda kv: (-kv[1][2], kv[0]))])
    # A native Excel chart of the spend per day, drawn from the cells above.
    chart = workbook.add_chart({"type": "column"})
    chart.add_series({
        "name": "Credits spent",
        "categories": [sheet.name, day_first, 0, day_last, 0],
        "values": [sheet.name, day_first, 3, day_last, 3],
    })
    chart.set_title({"name": "Credits spent per day"})
    chart.set_legend({"none": True})
    chart.set_x_axis({"date_axis": True, "num_format": "yyyy-mm-dd"})
    sheet.insert_chart(3, 6, chart, {"x_scale": 1.6, "y_scale": 1.2})


def _write_parameters(sheet, job: ExportJob, rows: int, fmt: XlsxFormats):
    params = job.parameters(rows)
    sheet.set_column(0, 0, 22)
    sheet.set_column(1, 1, 40)
    lines = [
        ("Organization", job.organization.name),
        ("From (UTC)", params["from"]),
        ("To (UTC)", params["to"]),
        ("Range", params["range"] if params["range"] == "custom"
         else f"last {params['range']} days"),
        *[(f"Filter: {k}", v) for k, v in params["filters"].items()],
        ("Generated at", job.generated_at),
        ("Time zone", "UTC"),
        ("Rows", rows),
        ("Currency", job.currency),
        ("Masked digits", params["maskedDigits"]),
        ("Export id", params["exportId"] or ""),
        ("Requested by", job.requested_by),
    ]
    for r, (label, value) in enumerate(lines):
        sheet.write_string(r, 0, label, fmt.bold)
        if isinstance(value, datetime):
            sheet.write_number(r, 1, excel_serial(value), fmt.datetime)
        elif isinstance(value, int):
            sheet.write_number(r, 1, value)
        elif value:
            sheet.write_string(r, 1, str(value))


def write_xlsx(path, job: ExportJob, *, progress: ProgressFn | None = None,
               rows_per_sheet: int = MAX_SHEET_ROWS) -> int:
    """Write the workbook to `path`; returns the number of calls written."""
    path = Path(path)
    with _writing(path, scratch=True) as (part, scratch):
        workbook = xlsxwriter.Workbook(str(part), {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "tmpdir": str(scratch),
        })
        fmt = XlsxFormats(workbook, job.currency)
        summary_sheet = workbook.add_worksheet("Summary")
        per_sheet = rows_per_sheet - 1
        sheets = 1
        sheet = start_usage_sheet(workbook, 1, fmt)
        summary = _Summary()
        digits, currency = job.mask_digits, job.currency
        tick = _Progress(progress)
        r = 0
        done = 0
        for row in stream_rows(job):
            if r == per_sheet:
                sheet.autofilter(0, 0, r, len(XLSX_HEADER) - 1)
                sheets += 1
                sheet = start_usage_sheet(workbook, sheets, fmt)
                r = 0
            r += 1
            write_cells(sheet, r, xlsx_cells(row, digits, currency), fmt)
            summary.add(row)
            done += 1
            if not done % 10000:
                tick(done)
        sheet.autofilter(0, 0, max(r, 1), len(XLSX_HEADER) - 1)
        if job.direct_routing:
            direct_routing_export.write_sheet(workbook, job, fmt)
        _write_summary(workbook, summary_sheet, summary, job, fmt)
        _write_parameters(workbook.add_worksheet("Parameters"), job, done, fmt)
        summary_sheet.activate()
        try:
            workbook.close()
        except FileCreateError as exc:
            # XlsxWriter wraps the OSError (a full disk, a folder gone): callers handle
            # OSError, as for the zip.
            cause = exc.args[0] if exc.args else None
            raise cause if isinstance(cause, OSError) else OSError(str(exc)) from exc
        os.replace(part, path)
    return done


# --- Microsoft's CSV zip ------------------------------------------------------------------


def csv_member_name(job: ExportJob) -> str:
    return f"PSTN.calls.{job.generated_at.astimezone(UTC).date().isoformat()}.csv"


def csv_fields(row: tuple, digits: int, currency: str) -> list[str]:
    """One streamed row as Microsoft's 20 export columns, as text, with Microsoft's reported
    values (the SQL of `usage.pg.export_csv_copy` produces the same text on PostgreSQL).
    `currency` is unused: the Currency column is the reported one."""
    caller, callee, start, end = row.caller_number, row.callee_number, row.start_at, row.end_at
    if digits:
        caller, callee = masking.mask_call_numbers(row.call_type, caller, callee, digits)
    if end is None:
        end = start + timedelta(seconds=row.duration_s)
    return [
        row.graph_id, row.call_id, row.conference_id, row.usage_country, row.user_id, row.upn,
        row.user_display_name, caller, row.call_type, row.inventory_type,
        row.destination_context, row.destination_name, callee, _iso_call_time(start),
        _iso_call_time(end), str(row.duration_s),
        reported_money_text(row.reported_connection_charge),
        reported_money_text(row.reported_charge), row.currency, row.reported_capability,
    ]


CSV_BOM = "\ufeff".encode()


def _csv_header() -> bytes:
    """The header line, after a UTF-8 BOM: without it Excel on Windows reads the file as
    ANSI and garbles accents."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(EXPORT_HEADER)
    return CSV_BOM + buffer.getvalue().encode()


def _csv_python(member, job: ExportJob, tick: _Progress) -> int:
    digits, currency = job.mask_digits, job.currency
    buffer = io.StringIO()
    # "\n" here, then CRLF for all at once: the same step as the COPY path (usage.pg).
    writer = csv.writer(buffer, lineterminator="\n")
    done = 0
    for row in stream_rows(job):
        writer.writerow(csv_fields(row, digits, currency))
        done += 1
        if not done % 5000:
            member.write(buffer.getvalue().encode().replace(b"\n", b"\r\n"))
            buffer.seek(0)
            buffer.truncate()
            tick(done)
    member.write(buffer.getvalue().encode().replace(b"\n", b"\r\n"))
    return done


def write_csv_zip(path, job: ExportJob, *, progress: ProgressFn | None = None) -> int:
    """Write Microsoft's export zip to `path`; returns the number of calls written."""
    path = Path(path)
    tick = _Progress(progress)
    with _writing(path) as (part, _scratch):
        # Level 1: most of deflate's gain on CSV for a fraction of its time.
        with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED,
                             compresslevel=1) as z:
            with z.open(csv_member_name(job), "w", force_zip64=True) as member:
                member.write(_csv_header())
                if pg.available():
                    done = pg.export_csv_copy(member, _calls(job), mask_digits=job.mask_digits,
                                              currency=job.currency, tick=tick)
                else:
                    done = _csv_python(member, job, tick)
            parameters = job.parameters(done)
            if job.direct_routing:
                parameters["directRoutingRows"] = direct_routing_export.write_csv_member(
                    z, job)
            z.writestr("parameters.json", json.dumps(parameters, indent=2))
        os.replace(part, path)
    return done


def write_export(path, job: ExportJob, fmt: str, *, progress: ProgressFn | None = None) -> int:
    if fmt == ExportFormat.XLSX:
        return write_xlsx(path, job, progress=progress)
    if fmt == ExportFormat.CSV_ZIP:
        return write_csv_zip(path, job, progress=progress)
    raise ValueError(f"unknown export format {fmt!r}")


# --- the Export's life: request, run, expire ----------------------------------------------


def export_dir() -> Path:
    return Path(settings.EXPORT_DIR)


def export_file_name(export: Export, filters: ReportFilters) -> str:
    """What the file holds, as the person will see it in their downloads folder."""
    extension = "zip" if export.format == ExportFormat.CSV_ZIP else "xlsx"
    return f"PSTN usage {filters.start.isoformat()} to {filters.end.isoformat()}.{extension}"


@transaction.atomic
def export_request(*, organization: Organization, requester: Person, fmt: str,
                   filters: ReportFilters, actor: Actor,
                   include_direct_routing: bool = False) -> Export:
    """Record an export and start it after commit (a Celery task). With
    `include_direct_routing`, the range's Direct Routing calls are added."""
    if fmt not in ExportFormat.values:
        raise ServiceError(_("Choose Excel or CSV."), field="format")
    if requester.organization_id != organization.pk:
        raise ServiceError(_("The requester is not in this organization."))
    export = Export.objects.create(organization=organization, requester=requester,
                                   format=fmt, filters=filters.as_dict(),
                                   include_direct_routing=include_direct_routing)
    export.file_name = export_file_name(export, filters)
    export.save(update_fields=["file_name"])
    audit_record(organization=organization, actor=actor, action="export.request",
                 target=export, changes={"format": fmt, **filters.as_dict(),
                                         "direct_routing": include_direct_routing})
    # Broker down: the export stays queued and says so on Downloads.
    transaction.on_commit(lambda: enqueue("usage.tasks.run_export", export.pk))
    return export


def _claim(export_id: int) -> Export | None:
    with transaction.atomic():
        export = (Export.objects.select_for_update(of=("self",))
                  .select_related("organization", "requester")
                  .filter(pk=export_id).first())
        if export is None or export.status not in (ExportStatus.QUEUED, ExportStatus.RUNNING):
            return None
        export.status = ExportStatus.RUNNING
        export.started_at = timezone.now()
        export.progress = 0
        export.save(update_fields=["status", "started_at", "progress"])
    return export


def export_run(*, export_id: int) -> Export | None:
    """Write the export's file, updating its progress as it goes (each update commits, so
    the Downloads page sees it); on success emit `export_ready` with the final state. A
    redelivered task (worker lost) starts the file again."""
    export = _claim(export_id)
    if export is None:
        return None
    filters = ReportFilters.from_dict(export.filters)
    job = ExportJob(export.organization, filters, timezone.now(), export.pk,
                    export.requester.upn if export.requester else "",
                    direct_routing=export.include_direct_routing)
    expected = report_totals(organization=export.organization, filters=filters,
                             match=user_match(organization=export.organization,
                                              filters=filters)).calls

    def progress(done: int) -> None:
        percent = min(99, int(done * 100 / expected)) if expected else 50
        Export.objects.filter(pk=export.pk, status=ExportStatus.RUNNING).update(
            progress=percent, row_count=done)

    relative = Path(str(export.organization_id)) / (
        f"{export.pk}-{secrets.token_hex(8)}"
        + (".xlsx" if export.format == ExportFormat.XLSX else ".zip"))
    target = export_dir() / relative
    try:
        rows = write_export(target, job, export.format, progress=progress)
    except Exception as exc:
        logger.exception("export %s failed", export.pk)
        # Unless another run of the same export (a redelivery) finished it meanwhile.
        Export.objects.filter(pk=export.pk, status=ExportStatus.RUNNING).update(
            status=ExportStatus.FAILED, finished_at=timezone.now(),
            error=f"{type(exc).__name__}: {exc}"[:300])
        return Export.objects.get(pk=export.pk)
    pause_point("export_after_write")
    with transaction.atomic():
        export = Export.objects.select_for_update(of=("self",)).get(pk=export.pk)
        if export.status != ExportStatus.RUNNING:
            # Another run of this export finished first: its file is the export's.
            target.unlink(missing_ok=True)
            return export
        # A run killed before this point left its file (or its .part) behind: one export,
        # one file.
        for leftover in target.parent.glob(f"{export.pk}-*"):
            if leftover != target:
                _remove(leftover)
        now = timezone.now()
        export.status = ExportStatus.DONE
        export.progress = 100
        export.row_count = rows
        export.file_path = str(relative)
        export.file_size = target.stat().st_size
        export.finished_at = now
        export.expires_at = now + EXPORT_LIFETIME
        export.save()
        if export.requester_id:
            event_emit(
                organization=export.organization, name="export_ready",
                payload={
                    "export_id": export.pk,
                    "requester_person_id": export.requester_id,
                    "expires_at": export.expires_at.astimezone(UTC).isoformat(),
                    "format": export.format,
                },
                dedupe_key=f"export_ready:{export.pk}",
            )
    return export


def export_file(export: Export) -> Path | None:
    """The export's file on disk, or None (not ready, expired, or gone)."""
    if export.status != ExportStatus.DONE or not export.file_path:
        return None
    if export.expires_at <= timezone.now():
        return None
    path = (export_dir() / export.file_path).resolve()
    if export_dir().resolve() not in path.parents or not path.is_file():
        return None
    return path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# What export_run and _writing put in EXPORT_DIR/<organization id>/: the file
# "<export id>-<16 hex>.xlsx|.zip", its ".part" and the scratch folder "<file>.<random>.tmp"
# (holding XlsxWriter's "tmp..." files). Writers that had no scratch folder left
# XlsxWriter's "tmp<8 characters>" files in the organization's folder itself.
_EXPORT_NAME = re.compile(
    r"(?P<pk>[0-9]+)-[0-9a-f]{16}\.(?:xlsx|zip)(?P<partial>\.part|\.[a-z0-9_]+\.tmp)?\Z")
_WRITER_TMP = re.compile(r"tmp[a-z0-9_]{8}\Z")
STRAY_AGE = timedelta(days=1)


def exports_sweep(*, now: datetime | None = None) -> int:
    """Delete what killed runs left in EXPORT_DIR: `.part` files, scratch folders, writer
    temporary files, and finished files no export points to, once they are a day old and
    belong to no queued or running export. Returns the number of entries deleted."""
    now = now or timezone.now()
    root = export_dir()
    if not root.is_dir():
        return 0
    cutoff = (now - STRAY_AGE).timestamp()
    candidates: list[tuple[Path, int | None, bool]] = []  # path, export id, finished file
    # Only the organizations' folders, and only names this module makes: EXPORT_DIR may be
    # a shared volume holding other things.
    for folder in (p for p in root.iterdir() if p.name.isdigit() and p.is_dir()):
        for entry in folder.iterdir():
            if _WRITER_TMP.match(entry.name):
                candidates.append((entry, None, False))
            elif m := _EXPORT_NAME.match(entry.name):
                candidates.append((entry, int(m["pk"]), not m["partial"]))
    candidates = [c for c in candidates if _mtime(c[0]) < cutoff]
    if not candidates:
        return 0
    ids = {pk for _path, pk, _final in candidates if pk is not None}
    live = set(Export.objects.filter(pk__in=ids, status__in=(
        ExportStatus.QUEUED, ExportStatus.RUNNING)).values_list("pk", flat=True))
    kept = set(Export.objects.filter(pk__in=ids, status=ExportStatus.DONE).exclude(
        file_path="").values_list("file_path", flat=True))
    removed = 0
    for path, pk, final in candidates:
        if pk in live or (final and str(path.relative_to(root)) in kept):
            continue
        try:
            _remove(path)
        except OSError:
            logger.warning("could not delete %s", path, exc_info=True)
            continue
        removed += 1
    return removed


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return float("inf")  # gone meanwhile: nothing to do


def exports_expire(*, now: datetime | None = None) -> int:
    """Delete the files of exports past their expiry and mark them expired; exports stuck
    running for hours (a lost worker) are marked failed; then sweep what killed runs left
    behind (exports_sweep). Returns the number expired."""
    now = now or timezone.now()
    count = 0
    for export in Export.objects.filter(expires_at__lte=now).exclude(
            status=ExportStatus.EXPIRED).iterator():
        if export.file_path:
            path = export_dir() / export.file_path
            try:
                path.unlink(missing_ok=True)
            except OSError:
                logger.warning("could not delete %s", path, exc_info=True)
                continue
        Export.objects.filter(pk=export.pk).update(status=ExportStatus.EXPIRED, file_path="")
        count += 1
    Export.objects.filter(status=ExportStatus.RUNNING,
                          started_at__lt=now - timedelta(hours=6)).update(
        status=ExportStatus.FAILED, error="The export stopped (worker lost).",
        finished_at=now)
    swept = exports_sweep(now=now)
    if swept:
        logger.info("deleted %s leftover file(s) of stopped exports", swept)
    return count
