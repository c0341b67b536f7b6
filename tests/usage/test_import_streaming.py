"""Imports of call files in bounded memory: the readers stream, batches are fed one at a
time, rejected rows are kept bounded, zip bombs are refused (declared or forged sizes), and
the upload page imports in a background job with progress."""

import csv
import io
import json
import struct
import tracemalloc
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.factories import graph_row, load_test_deck
from usage import import_files, imports, ingest, services
from usage.ingest import EXPORT_COLUMNS, EXPORT_HEADER, FileError
from usage.models import CallRecord, ImportJob, ImportStatus

from .conftest import run_command

pytestmark = pytest.mark.django_db

BATCH = ingest.MAX_ROWS_PER_BATCH


def csv_text(rows: list[dict], header=True) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(EXPORT_HEADER)
    for row in rows:
        writer.writerow(["" if row.get(f) is None else str(row.get(f))
                         for _c, f in EXPORT_COLUMNS])
    return out.getvalue()


def same_rows(count: int, start: int = 0, **fields) -> list[dict]:
    """Rows identical but for their id: the most compressible export there is."""
    return [graph_row(f"r{i:07d}", calleeNumber="+33123456789", **fields)
            for i in range(start, start + count)]


def write_zip(path, members: dict[str, str | bytes]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)


@pytest.fixture(autouse=True)
def import_dir(settings, tmp_path):
    settings.IMPORT_DIR = tmp_path / "imports"
    return settings.IMPORT_DIR


@pytest.fixture
def batches(monkeypatch):
    """Records, at each call of calls_ingest, the batch size and how many rows the file
    reader had produced by then: a reader that ran ahead of the batch would show."""
    produced = [0]
    seen = []
    real_graph, real_ingest = import_files._graph, services.calls_ingest

    def counting_graph(values):  # called once per CSV row read
        produced[0] += 1
        return real_graph(values)

    def spy(*, rows, **kwargs):
        seen.append((len(rows), produced[0]))
        return real_ingest(rows=rows, **kwargs)

    monkeypatch.setattr(import_files, "_graph", counting_graph)
    monkeypatch.setattr(services, "calls_ingest", spy)
    return seen


# --- streaming, batches and rejected rows -------------------------------------------------


def test_zip_of_many_compressible_rows_imports_one_batch_at_a_time(tmp_path, org, batches,
                                                                   monkeypatch):
    monkeypatch.setattr(ingest, "FILE_ROWS_PER_BATCH", BATCH)  # small batches, small file
    load_test_deck(org)
    first, second = same_rows(1500), same_rows(1000, start=1500)
    first[1000]["duration"] = -1  # row 1001 of the file, the second batch
    second[999]["startDateTime"] = "soon"  # row 2500: the last row of the second member
    path = tmp_path / "Calls.Export.1.zip"
    write_zip(path, {"PSTN.calls.2026-11-01.csv": csv_text(first),
                     "PSTN.calls.2026-11-02.csv": csv_text(second),
                     "parameters.json": "{}"})

    code, out, err = run_command("import_pstn_calls", str(path), "--org", org.slug)

    lines = out.splitlines()
    assert (code, err) == (1, "")
    assert lines[0] == "PSTN: imported 2498, duplicates 0, rejected 2"
    assert lines[2].startswith("row 1001 (id r0001000): duration: ")
    assert lines[3].startswith("row 2500 (id r0002499): startDateTime: ")
    assert len(lines) == 4
    assert CallRecord.objects.filter(organization=org).count() == 2498
    # Batches of at most FILE_ROWS_PER_BATCH, and the reader never more than one batch ahead
    # of what was ingested: (batch size, rows produced when it was handed over).
    # The first pass (scan) reads every row but builds none.
    assert batches == [(BATCH, BATCH), (BATCH, 2 * BATCH), (500, 2500)]


def test_file_imports_commit_ten_thousand_rows_at_a_time(tmp_path, org, batches):
    """A file is ingested in batches of FILE_ROWS_PER_BATCH (10,000) rows, each its own
    transaction, while the API stays at Graph's 1,000."""
    load_test_deck(org)
    path = tmp_path / "calls.csv"
    path.write_text(csv_text(same_rows(12_345)))

    code, out, _err = run_command("import_pstn_calls", str(path), "--org", org.slug)

    assert code == 0 and out.splitlines()[0] == "PSTN: imported 12345, duplicates 0, rejected 0"
    assert ingest.FILE_ROWS_PER_BATCH == 10_000 and ingest.MAX_ROWS_PER_BATCH == 1000
    assert [size for size, _produced in batches] == [10_000, 2345]
    assert CallRecord.objects.filter(organization=org).count() == 12_345


def test_rejected_rows_are_counted_all_but_kept_bounded(tmp_path, org, monkeypatch):
    monkeypatch.setattr(imports, "MAX_REJECTED_KEPT", 7)
    path = tmp_path / "bad.csv"
    path.write_text(csv_text(same_rows(2300, duration=-5)))
    printed = []

    totals = imports.calls_import_file(organization=org, path=path, source="import",
                                       actor=imports.Actor.system("test"),
                                       on_rejected=printed.append)

    assert (totals.rows_total, totals.rows_read, totals.accepted) == (2300, 2300, 0)
    assert totals.rejected_count == 2300 and len(printed) == 2300
    assert [r["index"] for r in totals.rejected] == list(range(7))
    assert [r["index"] for r in printed] == list(range(2300))
    # The command still lists every rejected row (spooled to disk, not memory).
    code, out, _err = run_command("import_pstn_calls", str(path), "--org", org.slug)
    lines = out.splitlines()
    assert code == 1 and lines[0] == "PSTN: imported 0, duplicates 0, rejected 2300"
    assert len(lines) == 2302 and lines[-1].startswith("row 2300 (id r0002299): duration:")


def test_reading_a_large_zip_holds_a_block_not_the_file(tmp_path):
    """By design, counted in bytes allocated (not timed): iterating 60k rows (8 MB of CSV)
    allocates at its peak a small fraction of the file."""
    text = csv_text(same_rows(60_000))
    path = tmp_path / "big.zip"
    write_zip(path, {"PSTN.calls.csv": text})
    unzipped = len(text.encode())
    info = zipfile.ZipFile(path).getinfo("PSTN.calls.csv")
    assert unzipped > 7 * 2**20 and info.file_size / info.compress_size > 20
    del text

    for read in (lambda: sum(1 for _ in import_files.iter_rows(path)),
                 lambda: import_files.scan(path)):
        tracemalloc.start()
        try:
            assert read() == 60_000
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 2 * 2**20, peak  # the file is 8 MB unzipped


@pytest.mark.parametrize("endless", [
    "x" * (import_files.MAX_ROW_CHARS + 10),  # no line end
    '"\n",' * (import_files.MAX_ROW_CHARS // 4),  # line ends inside quotes: one row
    csv_text(same_rows(1), header=False).strip() + ",9" * import_files.MAX_ROW_CHARS,
])
def test_an_endless_csv_row_is_refused_not_read_whole(tmp_path, endless):
    path = tmp_path / "calls.csv"
    path.write_text(csv_text([]) + endless + "\r\n" + csv_text(same_rows(1), header=False))
    for read in (import_files.scan, lambda p: list(import_files.iter_rows(p))):
        with pytest.raises(FileError, match="a row is longer than 1 million characters"):
            read(path)


def test_batches_are_cut_by_characters_as_well_as_rows(tmp_path):
    rows = same_rows(10) + same_rows(5, start=10, destinationName="x" * 100_000) \
        + same_rows(10, start=15)
    path = tmp_path / "calls.csv"
    path.write_text(csv_text(rows))
    sizes = [len(b) for b in import_files.iter_batches(path, 8, max_chars=250_000)]
    # 8 rows (the count); 2 ordinary and 3 long ones (past 250,000 characters); 2 long and
    # 6 ordinary (the count); the last 4.
    assert sizes == [8, 5, 8, 4] and sum(sizes) == 25


def test_json_file_size_is_capped(tmp_path, monkeypatch):
    path = tmp_path / "calls.json"
    path.write_text(json.dumps({"value": [graph_row(f"j{i}") for i in range(50)]}))
    assert import_files.scan(path) == 50
    monkeypatch.setattr(import_files, "MAX_JSON_BYTES", path.stat().st_size - 1)
    for check in (import_files.scan, import_files.sniff):
        with pytest.raises(FileError, match="Graph JSON file may hold at most"):
            check(path)


# --- zip bombs ----------------------------------------------------------------------------

BOMB_MEMBER = "PSTN.calls.2026-11-02.csv"
BOMB_BYTES = 64 * 2**20


def _bomb(path) -> zipfile.ZipInfo:
    """A valid header, then 64 MB of filler that deflates ~1000:1."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open(BOMB_MEMBER, "w") as member:
            member.write(csv_text([]).encode())
            block = b"0" * 2**20
            for _ in range(BOMB_BYTES // len(block)):
                member.write(block)
        return archive.getinfo(BOMB_MEMBER)


def _forge_size(path, info: zipfile.ZipInfo, declared: int) -> None:
    """Rewrite the member's uncompressed size in its local header and in the central
    directory, as a hostile sender would."""
    data = bytearray(path.read_bytes())
    # Local file header: the uncompressed size is at offset 22.
    struct.pack_into("<I", data, info.header_offset + 22, declared)
    # Central directory entry: signature PK\1\2, uncompressed size at offset 24.
    central = data.rindex(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, declared)
    path.write_bytes(bytes(data))


def test_zip_bomb_is_refused_from_its_headers_naming_the_member(tmp_path, org):
    path = tmp_path / "bomb.zip"
    info = _bomb(path)
    assert info.file_size / info.compress_size > 500
    for check in (import_files.sniff, import_files.scan):
        with pytest.raises(FileError, match=rf"^{BOMB_MEMBER}: compressed more than 100:1"):
            check(path)
    code, out, err = run_command("import_pstn_calls", str(path), "--org", org.slug)
    assert code == 2 and f"{BOMB_MEMBER}: compressed more than 100:1" in err
    assert CallRecord.objects.filter(organization=org).count() == 0


def test_zip_bomb_with_forged_sizes_is_refused_after_reading_what_it_declared(tmp_path, org):
    path = tmp_path / "forged.zip"
    info = _bomb(path)
    _forge_size(path, info, 4096)  # declares 4 KB: a plausible ratio
    assert zipfile.ZipFile(path).getinfo(BOMB_MEMBER).file_size == 4096
    tracemalloc.start()
    try:
        with pytest.raises(FileError, match=rf"^{BOMB_MEMBER}: damaged zip: Bad CRC-32"):
            import_files.scan(path)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 2**20, peak  # it stopped near the 4 KB declared, not at 64 MB
    code, _out, err = run_command("import_pstn_calls", str(path), "--org", org.slug)
    assert code == 2 and BOMB_MEMBER in err
    assert CallRecord.objects.filter(organization=org).count() == 0


@pytest.mark.parametrize("limit, message", [
    ("MAX_MEMBER_BYTES", f"{BOMB_MEMBER}: unpacks to more than"),
    ("MAX_UNZIPPED_BYTES", "the zip unpacks to more than"),
    ("MAX_RATIO", f"{BOMB_MEMBER}: compressed more than"),
])
def test_limits_hold_on_the_bytes_read_whatever_the_headers_declare(monkeypatch, limit,
                                                                    message):
    """The counting reader under every zip member, given headers that declare little."""
    content = csv_text(same_rows(20_000)).encode()  # ~3.7 MB, ~60:1
    info = zipfile.ZipInfo(BOMB_MEMBER)
    info.file_size, info.compress_size = 1000, 60_000
    value = {"MAX_MEMBER_BYTES": 2**20, "MAX_UNZIPPED_BYTES": 2**20, "MAX_RATIO": 10}[limit]
    monkeypatch.setattr(import_files, limit, value)
    capped = io.BufferedReader(import_files._Capped(io.BytesIO(content), info,
                                                    import_files._Budget()))
    with pytest.raises(FileError, match=f"^{message}"):
        while capped.read(65536):
            pass


def test_zip_with_too_many_entries_is_refused_before_its_directory_is_read(tmp_path):
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for n in range(import_files.MAX_ENTRIES + 1):
            archive.writestr(f"{n}.txt", "")
    with pytest.raises(FileError, match="holds more than"):
        import_files.sniff(path)


def test_real_exports_pass_the_ratio_check(tmp_path):
    """Rows that differ only by id compress ~60:1; a whole CSV is checked above 1 MB."""
    path = tmp_path / "export.zip"
    write_zip(path, {"PSTN.calls.csv": csv_text(same_rows(12_000))})
    info = zipfile.ZipFile(path).getinfo("PSTN.calls.csv")
    assert info.file_size > import_files.RATIO_FLOOR
    assert 20 < info.file_size / info.compress_size < import_files.MAX_RATIO
    assert import_files.scan(path) == 12_000


# --- the upload page's background job -----------------------------------------------------


def upload(client, content: bytes, name: str):
    return client.post(reverse("reports_pstn_import"),
                       {"file": SimpleUploadedFile(name, content)})


def test_upload_is_imported_by_a_job_with_progress_then_its_file_is_deleted(
        client_for, make_person, org, import_dir, batches, monkeypatch,
        django_capture_on_commit_callbacks):
    monkeypatch.setattr(ingest, "FILE_ROWS_PER_BATCH", BATCH)  # several batches, small file
    load_test_deck(org)
    admin = client_for(make_person("billing_administrator"))
    rows = same_rows(2100)
    rows[2050]["duration"] = "long"
    seen_progress = []
    real_ingest = services.calls_ingest

    def watch(**kwargs):  # what the page would show while this batch runs
        seen_progress.append(ImportJob.objects.values_list("status", "rows_total",
                                                           "rows_read").get())
        return real_ingest(**kwargs)

    monkeypatch.setattr(services, "calls_ingest", watch)
    with django_capture_on_commit_callbacks(execute=True):
        posted = upload(admin, csv_text(rows).encode(), "PSTN.calls.csv")

    assert posted.status_code == 302
    job = ImportJob.objects.get()
    assert posted["Location"] == f"{reverse('reports_pstn_import')}?job={job.pk}"
    assert seen_progress == [("running", 2100, 0), ("running", 2100, 1000),
                             ("running", 2100, 2000)]
    assert (job.status, job.rows_read, job.accepted, job.rejected_count) == (
        ImportStatus.DONE, 2100, 2099, 1)
    assert job.rejected == [{"index": 2050, "id": "r0002050", "errors": {
        "duration": "expected a whole number of seconds"}}]
    assert job.file_path == "" and not any(p.is_file() for p in import_dir.rglob("*"))
    assert CallRecord.objects.filter(organization=org).count() == 2099

    page = admin.get(posted["Location"])
    assert page.status_code == 200 and page.context["job"] == job
    assert b"Imported 2099, duplicates 0, rejected 1." in page.content
    assert b"r0002050" in page.content and b"hx-trigger" not in page.content


def test_a_running_job_is_polled_and_shows_its_progress(client_for, make_person, org,
                                                        other_org):
    admin = client_for(make_person("billing_administrator"))
    job = ImportJob.objects.create(organization=org, file_name="calls.zip",
                                   status=ImportStatus.RUNNING, rows_total=4000,
                                   rows_read=1000)
    url = f"{reverse('reports_pstn_import')}?job={job.pk}"
    page = admin.get(url)
    assert b'hx-trigger="every 2s"' in page.content and b"1000 of 4000 rows" in page.content
    assert b'value="25"' in page.content and b"Refresh" in page.content  # works without JS
    fragment = admin.get(url, HTTP_HX_REQUEST="true")
    assert fragment.content.lstrip().startswith(b'<div id="import-job"')
    assert b"<html" not in fragment.content
    theirs = ImportJob.objects.create(organization=other_org, file_name="theirs.csv")
    for job_param in (theirs.pk, "abc", "9" * 30):
        assert admin.get(reverse("reports_pstn_import"), {"job": job_param}).status_code == 404


def test_a_file_unreadable_past_the_first_block_fails_the_job_and_imports_nothing(
        client_for, make_person, org, import_dir, django_capture_on_commit_callbacks):
    admin = client_for(make_person("billing_administrator"))
    content = csv_text(same_rows(1500)).encode() + b"\xff\xfe broken\r\n"
    assert len(content) > import_files.READ_BLOCK  # the request's quick check passes
    with django_capture_on_commit_callbacks(execute=True):
        posted = upload(admin, content, "calls.csv")
    assert posted.status_code == 302
    job = ImportJob.objects.get()
    assert job.status == ImportStatus.FAILED and "not UTF-8" in job.error
    assert CallRecord.objects.filter(organization=org).count() == 0
    assert not any(p.is_file() for p in import_dir.rglob("*"))
    page = admin.get(posted["Location"])
    assert b"Nothing was imported." in page.content


def test_a_refused_upload_is_a_form_error_and_keeps_no_file(client_for, make_person, org,
                                                            import_dir, tmp_path):
    admin = client_for(make_person("billing_administrator"))
    bomb = tmp_path / "bomb.zip"
    _bomb(bomb)
    page = upload(admin, bomb.read_bytes(), "bomb.zip")
    assert page.status_code == 400
    assert f"{BOMB_MEMBER}: compressed more than" in page.context["form"].errors["file"][0]
    assert not ImportJob.objects.exists()
    assert not any(p.is_file() for p in import_dir.rglob("*"))


def test_kept_rejected_rows_are_short_and_storable_as_json():
    item = {"index": 3, "id": "x\udfff" + "y" * 100_000,
            "errors": {"id": "at most 64 characters", "callId\x00": "z" * 100_000}}
    kept = imports._kept(item)
    text = json.dumps(kept, ensure_ascii=False)
    text.encode("utf-8")  # no lone surrogate left
    assert "\x00" not in text and len(text) < 2 * imports.KEPT_CHARS + 200
    assert kept["id"].startswith("x\\udfffyyy") and kept["index"] == 3


def test_the_sweep_requeues_lost_jobs_fails_vanished_ones_and_deletes_orphan_files(
        org, admin_person, monkeypatch):
    import os
    from datetime import timedelta

    from django.utils import timezone

    from usage import imports
    from usage.models import ImportJob, ImportStatus

    now = timezone.now()
    root = imports.import_dir() / str(org.pk)
    root.mkdir(parents=True)

    def job(status, age, name, **fields):
        (root / name).write_bytes(b"x")
        return ImportJob.objects.create(
            organization=org, requester=admin_person, file_name=name, status=status,
            file_path=f"{org.pk}/{name}", created_at=now - age, **fields)

    lost = job(ImportStatus.QUEUED, timedelta(minutes=10), "lost.upload")
    fresh = job(ImportStatus.QUEUED, timedelta(minutes=1), "fresh.upload")
    vanished = job(ImportStatus.RUNNING, timedelta(hours=13), "vanished.upload",
                   started_at=now - timedelta(hours=13))
    working = job(ImportStatus.RUNNING, timedelta(hours=1), "working.upload",
                  started_at=now - timedelta(hours=1))
    orphan, young_orphan = root / "orphan.upload", root / "young.upload"
    orphan.write_bytes(b"x")
    young_orphan.write_bytes(b"x")
    old = (now - timedelta(days=2)).timestamp()
    for path in root.iterdir():
        if path != young_orphan:
            os.utime(path, (old, old))
    enqueued = []
    monkeypatch.setattr(imports, "enqueue", lambda name, job_id: enqueued.append(job_id))

    assert imports.import_jobs_sweep(now=now) == {"requeued": 1, "failed": 1, "removed": 1}
    assert enqueued == [lost.pk]
    vanished.refresh_from_db()
    assert (vanished.status, vanished.file_path) == (ImportStatus.FAILED, "")
    assert "upload the file again" in vanished.error
    assert {p.name for p in root.iterdir()} == {
        "lost.upload", "fresh.upload", "working.upload", "young.upload"}
    for kept in (fresh, working):
        kept.refresh_from_db()
        assert kept.is_active
