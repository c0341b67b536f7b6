"""Import benchmark (DESIGN.md section 10), run by `make bench` on PostgreSQL:

- `import_peak_rss_mb`: peak resident memory of a fresh process running
  `manage.py import_pstn_calls` on Microsoft's export zip of 1M calls (VmHWM of the child:
  Django, the streaming reader, one batch of rows, the ingestion). The calls are the ones
  bench_usage generates (60 licensed people, the illustrative deck), written as
  `PSTN.calls.<date>.csv` in Microsoft's column order and deflated like Microsoft's zip.
"""

import csv
import io
import os
import random
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.db import connection

ROWS = 1_000_000
CHUNK = 10_000

_CHILD = """
import io, sys
import django
django.setup()
from django.core.management import call_command
out = io.StringIO()
try:
    call_command("import_pstn_calls", sys.argv[1], "--org", sys.argv[2], stdout=out)
    code = 0
except SystemExit as exc:
    code = exc.code
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent across exec.
with open("/proc/self/status") as status:
    hwm = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
print(out.getvalue().splitlines()[0] if out.getvalue() else "", "|", code, "|", hwm)
"""


def write_export_csv(text, rng, people, rows: int, start: datetime) -> None:
    """Microsoft's export CSV of `rows` generated calls to the text file `text`, a chunk
    at a time."""
    from tests.benchmarks.bench_usage import _graph_rows
    from usage.ingest import EXPORT_COLUMNS, EXPORT_HEADER

    fields = [f for _c, f in EXPORT_COLUMNS]
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(EXPORT_HEADER)
    for done in range(0, rows, CHUNK):
        for row in _graph_rows(rng, people, min(CHUNK, rows - done),
                               start + timedelta(seconds=2 * done)):
            writer.writerow(["" if row[f] is None else row[f] for f in fields])


def write_export_zip(path: Path, rng, people, rows: int, start: datetime) -> None:
    """Microsoft's export zip of `rows` generated calls, written a chunk at a time."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        name = f"PSTN.calls.{start.date().isoformat()}.csv"
        with archive.open(name, "w", force_zip64=True) as member:
            text = io.TextIOWrapper(member, encoding="utf-8", newline="")
            write_export_csv(text, rng, people, rows, start)
            text.flush()
            text.detach()
        archive.writestr("parameters.json", "{}")


def _import_peak_rss_mb(org, path: Path) -> tuple[float, str, float]:
    settings = connection.settings_dict
    url = (f"postgres://{settings['USER']}:{settings['PASSWORD'] or ''}@"
           f"{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}")
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings_test"}
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), org.slug],
        env=env, capture_output=True, text=True, check=True,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    seconds = time.perf_counter() - started
    summary, code, max_kb = (part.strip() for part in out.stdout.strip().split("|"))
    assert summary.startswith("PSTN: imported ") and code == "0", (
        summary, code, out.stderr[-2000:])
    return int(max_kb) / 1024, summary, seconds


def run() -> dict[str, float]:
    from tests.benchmarks.bench_usage import _setup

    if connection.vendor != "postgresql":
        raise RuntimeError("the import benchmark needs PostgreSQL")
    org, people, _token = _setup()
    rng = random.Random(20261130)
    start = (datetime.now(UTC) - timedelta(days=25)).replace(microsecond=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "Calls.Export.1.zip"
        write_export_zip(path, rng, people, ROWS, start)
        info = zipfile.ZipFile(path).infolist()[0]
        peak, summary, seconds = _import_peak_rss_mb(org, path)
    print(f"# import: {summary} from a {info.compress_size / 2**20:.0f} MB zip "
          f"({info.file_size / 2**20:.0f} MB of CSV) in {seconds:.0f} s "
          f"({ROWS / seconds:.0f} rows/s)", file=sys.stderr)
    return {"import_peak_rss_mb": peak}
