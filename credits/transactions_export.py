"""Transactions (the ledger) exported for an accountant: .xlsx and CSV for a date range.

One row per ledger entry, in the order the entries were written, with the columns: date
(UTC), kind, description, amount, balance after, invoice or credit-note number, actor.
The balance after is the one the ledger stored when the entry was written, so each row's
balance after is the previous row's plus its amount, and the last row's is the account's
balance at the end of the range.

Memory stays flat whatever the range: rows are read in chunks, the CSV streams, and the
workbook is written in XlsxWriter's constant-memory mode to a temporary file. Text cells
are written as text (`write_string` in the workbook, `credits.platform.csvsafe` in the
CSV), so a description typed as "=HYPERLINK(...)" stays text in a spreadsheet.
"""

import io
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import xlsxwriter
from django.core.exceptions import ObjectDoesNotExist
from django.utils.translation import gettext as _

from .models import LedgerEntry, LedgerKind, Organization
from .platform import csvsafe
from .selectors.billing import (
    ledger_balance_at,
    ledger_document_relations,
    ledger_entries_between,
)

__all__ = ["TransactionsRange", "transactions_csv", "transactions_xlsx", "export_filename"]

BOM = "\ufeff"
CHUNK = 2000
# One synchronous request answers an export: a year (and a leap day) at most.
MAX_DAYS = 366


@dataclass(frozen=True)
class TransactionsRange:
    """Whole UTC days, both included."""

    start: date
    end: date

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)


@dataclass(frozen=True)
class Row:
    date: datetime  # aware, UTC
    kind: str
    description: str
    amount: Decimal
    balance_after: Decimal
    document: str
    actor: str


def headers() -> list[str]:
    return [_("Date (UTC)"), _("Type"), _("Description"), _("Amount"), _("Balance after"),
            _("Invoice or credit note"), _("Actor")]


def _document_number(entry: LedgerEntry, relations) -> str:
    for name in relations:
        try:
            return getattr(entry, name).number
        except ObjectDoesNotExist:
            continue
    return ""


def rows(*, organization: Organization, period: TransactionsRange) -> Iterator[Row]:
    relations = ledger_document_relations()
    kinds = dict(LedgerKind.choices)
    entries = ledger_entries_between(organization=organization, start=period.since,
                                     end=period.until)
    for entry in entries.iterator(chunk_size=CHUNK):
        yield Row(
            date=entry.created_at.astimezone(UTC),
            kind=str(kinds.get(entry.kind, entry.kind)),
            description=entry.description,
            amount=entry.amount,
            balance_after=entry.balance_after,
            document=_document_number(entry, relations),
            actor=entry.actor_label,
        )


def export_filename(*, organization: Organization, period: TransactionsRange, ext: str) -> str:
    return f"transactions-{organization.slug}-{period.start:%Y%m%d}-{period.end:%Y%m%d}.{ext}"


def transactions_csv(*, organization: Organization, period: TransactionsRange) -> Iterator[str]:
    """The CSV as text chunks: a UTF-8 byte order mark (so Excel reads the accents), the
    header, then one line per entry. Amounts are plain decimals with a dot."""
    buffer = io.StringIO()
    writer = csvsafe.writer(buffer)
    writer.writerow(headers())
    yield BOM + _drain(buffer)
    for i, row in enumerate(rows(organization=organization, period=period), 1):
        writer.writerow([row.date.strftime("%Y-%m-%d %H:%M:%S"), row.kind, row.description,
                         str(row.amount), str(row.balance_after), row.document, row.actor])
        if i % 500 == 0:
            yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def transactions_xlsx(*, organization: Organization, period: TransactionsRange,
                      currency: str):
    """The workbook as an open temporary file, at its start: a Transactions sheet (typed
    cells, frozen header, autofilter) and a Summary sheet (the range, the opening and
    closing balances, the totals per kind)."""
    out = tempfile.TemporaryFile()  # removed by the system when closed
    book = xlsxwriter.Workbook(out, {"constant_memory": True, "strings_to_formulas": False,
                                     "strings_to_urls": False})
    bold = book.add_format({"bold": True})
    when = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    amount = book.add_format({"num_format": "#,##0.00;-#,##0.00"})
    sheet = book.add_worksheet(_("Transactions")[:31])
    names = headers()
    for col, (name, width) in enumerate(zip(names, (20, 16, 50, 14, 14, 22, 30), strict=True)):
        sheet.set_column(col, col, width)
        sheet.write_string(0, col, name, bold)
    sheet.freeze_panes(1, 0)
    count, first, last, totals = 0, None, None, {}
    for r, row in enumerate(rows(organization=organization, period=period), 1):
        sheet.write_datetime(r, 0, row.date.replace(tzinfo=None), when)
        sheet.write_string(r, 1, row.kind)
        sheet.write_string(r, 2, row.description)
        sheet.write_number(r, 3, row.amount, amount)
        sheet.write_number(r, 4, row.balance_after, amount)
        sheet.write_string(r, 5, row.document)
        sheet.write_string(r, 6, row.actor)
        count = r
        first = first or row
        last = row
        totals[row.kind] = totals.get(row.kind, Decimal(0)) + row.amount
    sheet.autofilter(0, 0, max(count, 1), len(names) - 1)
    opening = (first.balance_after - first.amount if first is not None
               else ledger_balance_at(organization=organization, at=period.since))
    closing = last.balance_after if last is not None else opening
    _summary(book, bold=bold, amount=amount, organization=organization, period=period,
             currency=currency, opening=opening, closing=closing, count=count, totals=totals)
    book.close()
    out.seek(0)
    return out


def _summary(book, *, bold, amount, organization, period, currency, opening, closing,
             count, totals: dict) -> None:
    sheet = book.add_worksheet(_("Summary")[:31])
    sheet.set_column(0, 0, 34)
    sheet.set_column(1, 1, 22)
    lines: list[tuple[str, object]] = [
        (_("Organization"), organization.name),
        (_("From (UTC)"), period.start.isoformat()),
        (_("To (UTC)"), period.end.isoformat()),
        (_("Currency"), currency),
        (_("Transactions"), count),
        (_("Opening balance"), opening),
        (_("Closing balance"), closing),
    ]
    lines += [(_("Total: %(kind)s") % {"kind": kind}, total)
              for kind, total in sorted(totals.items())]
    for r, (label, value) in enumerate(_with_header(lines)):
        sheet.write_string(r, 0, label, bold if r == 0 else None)
        if isinstance(value, Decimal):
            sheet.write_number(r, 1, value, amount)
        elif isinstance(value, int):
            sheet.write_number(r, 1, value)
        else:
            sheet.write_string(r, 1, str(value), bold if r == 0 else None)


def _with_header(lines: Iterable[tuple[str, object]]):
    yield _("Summary"), ""
    yield from lines
