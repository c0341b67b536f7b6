"""Cells of CSV files meant for people, made safe to open in a spreadsheet.

A spreadsheet reads a cell that starts with = + - @ (or a tab or carriage return before
one) as a formula, and a formula can run commands or leak data (CSV injection). Following
OWASP, such text is written with a single quote in front, which the spreadsheet shows as
text. Two kinds of cell are left as they are, because they cannot be formulas:

- values that are not text (numbers, dates): the writer formats them itself;
- plain signed decimals such as ``-12.50`` or ``+44``: a spreadsheet reads them as the
  number they are, with no operator or function after the sign, so quoting them would only
  turn amounts into text.

`restore` undoes `neutralize` exactly, so a file a person downloaded (say a rate deck) loads
back with the same values. Files meant for machines (Microsoft's export zip) do not go
through here: they must stay byte-faithful.
"""

import csv
import io
import re

# The first characters that make a spreadsheet evaluate a cell.
DANGEROUS_FIRST = frozenset("=+-@\t\r")
QUOTE = "'"
_PLAIN_DECIMAL = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?\Z")


def neutralize(value):
    """`value`, with a single quote in front when a spreadsheet would read it as a formula.

    Text that already starts with a quote followed by such a character (or another quote)
    gets one too, so that `restore` can tell the two apart and the round trip is exact."""
    if not isinstance(value, str) or not value:
        return value
    first = value[0]
    if first in DANGEROUS_FIRST:
        return value if _PLAIN_DECIMAL.match(value) else QUOTE + value
    if first == QUOTE and _quoted(value):
        return QUOTE + value
    return value


def restore(value: str) -> str:
    """A cell read back from a file `neutralize` wrote: the value that was written."""
    if isinstance(value, str) and value[:1] == QUOTE and _quoted(value):
        return value[1:]
    return value


def _quoted(value: str) -> bool:
    second = value[1:2]
    return bool(second) and (second in DANGEROUS_FIRST or second == QUOTE)


class SafeWriter:
    """`csv.writer` whose rows are neutralized cell by cell.

    A cell holding a carriage return or a line feed is always quoted: the csv module quotes
    only the characters of its own line ending, so with "\n" line ends a lone "\r" would
    be written bare and split the row when read back."""

    def __init__(self, out, *, lineterminator: str = "\r\n", **kwargs):
        self._out = out
        self._end = lineterminator
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n", **kwargs)

    def writerow(self, row):
        self._writer.writerow([neutralize(v) for v in row])
        line = self._buffer.getvalue()[:-2] + self._end
        self._buffer.seek(0)
        self._buffer.truncate()
        return self._out.write(line)

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


def writer(out, **kwargs) -> SafeWriter:
    """A CSV writer for files meant for people (same arguments as `csv.writer`)."""
    return SafeWriter(out, **kwargs)
