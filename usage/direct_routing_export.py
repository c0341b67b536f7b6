"""The Direct Routing rows of the report's exports, when the export asks for them
(Export.include_direct_routing): a "DirectRouting" sheet in the workbook and a
`DirectRouting.calls.<UTC date>.csv` member in Microsoft's zip, in the 22 columns of
Microsoft's "Exported Direct Routing usage report" (usage.direct_routing.EXPORT_HEADER), so
that `import_pstn_calls` reads the zip back as the same rows (duplicates).

The rows are the calls that started in the export's date range; the report's other filters
(user, call type, what paid) are the Calling Plans tab's and do not apply. External numbers
are masked as the Direct Routing tab masks them. Rows stream from the database in chunks.
"""

import csv
import io
from datetime import UTC, datetime

from . import direct_routing_store as store
from .direct_routing import EXPORT_HEADER, mask_dr_numbers

SHEET_NAME = "DirectRouting"
XLSX_HEADER = [*EXPORT_HEADER, "Id"]
_WIDTHS = [38, 38, 30, 24, 8, 19, 19, 19, 19, 10, 8, 16, 16, 22, 10, 10, 10, 12, 24, 28, 8,
           38, 38]


def member_name(generated_at: datetime) -> str:
    return f"DirectRouting.calls.{generated_at.astimezone(UTC).date().isoformat()}.csv"


def _iso(value: datetime | None) -> str:
    """UTC ISO 8601 with the stored precision, so the leg key reads back the same."""
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("Yes" if value else "No")


def _calls(job):
    start_at, end_before = store.day_range(job.filters.start, job.filters.end)
    return store.stream_for_export(organization=job.organization, start_at=start_at,
                                   end_before=end_before)


def csv_fields(call, digits: int) -> list[str]:
    caller, callee = mask_dr_numbers(call.call_type, call.caller_number, call.callee_number,
                                     digits)
    return [
        call.correlation_id, call.user_id, call.upn, call.user_display_name,
        call.user_country, _iso(call.invite_at), _iso(call.start_at), _iso(call.failure_at),
        _iso(call.end_at), str(call.duration_s), _yes_no(call.successful), caller, callee,
        call.call_type, call.media_region, call.signaling_region,
        "" if call.final_sip_code is None else str(call.final_sip_code),
        "" if call.final_subcode is None else str(call.final_subcode),
        call.final_sip_phrase, call.sbc_fqdn, _yes_no(call.media_bypass),
        call.shared_correlation_id,
    ]


def write_csv_member(archive, job) -> int:
    """Add the member to an open zip; returns the number of rows written."""
    digits = job.mask_digits
    done = 0
    with archive.open(member_name(job.generated_at), "w", force_zip64=True) as member:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(EXPORT_HEADER)
        for call in _calls(job):
            writer.writerow(csv_fields(call, digits))
            done += 1
            if not done % 5000:
                member.write(buffer.getvalue().encode())
                buffer.seek(0)
                buffer.truncate()
        member.write(buffer.getvalue().encode())
    return done


def write_sheet(workbook, job, fmt) -> int:
    """Add the DirectRouting sheet: typed cells (times as UTC Excel serials, codes as
    numbers), text through write_string only (no formula), frozen header, autofilter."""
    from .exports import MAX_SHEET_ROWS, excel_serial

    sheet = workbook.add_worksheet(SHEET_NAME)
    for c, width in enumerate(_WIDTHS):
        sheet.set_column(c, c, width)
    sheet.freeze_panes(1, 0)
    for c, title in enumerate(XLSX_HEADER):
        sheet.write_string(0, c, title, fmt.header)
    digits = job.mask_digits
    r = 0
    for call in _calls(job):
        if r == MAX_SHEET_ROWS - 1:
            break  # Direct Routing volumes stay far below a sheet's 1,048,575 rows
        r += 1
        cells = csv_fields(call, digits) + [call.graph_id]
        for c, value in enumerate(cells):
            if value == "":
                continue
            if c in (5, 6, 7, 8):
                moment = (call.invite_at, call.start_at, call.failure_at, call.end_at)[c - 5]
                sheet.write_number(r, c, excel_serial(moment), fmt.datetime)
            elif c in (9, 16, 17):
                sheet.write_number(r, c, int(value))
            else:
                sheet.write_string(r, c, value)
    sheet.autofilter(0, 0, max(r, 1), len(XLSX_HEADER) - 1)
    return r
