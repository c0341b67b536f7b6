"""The reconciliation workbook (.xlsx): a Summary, one sheet per grouping (By day, By user,
By destination), the rows not compared (another currency, or no reported charge), the
largest differences and the Parameters. Cells are typed: dates are dates, amounts are
numbers with the currency's format; text is written as text (no formula is ever read from
a name). It holds rollup rows, not calls, so it is made in memory.
"""

import io
from datetime import UTC, datetime

import xlsxwriter
from babel.numbers import get_currency_symbol

from credits.models import Organization

from . import masking
from .reconciliation import Group, Reconciliation, TopCall
from .report import ReportFilters

SHEETS = {"day": "By day", "user": "By user", "destination": "By destination"}
SUMS_HEADER = ["Calls", "Not rated", "Reported ({cur})", "Rated ({cur})", "Difference ({cur})"]
TOP_HEADER = [
    "Start Time (UTC)", "UsageId", "User Display Name", "UPN", "Call Type",
    "Destination Number", "Destination", "Duration Seconds", "Reported Charge",
    "Reported Connection Fee", "Reported Currency", "Reported Capability", "Rate",
    "Connection Fee", "Billable Minutes", "Charged To", "Rated Charge", "Difference",
    "Not Rated Reason",
]


class _Formats:
    def __init__(self, workbook, currency: str):
        symbol = get_currency_symbol(currency, locale="en")
        self.header = workbook.add_format({"bold": True, "bg_color": "#F3F2F1", "bottom": 1})
        self.title = workbook.add_format({"bold": True, "font_size": 14})
        self.date = workbook.add_format({"num_format": "yyyy-mm-dd"})
        self.datetime = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.money = workbook.add_format({"num_format": f"[${symbol}]#,##0.00###"})
        self.amount = workbook.add_format({"num_format": "#,##0.00###"})
        self.number = workbook.add_format({"num_format": "#,##0"})
        self.minutes = workbook.add_format({"num_format": "#,##0.0"})


def _header(sheet, names, fmt: _Formats, widths=None) -> None:
    for col, name in enumerate(names):
        sheet.write_string(0, col, name, fmt.header)
        sheet.set_column(col, col, (widths or {}).get(col, max(12, len(name) + 2)))
    sheet.freeze_panes(1, 0)


def _money(sheet, r, c, value, fmt) -> None:
    if value is None:
        sheet.write_blank(r, c, None)
    else:
        sheet.write_number(r, c, float(value), fmt)


def _text(sheet, r, c, value) -> None:
    if value:
        sheet.write_string(r, c, value)
    else:
        sheet.write_blank(r, c, None)


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def _sums(sheet, r, c, g: Group, fmt: _Formats) -> None:
    sheet.write_number(r, c, g.sums.calls, fmt.number)
    sheet.write_number(r, c + 1, g.sums.unrated, fmt.number)
    _money(sheet, r, c + 2, g.sums.reported, fmt.money)
    _money(sheet, r, c + 3, g.sums.rated, fmt.money)
    _money(sheet, r, c + 4, g.sums.difference, fmt.money)


def _key_cells(group: str, key) -> list:
    if group == "day":
        return [key]
    if group == "user":
        return [key[2] or key[1], key[1]]
    return [key]


_KEY_HEADER = {"day": ["Day"], "user": ["User Display Name", "UPN"],
               "destination": ["Destination Country"]}


def _write_keys(sheet, r, group, key, fmt) -> int:
    cells = _key_cells(group, key)
    for c, value in enumerate(cells):
        if group == "day":
            sheet.write_datetime(r, c, datetime.combine(value, datetime.min.time()), fmt.date)
        else:
            _text(sheet, r, c, value)
    return len(cells)


def _group_sheet(workbook, group: str, rows: list[Group], currency: str, fmt) -> None:
    sheet = workbook.add_worksheet(SHEETS[group])
    header = [*_KEY_HEADER[group], *(h.format(cur=currency) for h in SUMS_HEADER)]
    _header(sheet, header, fmt, {0: 30 if group == "user" else 14, 1: 34})
    for r, g in enumerate(rows, start=1):
        _sums(sheet, r, _write_keys(sheet, r, group, g.key, fmt), g, fmt)
    sheet.autofilter(0, 0, max(len(rows), 1), len(header) - 1)


def _apart_sheet(workbook, groups: dict, currency: str, fmt) -> None:
    sheet = workbook.add_worksheet("Not compared")
    header = ["Grouping", "Day", "User Display Name", "UPN", "Destination Country",
              "Reported Currency", "Calls", "Reported (in its currency)",
              f"Rated ({currency})"]
    _header(sheet, header, fmt, {2: 30, 3: 34})
    r = 0
    for group in SHEETS:
        for g in groups[group][1]:
            r += 1
            _text(sheet, r, 0, group)
            if group == "day":
                sheet.write_datetime(r, 1, datetime.combine(g.key, datetime.min.time()),
                                     fmt.date)
            elif group == "user":
                _text(sheet, r, 2, g.key[2] or g.key[1])
                _text(sheet, r, 3, g.key[1])
            else:
                _text(sheet, r, 4, g.key)
            # "" when Microsoft reported no charge: the cell stays empty.
            _text(sheet, r, 5, g.currency)
            sheet.write_number(r, 6, g.sums.calls, fmt.number)
            _money(sheet, r, 7, g.sums.reported, fmt.amount)
            _money(sheet, r, 8, g.sums.rated, fmt.money)
    sheet.autofilter(0, 0, max(r, 1), len(header) - 1)


def _top_sheet(workbook, top: list[TopCall], currency: str, digits: int, fmt) -> None:
    sheet = workbook.add_worksheet("Largest differences")
    _header(sheet, TOP_HEADER, fmt, {0: 19, 1: 38, 2: 24, 3: 30})
    for r, t in enumerate(top, start=1):
        c = t.call
        _caller, callee = masking.mask_call_numbers(c.call_type, c.caller_number,
                                                    c.callee_number, digits)
        sheet.write_datetime(r, 0, _naive_utc(c.start_at), fmt.datetime)
        for col, value in ((1, c.graph_id), (2, c.user_display_name), (3, c.upn),
                           (4, c.call_type), (5, callee), (6, c.destination_country
                                                               or c.destination_name)):
            _text(sheet, r, col, value)
        sheet.write_number(r, 7, c.duration_s, fmt.number)
        _money(sheet, r, 8, c.reported_charge, fmt.amount)
        _money(sheet, r, 9, c.reported_connection_charge, fmt.amount)
        _text(sheet, r, 10, c.currency)
        _text(sheet, r, 11, c.reported_capability)
        _money(sheet, r, 12, c.rate_per_minute, fmt.money)
        _money(sheet, r, 13, c.connection_fee, fmt.money)
        sheet.write_number(r, 14, c.billable_seconds / 60, fmt.minutes)
        _text(sheet, r, 15, c.charged_to)
        _money(sheet, r, 16, c.charge, fmt.money)
        _money(sheet, r, 17, t.difference, fmt.money)
        _text(sheet, r, 18, c.unrated_reason)
    sheet.autofilter(0, 0, max(len(top), 1), len(TOP_HEADER) - 1)


def _summary_sheet(workbook, data: Reconciliation, fmt) -> None:
    sheet = workbook.add_worksheet("Summary")
    cur = data.currency
    sheet.write_string(0, 0, "Reconciliation: Microsoft's reported charges and this "
                             "system's rating", fmt.title)
    sheet.set_column(0, 0, 28)
    sheet.set_column(1, 5, 16)
    header = ["Reported Currency", "Calls", "Not rated", "Reported (in its currency)",
              f"Rated ({cur})", f"Difference ({cur})"]
    for c, name in enumerate(header):
        sheet.write_string(2, c, name, fmt.header)
    rows = [(cur, data.compared, True)]
    rows += [(other, sums, False) for other, sums in data.other_currencies]
    rows.append(("(not reported)", data.not_reported, False))
    for r, (label, sums, compared) in enumerate(rows, start=3):
        sheet.write_string(r, 0, label)
        sheet.write_number(r, 1, sums.calls, fmt.number)
        sheet.write_number(r, 2, sums.unrated, fmt.number)
        _money(sheet, r, 3, sums.reported, fmt.money if compared else fmt.amount)
        _money(sheet, r, 4, sums.rated, fmt.money)
        if compared:
            _money(sheet, r, 5, sums.difference, fmt.money)


def _parameters_sheet(workbook, organization, filters, requested_by, generated_at, fmt):
    sheet = workbook.add_worksheet("Parameters")
    sheet.set_column(0, 0, 22)
    sheet.set_column(1, 1, 40)
    rows = [
        ("Organization", organization.name), ("Currency", organization.currency),
        ("From (UTC)", filters.start), ("To (UTC)", filters.end),
        ("Generated at (UTC)", generated_at), ("Requested by", requested_by),
        ("Difference", "Rated charge - reported charge"),
    ]
    for r, (name, value) in enumerate(rows):
        sheet.write_string(r, 0, name, fmt.header)
        if isinstance(value, datetime):
            sheet.write_datetime(r, 1, _naive_utc(value), fmt.datetime)
        elif hasattr(value, "isoformat"):
            sheet.write_datetime(r, 1, datetime.combine(value, datetime.min.time()), fmt.date)
        else:
            _text(sheet, r, 1, value)


def reconciliation_workbook(*, organization: Organization, filters: ReportFilters,
                            groups: dict, data: Reconciliation, top: list[TopCall] | None,
                            requested_by: str, generated_at: datetime) -> bytes:
    """The .xlsx bytes. `groups` maps each grouping to its (compared rows, rows apart);
    `top` is None when the requester may not read call rows (no such sheet then)."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False,
                                            "strings_to_urls": False,
                                            "strings_to_numbers": False})
    fmt = _Formats(workbook, organization.currency)
    _summary_sheet(workbook, data, fmt)
    for group in SHEETS:
        _group_sheet(workbook, group, groups[group][0], organization.currency, fmt)
    _apart_sheet(workbook, groups, organization.currency, fmt)
    if top is not None:
        _top_sheet(workbook, top, organization.currency,
                   masking.digits_masked(organization.country), fmt)
    _parameters_sheet(workbook, organization, filters, requested_by, generated_at, fmt)
    workbook.close()
    return buffer.getvalue()

