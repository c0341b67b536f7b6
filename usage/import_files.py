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
import zipfile
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from .ingest import (
    EXPORT_COLUMNS,
    EXPORT_HEADER,
    MAX_UNZIPPED_BYTES,
    FileError,
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

_FIELDS = [field for _column, field in EXPORT_COLUMNS]
# An encoded lone surrogate (what some exporters write for a broken character) decodes to
# itself, so the row holding it is refused with the field named (ingest.text_problem)
# rather than the whole file; any other byte that is not UTF-8 refuses the file.
_DECODE_ERRORS = "surrogatepass"
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, OSError)
_UNSUPPORTED = (NotImplementedError, RuntimeError)  # encrypted, unknown compression

Source = str | os.PathLike | BinaryIO


# --- public API ---------------------------------------------------------------------------


def iter_rows(source: Source) -> Iterator[dict]:
    """Every row of the file as a Graph dict, read as they are consumed. Raises FileError
    (naming the zip member when there is one) when the file cannot be read; rows yielded
    before the error stay yielded, so callers that must not act on half a file `scan`
    it first."""
    for row, _chars in _sized_rows(source):
        yield row


def iter_batches(source: Source, size: int, max_chars: int = MAX_BATCH_CHARS
                 ) -> Iterator[list[dict]]:
    """The rows of `iter_rows` in lists of at most `size` rows, cut early once they hold
    `max_chars` characters of cells."""
    batch: list[dict] = []
    chars = 0
    for row, row_chars in _sized_rows(source):
        batch.append(row)
        chars += row_chars
        if len(batch) >= size or chars >= max_chars:
            yield batch
            batch, chars = [], 0
    if batch:
        yield batch


def scan(source: Source) -> int:
    """Read the whole file as `iter_rows` does, keeping nothing: the number of rows, or
    FileError."""
    with _opened(source) as f:
        kind = _kind(f)
        if kind == "json":
            return len(_json_rows(f))
        records = _zip_records(f) if kind == "zip" else _csv_records(f, "")
        return sum(1 for _values in records)


def sniff(source: Source) -> None:
    """The checks that cost a few reads: the file's type, a zip's directory and declared
    sizes, the header and first row of each CSV, a JSON file's size. Raises FileError."""
    with _opened(source) as f:
        kind = _kind(f)
        if kind == "json":
            _json_bytes(f, read=False)
        elif kind == "zip":
            for _values in _zip_records(f, first_row_only=True):
                pass
        else:
            for _values in _csv_records(f, "", first_row_only=True):
                pass


def _sized_rows(source: Source) -> Iterator[tuple[dict, int]]:
    """(row, characters in its cells). JSON rows count 0: the whole file is in memory
    already, under MAX_JSON_BYTES."""
    with _opened(source) as f:
        kind = _kind(f)
        if kind == "json":
            for row in _json_rows(f):
                yield row, 0
        else:
            records = _zip_records(f) if kind == "zip" else _csv_records(f, "")
            for values in records:
                del values[len(_FIELDS):]  # cells past the header's are ignored
                yield _graph(values), sum(map(len, values))


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
    """zip, json (the first character that is not white space opens an object or a list)
    or csv."""
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
            kind = "json" if text[0] in "{[" else "csv"
            break
    f.seek(0)
    return kind


# --- CSV ----------------------------------------------------------------------------------


def _graph(values: list[str]) -> dict:
    """One CSV record as a Graph dict: an empty cell or a missing column is None, cells past
    the header's 20 are ignored."""
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


def _csv_records(binary: BinaryIO, where: str, first_row_only: bool = False
                 ) -> Iterator[list[str]]:
    """The records of one export CSV after its header (blank lines skipped), as lists of
    cells. `where` prefixes errors ("member.csv: ")."""
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors=_DECODE_ERRORS, newline="")
    try:
        lines = _Lines(text, where)
        reader = csv.reader(lines)
        header = [h.strip() for h in next(reader, [])]
        lines.row_chars = 0
        if header != EXPORT_HEADER:
            missing = [c for c in EXPORT_HEADER if c not in header]
            raise FileError(
                f"{where}not a PSTN usage export: the header must be the columns of "
                f"Microsoft's export in order ({', '.join(EXPORT_HEADER)})"
                + (f"; missing: {', '.join(missing)}" if missing else "")
            )
        for values in reader:
            lines.row_chars = 0
            if values:
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


def _zip_records(f: BinaryIO, first_row_only: bool = False) -> Iterator[list[str]]:
    _zip_directory_check(f)
    try:
        archive = zipfile.ZipFile(f)
    except _DAMAGED as exc:
        raise FileError(f"damaged zip: {exc}") from None
    except _UNSUPPORTED as exc:
        raise FileError(f"unsupported zip: {exc}") from None
    with archive:
        members = sorted((i for i in archive.infolist()
                          if not i.is_dir() and i.filename.lower().endswith(".csv")),
                         key=lambda i: i.filename)
        if not members:
            raise FileError("the zip holds no .csv file")
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
                    yield from _csv_records(capped, where, first_row_only)
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


def _json_rows(f: BinaryIO) -> list:
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
    return rows_from_json(data)
