"""Reading a calls file as a stream of Graph row dicts, in bounded memory (no database).

Files: Microsoft's PSTN usage export CSV, the export zip holding such CSVs, and Graph
`pstnCallLogRow` JSON (see usage.ingest). Whatever the file's size, memory holds a block of
it and the rows the caller has not consumed yet, never the file:

- CSV is decoded incrementally (UTF-8, BOM allowed) and parsed line by line; lines are read
  with a length limit and a row (which quoted line ends can stretch over many lines) may
  not pass MAX_ROW_CHARS, so no input becomes one huge string or one endless row;
- a zip member is decompressed as it is read. Before anything is decompressed the zip is
  checked (size of its directory, declared sizes, compression ratio), and the same limits
  are enforced again on the bytes actually produced, because a zip's headers are the
  sender's word;
- Graph JSON is parsed whole (the json module has no incremental reader, and hand-parsing
  JSON is not worth the risk), so its size is capped: json.load takes about 5 times the
  file's size in memory, so 32 MB of JSON stays near 200 MB. Graph pages are 1000 rows
  (~0.7 MB); bulk history is what Microsoft's CSV zip is for.

`iter_batches` yields the rows in lists bounded by count and by characters (`iter_rows`
one by one), `scan` reads the whole file without keeping anything (a file that fails there
can be refused before one row is stored), and `sniff` is the quick check a web request can
afford (type, zip directory, each CSV header).
"""

import codecs
import contextlib
import csv
import io
import json
import os
import re
import zipfile
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from . import direct_routing
from .direct_routing import DIRECT_ROUTING, PSTN
from .ingest import (
    EXPORT_HEADER,
    IMPORT_COLUMNS,
    MAX_UNZIPPED_BYTES,
    FileError,
    header_key,
    rows_from_json,
)

MB = 1024 * 1024
MAX_JSON_BYTES = 32 * MB
MAX_MEMBER_BYTES = 512 * MB  # one CSV of a zip, unpacked (about 3M rows)
# Microsoft's exports compress 4:1 to 20:1 and a CSV of identical rows ~60:1; deflate
# reaches ~1000:1 only on filler. Members below the floor are too small to matter.
MAX_RATIO = 100
RATIO_FLOOR = 1 * MB
# The zip's central directory is read into memory whole (a few hundred bytes per entry):
# an export has two entries.
MAX_ENTRIES = 1000
MAX_DIRECTORY_BYTES = 1 * MB
# A row of an export is ~200 characters and no field of a valid row passes 128: a row of
# more than a million is refused with the file, as a field over csv's own limit is.
MAX_ROW_CHARS = 1 * MB
# A batch is cut early past this many characters of cells, so batches of abusive rows
# (all to be rejected) weigh what batches of real rows do.
MAX_BATCH_CHARS = 16 * MB
READ_BLOCK = 64 * 1024

# The Graph field of each column a record is read into, in this order (`_csv_records`
# arranges each record so, whatever the order of the file's columns).
_FIELDS = [field for _column, field in IMPORT_COLUMNS]
_COLUMN_AT = {header_key(column): i for i, (column, _field) in enumerate(IMPORT_COLUMNS)}
# An encoded lone surrogate (what some exporters write for a broken character) decodes to
# itself, so the row holding it is refused with the field named (ingest.text_problem)
# rather than the whole file; any other byte that is not UTF-8 refuses the file.
_DECODE_ERRORS = "surrogatepass"
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, OSError)
_UNSUPPORTED = (NotImplementedError, RuntimeError)  # encrypted, unknown compression

Source = str | os.PathLike | BinaryIO


# --- public API ---------------------------------------------------------------------------


def iter_rows(source: Source, notes: list[str] | None = None) -> Iterator[dict]:
    """Every row of the file as a Graph dict, read as they are consumed. Raises FileError
    (naming the zip member when there is one) when the file cannot be read; rows yielded
    before the error stay yielded, so callers that must not act on half a file `scan`
    it first. What was read but ignored (unknown columns) is added to `notes`, once."""
    for row, _chars in _sized_rows(source, notes):
        yield row


def iter_kind_batches(source: Source, size: int, max_chars: int = MAX_BATCH_CHARS,
                      notes: list[str] | None = None) -> Iterator[tuple[str, list[dict]]]:
    """(kind, rows) of every row of the file, PSTN (`pstnCallLogRow`) and Direct Routing
    (`directRoutingLogRow`) alike, in file order, in lists of one kind of at most `size`
    rows, cut early past `max_chars` characters of cells. A zip's members are read by
    their name (usage.import_files.member_kind); members of no known name are skipped and
    said in `notes`."""
    batch: list[dict] = []
    batch_kind = PSTN
    chars = 0
    for kind, row, row_chars in _kind_rows(source, notes):
        if batch and kind != batch_kind:
            yield batch_kind, batch
            batch, chars = [], 0
        batch_kind = kind
        batch.append(row)
        chars += row_chars
        if len(batch) >= size or chars >= max_chars:
            yield batch_kind, batch
            batch, chars = [], 0
    if batch:
        yield batch_kind, batch


def iter_batches(source: Source, size: int, max_chars: int = MAX_BATCH_CHARS,
                 notes: list[str] | None = None) -> Iterator[list[dict]]:
    """The rows of `iter_rows` in lists of at most `size` rows, cut early once they hold
    `max_chars` characters of cells."""
    batch: list[dict] = []
    chars = 0
    for row, row_chars in _sized_rows(source, notes):
        batch.append(row)
        chars += row_chars
        if len(batch) >= size or chars >= max_chars:
            yield batch
            batch, chars = [], 0
    if batch:
        yield batch


def scan(source: Source) -> int:
    """Read the whole file as `iter_kind_batches` does, keeping nothing: the number of rows
    (of both kinds), or FileError."""
    with _opened(source) as f:
        kind = _kind(f)
        if kind == "json":
            return len(_json_rows(f))
        return sum(1 for _record in _records(f, kind, build=False))


def sniff(source: Source) -> None:
    """The checks that cost a few reads: the file's type, a zip's directory and declared
    sizes, the header and first row of each CSV, a JSON file's size. Raises FileError."""
    with _opened(source) as f:
        kind = _kind(f)
        if kind == "json":
            _json_bytes(f, read=False)
        else:
            for _record in _records(f, kind, first_row_only=True, build=False):
                pass


def _sized_rows(source: Source, notes: list[str] | None = None
                ) -> Iterator[tuple[dict, int]]:
    """(PSTN row, characters in its cells); Direct Routing rows are left out."""
    for kind, row, chars in _kind_rows(source, notes):
        if kind == PSTN:
            yield row, chars


def _kind_rows(source: Source, notes: list[str] | None = None
               ) -> Iterator[tuple[str, dict, int]]:
    """(kind, row, characters in its cells). JSON rows count 0: the whole file is in memory
    already, under MAX_JSON_BYTES."""
    with _opened(source) as f:
        kind = _kind(f)
        if kind == "json":
            for row_kind, row in _json_rows(f, by_kind=True):
                yield row_kind, row, 0
        else:
            yield from _records(f, kind, notes=notes)


def _records(f: BinaryIO, kind: str, first_row_only: bool = False,
             notes: list[str] | None = None, build: bool = True
             ) -> Iterator[tuple[str, dict | None, int]]:
    """(kind, Graph dict, characters) of each record of a zip or CSV file; without `build`,
    (kind, None, 0): a pass that only reads builds nothing."""
    if kind == "zip":
        yield from _zip_records(f, first_row_only, notes, build)
    else:
        yield from _csv_kind_records(f, kind, "", first_row_only, notes, build)


def _csv_kind_records(binary: BinaryIO, kind: str, where: str, first_row_only: bool,
                      notes: list[str] | None, build: bool = True
                      ) -> Iterator[tuple[str, dict | None, int]]:
    if kind == DIRECT_ROUTING:
        for values, fields in _dr_csv_records(binary, where, first_row_only):
            if build:
                yield DIRECT_ROUTING, direct_routing.graph_of(values, fields), \
                    sum(map(len, values))
            else:
                yield DIRECT_ROUTING, None, 0
        return
    for values in _csv_records(binary, where, first_row_only, notes):
        if not build:
            yield PSTN, None, 0
            continue
        del values[len(_FIELDS):]  # cells past the header's are ignored
        yield PSTN, _graph(values), sum(map(len, values))


# --- kinds of file ------------------------------------------------------------------------


@contextlib.contextmanager
def _opened(source: Source):
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as f:
            yield f
    else:
        source.seek(0)
        yield source


def _kind(f: BinaryIO) -> str:
    """zip, json (the first character that is not white space opens an object or a list),
    DIRECT_ROUTING (a CSV whose header starts with Microsoft's Direct Routing column
    CorrelationId) or csv."""
    if zipfile.is_zipfile(f):
        f.seek(0)
        return "zip"
    f.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8-sig")(_DECODE_ERRORS)
    kind = "csv"
    while block := f.read(READ_BLOCK):
        try:
            text = decoder.decode(block).lstrip()
        except UnicodeDecodeError:
            raise FileError("the file is not UTF-8 text") from None
        if text:
            if text[0] in "{[":
                kind = "json"
            elif direct_routing.is_header(text[:64].split(",", 1)[:1]):
                kind = DIRECT_ROUTING
            break
    f.seek(0)
    return kind


# --- CSV ----------------------------------------------------------------------------------


def _graph(values: list[str]) -> dict:
    """One CSV record (arranged as `_FIELDS`) as a Graph dict: an empty cell or a missing
    column is None, cells past `_FIELDS` are ignored."""
    graph = dict.fromkeys(_FIELDS)
    for field, value in zip(_FIELDS, values, strict=False):
        if value != "":
            graph[field] = value
    return graph


class _Lines:
    """The lines of a text stream for csv.reader, each read with a length limit, counting
    the characters of the row being parsed (`row_chars`, reset by the caller after each
    row): csv.reader pulls lines until a row ends, so this is where an endless row stops."""

    def __init__(self, text: io.TextIOBase, where: str):
        self.readline, self.where, self.row_chars = text.readline, where, 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.readline(MAX_ROW_CHARS + 1)
        if not line:
            raise StopIteration
        self.row_chars += len(line)
        if self.row_chars > MAX_ROW_CHARS:
            raise FileError(f"{self.where}a row is longer than {MAX_ROW_CHARS // MB} million "
                            "characters; this is not a PSTN usage export")
        return line


def _columns(header: list[str], where: str, notes: list[str] | None) -> list[int] | None:
    """Where each of `_FIELDS` is in a file of this header (-1: absent), or None when the
    file has them in `_FIELDS`'s order already. Names match in any case, around spaces and
    a BOM; Microsoft's 20 columns are required, other columns are ignored, with a note."""
    keys = [header_key(h) for h in header]
    missing = [c for c in EXPORT_HEADER if header_key(c) not in keys]
    if missing:
        raise FileError(
            f"{where}not a PSTN usage export: the header must name the columns of "
            f"Microsoft's export ({', '.join(EXPORT_HEADER)}); missing: {', '.join(missing)}")
    positions = [-1] * len(_FIELDS)
    unknown = []
    for i, (key, name) in enumerate(zip(keys, header, strict=True)):
        at = _COLUMN_AT.get(key)
        if at is None:
            if key:
                unknown.append(name.replace("\ufeff", "").strip())
        elif positions[at] != -1:
            raise FileError(f"{where}the column {name.strip()!r} appears twice")
        else:
            positions[at] = i
    if unknown and notes is not None:
        note = f"{where}ignored unknown columns: {', '.join(u[:64] for u in unknown[:20])}"
        if note not in notes:
            notes.append(note)
    if all(p == i or (p == -1 and i >= len(header)) for i, p in enumerate(positions)):
        return None  # Microsoft's order and nothing else: each record is read as it is
    return positions


def _csv_records(binary: BinaryIO, where: str, first_row_only: bool = False,
                 notes: list[str] | None = None) -> Iterator[list[str]]:
    """The records of one export CSV after its header (blank lines skipped), as lists of
    cells in `_FIELDS`'s order. `where` prefixes errors ("member.csv: ")."""
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors=_DECODE_ERRORS, newline="")
    try:
        lines = _Lines(text, where)
        reader = csv.reader(lines)
        positions = _columns(next(reader, []), where, notes)
        lines.row_chars = 0
        for values in reader:
            lines.row_chars = 0
            if values:
                if positions is not None:
                    size = len(values)
                    values = [values[p] if 0 <= p < size else "" for p in positions]
                yield values
                if first_row_only:
                    return
    except csv.Error as exc:  # e.g. a field over the csv module's size limit
        raise FileError(f"{where}not a readable CSV file: {exc}") from None
    except UnicodeDecodeError:
        raise FileError(f"{where}the file is not UTF-8 text") from None
    finally:
        with contextlib.suppress(ValueError):  # the caller closes the binary stream
            text.detach()


def _dr_csv_records(binary: BinaryIO, where: str, first_row_only: bool = False
                    ) -> Iterator[tuple[list[str], list]]:
    """(cells, the Graph field of each cell) of each record of a DirectRouting.calls CSV
    (usage.direct_routing.header_fields), blank lines skipped."""
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors=_DECODE_ERRORS, newline="")
    try:
        lines = _Lines(text, where)
        reader = csv.reader(lines)
        fields = direct_routing.header_fields(next(reader, []), where)
        lines.row_chars = 0
        for values in reader:
            lines.row_chars = 0
            if values:
                yield values, fields
                if first_row_only:
                    return
    except csv.Error as exc:
        raise FileError(f"{where}not a readable CSV file: {exc}") from None
    except UnicodeDecodeError:
        raise FileError(f"{where}the file is not UTF-8 text") from None
    finally:
        with contextlib.suppress(ValueError):
            text.detach()


# --- zip ----------------------------------------------------------------------------------


class _Budget:
    def __init__(self):
        self.used = 0


class _Capped(io.RawIOBase):
    """A zip member's decompressed bytes, counted as they are produced: the member's and
    the zip's limits hold whatever its headers declare."""

    def __init__(self, member, info: zipfile.ZipInfo, budget: _Budget):
        self.member, self.info, self.budget, self.count = member, info, budget, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        # ZipExtFile.read(n) decompresses about n bytes at a time: never the whole member.
        data = self.member.read(len(buffer))
        n = len(data)
        self.count += n
        self.budget.used += n
        _check_member(self.info.filename, self.count, self.info.compress_size)
        if self.budget.used > MAX_UNZIPPED_BYTES:
            raise FileError(_TOO_BIG_ZIP)
        buffer[:n] = data
        return n


_TOO_BIG_ZIP = f"the zip unpacks to more than {MAX_UNZIPPED_BYTES // MB} MB; split the export"


def _check_member(name: str, size: int, compressed: int) -> None:
    if size > MAX_MEMBER_BYTES:
        raise FileError(f"{name}: unpacks to more than {MAX_MEMBER_BYTES // MB} MB; split "
                        "the export")
    if size > RATIO_FLOOR and size > MAX_RATIO * max(compressed, 1):
        raise FileError(f"{name}: compressed more than {MAX_RATIO}:1, which no export is "
                        "(a zip bomb?)")


def _zip_directory_check(f: BinaryIO) -> None:
    """Refuse a zip whose central directory is large before zipfile reads it whole."""
    try:
        end = zipfile._EndRecData(f)
    except _DAMAGED as exc:
        raise FileError(f"damaged zip: {exc}") from None
    if end is None:
        raise FileError("damaged zip: no central directory")
    if end[zipfile._ECD_ENTRIES_TOTAL] > MAX_ENTRIES \
            or end[zipfile._ECD_SIZE] > MAX_DIRECTORY_BYTES:
        raise FileError(f"the zip holds more than {MAX_ENTRIES} files; an export holds two")
    f.seek(0)


# Microsoft's export zip: "PSTN.calls.<UTC date>.csv", "DirectRouting.calls.<UTC date>.csv"
# and "parameters.json" (the PSTN usage report page, "Exporting the reports").
_MEMBER_KINDS = (
    (re.compile(r"pstn\.calls(\.[^/\\]*)?\.csv", re.IGNORECASE), PSTN),
    (re.compile(r"directrouting\.calls(\.[^/\\]*)?\.csv", re.IGNORECASE), DIRECT_ROUTING),
)
_KNOWN_MEMBERS = ("parameters.json",)


def member_kind(name: str) -> str | None:
    """PSTN or DIRECT_ROUTING for a member of Microsoft's export zip, by its file name (in
    any folder of the zip); None for any other member."""
    base = re.split(r"[/\\]", name)[-1]
    for pattern, kind in _MEMBER_KINDS:
        if pattern.fullmatch(base):
            return kind
    return None


def _zip_records(f: BinaryIO, first_row_only: bool = False,
                 notes: list[str] | None = None, build: bool = True
                 ) -> Iterator[tuple[str, dict | None, int]]:
    """(kind, Graph dict, characters) of the records of each member, by its name. Members
    of no known name are skipped, each said once in `notes`."""
    _zip_directory_check(f)
    try:
        archive = zipfile.ZipFile(f)
    except _DAMAGED as exc:
        raise FileError(f"damaged zip: {exc}") from None
    except _UNSUPPORTED as exc:
        raise FileError(f"unsupported zip: {exc}") from None
    with archive:
        members, skipped = [], []
        for info in archive.infolist():
            if info.is_dir():
                continue
            if member_kind(info.filename) is not None:
                members.append(info)
            elif re.split(r"[/\\]", info.filename)[-1].lower() not in _KNOWN_MEMBERS:
                skipped.append(info.filename)
        members.sort(key=lambda i: i.filename)
        if notes is not None:
            for name in sorted(skipped)[:20]:
                note = (f"{name[:100]}: skipped, not a member of Microsoft's export "
                        "(PSTN.calls.<date>.csv, DirectRouting.calls.<date>.csv)")
                if note not in notes:
                    notes.append(note)
        if not members:
            raise FileError("the zip holds no PSTN.calls.<date>.csv nor "
                            "DirectRouting.calls.<date>.csv member")
        for info in members:
            _check_member(info.filename, info.file_size, info.compress_size)
        if sum(i.file_size for i in members) > MAX_UNZIPPED_BYTES:
            raise FileError(_TOO_BIG_ZIP)
        budget = _Budget()
        for info in members:
            where = f"{info.filename}: "
            try:
                with archive.open(info) as member:
                    capped = io.BufferedReader(_Capped(member, info, budget), READ_BLOCK)
                    yield from _csv_kind_records(capped, member_kind(info.filename), where,
                                                 first_row_only, notes, build)
            except _DAMAGED as exc:
                raise FileError(f"{where}damaged zip: {exc}") from None
            except _UNSUPPORTED as exc:
                raise FileError(f"{where}unsupported zip: {exc}") from None


# --- Graph JSON ---------------------------------------------------------------------------


def _json_bytes(f: BinaryIO, read: bool = True) -> bytes:
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(0)
    if size > MAX_JSON_BYTES:
        raise FileError(f"a Graph JSON file may hold at most {MAX_JSON_BYTES // MB} MB; "
                        "split it, or import Microsoft's CSV export (.zip)")
    return f.read(MAX_JSON_BYTES + 1) if read else b""


def _json_rows(f: BinaryIO, by_kind: bool = False) -> list:
    """The rows of a Graph JSON file; with `by_kind`, as (kind, row) pairs
    (usage.direct_routing.rows_by_kind)."""
    content = _json_bytes(f)
    try:
        text = content.decode("utf-8-sig", _DECODE_ERRORS)
    except UnicodeDecodeError:
        raise FileError("the file is not UTF-8 text") from None
    del content
    try:
        data = json.loads(text.lstrip())
    except json.JSONDecodeError as exc:
        raise FileError(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise FileError("not valid JSON: nested too deeply") from None
    if by_kind:
        return direct_routing.rows_by_kind(data)
    return rows_from_json(data)
