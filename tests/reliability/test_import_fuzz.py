"""Any bytes given to an importer get a clear answer: a per-file error (nothing stored) or
per-row results (every rejected row says which field and why), never an unexpected
exception, and never rows stored that the result does not count.

Importers: `import_pstn_calls` (Microsoft's export CSV, the export zip, Graph JSON; the
upload page runs the same code), the people / license CSV (credits.people_import) and the
rate deck (usage.decks + rate_deck_load).
"""

import csv
import io
import json
import zipfile

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credits import products as P
from credits.models import Person
from credits.people_import import import_csv
from credits.platform.roles import ROLES
from credits.platform.services import Actor, ServiceError
from tests.factories import TEST_DECK_CSV, funded_account, graph_row, load_test_deck
from usage import decks
from usage.ingest import EXPORT_COLUMNS, EXPORT_HEADER
from usage.models import CallRecord, Rate
from usage.services import rate_deck_load

pytestmark = pytest.mark.django_db

EXAMPLES = 120
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


class Tally:
    """Counts the cases of one test and any that ended in an unexpected exception."""

    def __init__(self, reliability):
        self.reliability, self.cases, self.errors = reliability, 0, 0

    def run(self, fn, *args):
        self.cases += 1
        try:
            return fn(*args)
        except AssertionError:
            raise
        except BaseException:
            self.errors += 1
            raise

    def close(self):
        self.reliability.fuzz(self.cases, server_errors=self.errors)


@pytest.fixture
def tally(reliability):
    t = Tally(reliability)
    yield t
    t.close()


# --- strategies -----------------------------------------------------------------------------

# Text as an attacker or a broken exporter writes it: NUL, control characters, letters that
# grow when upper-cased ("ß"), other scripts' digits ("١٢"), markup, formulas.
NASTY = st.sampled_from(["", " ", "\x00", "ßa", "ǆ", "١٢", "²", "NaN", "-1", "1e400",
                         "9" * 40, "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00",
                         "<script>alert(1)</script>", "=1+1", "\u202e", "x" * 300])
CELL = st.one_of(NASTY, st.text(max_size=30))


def _valid_graph(i: int) -> dict:
    return graph_row(f"fz-{i}", startDateTime="2026-11-02T09:00:00Z",
                     endDateTime="2026-11-02T09:01:00Z", calleeNumber="+33123456789")


@st.composite
def graph_rows(draw):
    row = _valid_graph(draw(st.integers(0, 30)))
    json_value = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | CELL,
        lambda kids: st.lists(kids, max_size=3) | st.dictionaries(CELL, kids, max_size=3),
        max_leaves=5)
    for key in draw(st.lists(st.sampled_from(sorted(row)), max_size=4, unique=True)):
        row[key] = draw(st.one_of(CELL, json_value))
    if draw(st.booleans()):
        row.pop(draw(st.sampled_from(sorted(row))))
    return row


def _export_csv(rows: list[dict], header=EXPORT_HEADER) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if row.get(f) is None else str(row.get(f))
                         for _c, f in EXPORT_COLUMNS])
    return out.getvalue()


@st.composite
def export_csv(draw) -> bytes:
    rows = draw(st.lists(graph_rows(), max_size=6))
    header = list(EXPORT_HEADER)
    if draw(st.integers(0, 4)) == 0:
        header = draw(st.lists(CELL, max_size=len(header)))
    text = _export_csv(rows, header)
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(CELL) + text[cut:]
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]))
    return text.encode(encoding, errors="replace")


@st.composite
def graph_json(draw) -> bytes:
    rows = draw(st.lists(graph_rows(), max_size=6))
    shape = draw(st.integers(0, 3))
    doc = ({"value": rows} if shape == 0 else rows if shape == 1
           else [{"value": rows}] if shape == 2 else {"value": draw(CELL)})
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()), default=str)
    if draw(st.integers(0, 5)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    if draw(st.integers(0, 10)) == 0:
        text = "[" * 100_000  # deeper than the JSON parser's recursion
    return text.encode()


@st.composite
def export_zip(draw) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for n in range(draw(st.integers(0, 3))):
            name = draw(st.sampled_from([f"PSTN.calls.{n}.csv", f"x{n}.txt", f"../{n}.csv"]))
            content = draw(st.one_of(export_csv(), st.binary(max_size=200)))
            method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
            archive.writestr(name, content, compress_type=method)
    data = buffer.getvalue()
    if draw(st.booleans()):  # damaged in transit: a byte flipped or the end cut off
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        data = (data[:at] + bytes([(data[at] ^ 0xFF) if data else 0]) + data[at + 1:]
                if draw(st.booleans()) else data[:at])
    return data


PSTN_FILES = st.one_of(st.binary(max_size=400), export_csv(), graph_json(), export_zip())


# --- PSTN calls -----------------------------------------------------------------------------


@pytest.fixture
def rated_org(org):
    load_test_deck(org)
    funded_account(org, "1000.00")
    return org


def _import_pstn(tmp_path, org, data: bytes, capsys) -> None:
    path = tmp_path / "calls.bin"
    path.write_bytes(data)
    before = CallRecord.objects.filter(organization=org).count()
    code = 0
    try:
        call_command("import_pstn_calls", str(path), "--org", org.slug)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    stored = CallRecord.objects.filter(organization=org).count() - before
    if code == 2:
        assert err.startswith(f"cannot read {path}: ") and len(err.strip()) > len(str(path)) + 14
        assert stored == 0, "a file that could not be read stored calls"
        return
    summary = out.splitlines()[0]
    assert summary.startswith("PSTN: imported "), out
    assert out.splitlines()[1].startswith("Direct Routing: imported "), out
    numbers = [int(part.split()[-1]) for part in summary.split(", ")]
    imported, _duplicates, rejected = numbers
    dr_rejected = int(out.splitlines()[1].split()[-1])
    assert stored == imported, f"{stored} stored but the result says {imported}"
    reasons = out.splitlines()[2:]
    assert len(reasons) == rejected + dr_rejected and all(": " in line for line in reasons)
    assert code == (1 if rejected or dr_rejected else 0)


@FUZZ
@given(data=PSTN_FILES)
def test_pstn_import_of_any_bytes_is_a_file_error_or_per_row_results(
        tmp_path_factory, rated_org, capsys, tally, data):
    tally.run(_import_pstn, tmp_path_factory.mktemp("f"), rated_org, data, capsys)


def test_pstn_import_of_nasty_fields_names_the_field(tmp_path, rated_org, capsys):
    rows = [graph_row("nul", userDisplayName="a\x00b"), graph_row("ss", usageCountryCode="ßa"),
            graph_row("old", startDateTime="0001-01-01T00:00:00+05:00"),
            graph_row("late", startDateTime="2026-11-02T09:00:00Z",
                      endDateTime="9999-12-31T23:59:59-05:00"),
            graph_row("sup", duration="²"), graph_row("ok")]
    path = tmp_path / "calls.json"
    path.write_text(json.dumps({"value": rows}))
    with pytest.raises(SystemExit) as exit_:
        call_command("import_pstn_calls", str(path), "--org", rated_org.slug)
    out = capsys.readouterr().out
    assert exit_.value.code == 1
    assert out.startswith("PSTN: imported 1, duplicates 0, rejected 5")
    for needle in ("(id nul): userDisplayName:", "(id ss): usageCountryCode:",
                   "(id old): startDateTime:", "(id late): endDateTime:",
                   "(id sup): duration: expected a whole number"):
        assert needle in out, out


# --- people / license CSV ---------------------------------------------------------------------

ROLE_NAMES = [r.name for r in ROLES[:4]] + ["Not A Role"]
PEOPLE_HEADER = "userPrincipalName,displayName,email,usageLocation,preferredLanguage,roles," \
                "licenses"


@st.composite
def people_csv(draw) -> bytes:
    lines = [draw(st.sampled_from([PEOPLE_HEADER, "userPrincipalName,sku,action", "", "x"]))]
    for _ in range(draw(st.integers(0, 5))):
        n = draw(st.integers(0, 9))
        cells = [
            draw(st.one_of(st.just(f"p{n}@contoso.example"), CELL)),
            draw(st.one_of(st.just(f"Person {n}"), CELL)),
            draw(st.one_of(st.just(f"p{n}@contoso.example"), st.just("not-an-email"), CELL)),
            draw(st.one_of(st.sampled_from(["US", "FR", "ßa", "1A"]), CELL)),
            draw(st.sampled_from(["en", "fr", "de", ""])),
            ";".join(draw(st.lists(st.sampled_from(ROLE_NAMES), max_size=2))),
            ";".join(draw(st.lists(st.sampled_from([*P.SKUS, "NOPE"]), max_size=3))),
        ]
        out = io.StringIO()
        csv.writer(out, delimiter=draw(st.sampled_from([",", ";", "\t"]))).writerow(cells)
        lines.append(out.getvalue().rstrip("\r\n"))
    text = "\n".join(lines)
    return text.encode(draw(st.sampled_from(["utf-8", "cp1252", "utf-16"])), errors="replace")


def _import_people(org, data: bytes, may_create: bool) -> None:
    before = set(Person.objects.filter(organization=org).values_list("upn", flat=True))
    report = import_csv(organization=org, data=data, actor=Actor.system("fuzz"),
                        grow_seats=True, may_create_people=may_create)
    after = set(Person.objects.filter(organization=org).values_list("upn", flat=True))
    if report.fatal:
        assert isinstance(report.fatal, str) and report.fatal.strip()
        assert after == before and report.rows == []
        return
    for row in report.rows:
        assert row.message and (row.ok or row.code), row
    created = after - before
    taken = {row.upn.lower() for row in report.rows if row.ok}
    assert {upn.lower() for upn in created} <= taken, "people created by rows not reported"
    if not may_create:
        assert not created


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), people_csv()), may_create=st.booleans())
def test_people_import_of_any_bytes_is_a_file_error_or_per_row_results(org, tally, data,
                                                                       may_create):
    tally.run(_import_people, org, data, may_create)


# --- rate deck --------------------------------------------------------------------------------


@st.composite
def deck_csv(draw) -> bytes:
    good = TEST_DECK_CSV.splitlines()
    lines = [good[0] if draw(st.integers(0, 5)) else ",".join(draw(st.lists(CELL, max_size=4)))]
    for _ in range(draw(st.integers(0, 6))):
        cells = draw(st.sampled_from(good[1:])).split(",")
        for _ in range(draw(st.integers(0, 3))):
            cells[draw(st.integers(0, len(cells) - 1))] = draw(CELL)
        out = io.StringIO()
        csv.writer(out).writerow(cells)
        lines.append(out.getvalue().rstrip("\r\n"))
    return "\n".join(lines).encode(draw(st.sampled_from(["utf-8", "utf-16"])), errors="replace")


def _load_deck(org, data: bytes) -> None:
    before = Rate.objects.filter(organization=org).count()
    try:
        rates, errors = decks.parse_deck(data, org.currency)
    except decks.DeckError as exc:
        assert str(exc).strip()
        return
    for line, reason in errors:
        assert line >= 2 and reason.split(":")[0] in decks.COLUMNS + ["too many values"] or \
            reason.startswith("same direction"), (line, reason)
    try:
        loaded = rate_deck_load(organization=org, rates=rates, actor=Actor.system("fuzz"))
    except ServiceError as exc:
        assert exc.message and Rate.objects.filter(organization=org).count() == before
        return
    assert loaded == len(rates) == Rate.objects.filter(organization=org).count()


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), deck_csv()))
def test_rate_deck_of_any_bytes_is_a_file_error_or_per_line_errors(org, tally, data):
    tally.run(_load_deck, org, data)


# --- the upload pages: the same importers behind a form ----------------------------------------

UPLOADS = [("/reports/pstn-usage/import/", {}), ("/users/import/", {}),
           ("/settings/rates/upload/", {"skip_bad_rows": "on"})]


@settings(max_examples=25, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(data=st.one_of(st.binary(max_size=300), export_csv(), graph_json(), people_csv(),
                      deck_csv()), which=st.integers(0, len(UPLOADS) - 1))
def test_upload_pages_answer_any_file_without_a_server_error(admin_client, rated_org, tally,
                                                             data, which):
    from django.core.files.uploadedfile import SimpleUploadedFile

    url, extra = UPLOADS[which]

    def post():
        upload = SimpleUploadedFile("upload.csv", data, content_type="text/csv")
        response = admin_client.post(url, {"file": upload, **extra})
        assert response.status_code in (200, 302, 400), (url, response.status_code)

    tally.run(post)
