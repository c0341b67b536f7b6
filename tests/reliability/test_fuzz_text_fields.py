"""A lone UTF-16 surrogate, a NUL or an oversized value in any text field of any importer
or API body rejects only the row that holds it, with an error naming the field, and the
other rows are stored; in a query parameter it never makes a server error.

Every field is poisoned in every example: a batch holds two valid rows and one row per
field, each bad in that field only (fuzz_classes.poisoned puts the bad characters into an
otherwise valid value). Fields, from the code:
- calls: usage.ingest (`_TEXT_FIELDS`, EXPORT_COLUMNS, and id, callType, the codes, times,
  duration and charges), through POST /api/v1/pstn-calls, `import_pstn_calls` (Graph JSON,
  the export CSV, the export zip) and the upload page (Reports > PSTN usage > Import);
- people: the columns of credits.people_import's people CSV, through `import_csv`,
  `import_people` and the Users upload page;
- rate deck: usage.decks.COLUMNS, through `parse_deck` + `rate_deck_load`, `load_rates`
  and the Settings > Rates upload page;
- POST /api/v1/calls/authorize: the fields of usage.api.AuthorizeIn.

In a CSV file a lone surrogate is written as UTF-8 encodes it when surrogates pass
(ED A0 80 .. ED BF BF, "WTF-8"): that is what a broken exporter writes.
"""

import csv
import io
import json
import zipfile
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from credits.models import Person
from credits.people_import import import_csv
from credits.platform.services import Actor
from tests.factories import (
    PersonFactory,
    funded_account,
    give_licenses,
    graph_row,
    load_test_deck,
)
from usage import decks
from usage.api import AuthorizeIn
from usage.import_files import iter_rows
from usage.ingest import _TEXT_FIELDS, EXPORT_COLUMNS
from usage.models import CallRecord, Export, Rate
from usage.services import api_token_create, calls_ingest, rate_deck_load

from .fuzz_classes import (
    BAD_CHARS,
    CSV_FIELD_LIMIT,
    NUL,
    Tally,
    assert_api_error,
    export_csv_text,
    fuzz_settings,
    has_bad_char,
    oversized,
    poisoned,
    rolled_back,
)

pytestmark = pytest.mark.django_db

CLASSES = ["nul", "surrogate", "oversized"]


@pytest.fixture
def tally(reliability):
    t = Tally(reliability)
    yield t
    t.close()


@pytest.fixture
def rated_org(org):
    load_test_deck(org)
    funded_account(org, "1000.00")
    return org


@pytest.fixture
def api_client(rated_org):
    raw = api_token_create(organization=rated_org, name="fuzz", actor=Actor.system("t"))[1]
    cache.clear()  # the rate-limit windows of earlier tests
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def rows_from_file(name: str, content: bytes) -> list:
    """Every row of a file held in memory, through the importers' streaming reader."""
    return list(iter_rows(io.BytesIO(content)))


def _bad_values(kind: str, valid: dict[str, str], limits: dict[str, int]):
    """{field: bad value} for every field of `valid` (every field that has a limit, for
    the oversized class)."""
    if kind in BAD_CHARS:
        return st.fixed_dictionaries({f: poisoned(v, BAD_CHARS[kind]) for f, v in valid.items()})
    return st.fixed_dictionaries({f: oversized(v, limits[f]) for f, v in valid.items()
                                  if f in limits})


def _names(text: str) -> str:
    return "".join(ch for ch in str(text).lower() if ch.isalnum())


# --- PSTN calls -------------------------------------------------------------------------------


def valid_call(graph_id: str) -> dict[str, str]:
    """A Graph pstnCallLogRow that is taken as it is, with every field a non-empty string
    (so that the same row reads the same from JSON and from the export CSV)."""
    row = graph_row(graph_id, userId="4a1c9e0b-5d1e-4f6a-9b7c-0d2e3f4a5b6c",
                    userPrincipalName="dom.user@contoso-test.example",
                    userDisplayName="Dom User", conferenceId="conf-1",
                    destinationContext="International", calleeNumber="+33123456789",
                    startDateTime="2026-11-02T09:00:00Z", endDateTime="2026-11-02T09:01:00Z",
                    duration="60", charge="0.0", connectionCharge="0.0")
    return {name: str(value) for name, value in row.items()}


CALL_FIELDS = sorted(valid_call("x"))
EXPORT_FIELDS = [field for _column, field in EXPORT_COLUMNS]
CALL_TEXT_LIMITS = {**_TEXT_FIELDS, "id": 64, "callType": 32}
GOOD_IDS = ("good-a", "good-b")


def _call_batch(bad: dict[str, str], fields) -> tuple[list[dict], dict[int, str]]:
    """[good row, one row per bad field, good row] and {row index: its bad field}."""
    rows, where = [valid_call(GOOD_IDS[0])], {}
    for field in fields:
        if field not in bad:
            continue
        row = valid_call(f"bad-{field}")
        row[field] = bad[field]
        where[len(rows)] = field
        rows.append(row)
    rows.append(valid_call(GOOD_IDS[1]))
    return rows, where


def _call_problems(rejected: list[dict], where: dict[int, str], rows: list[dict]) -> list[str]:
    """What is wrong with the rejections, one line per bad field (empty when right)."""
    problems = []
    by_index = {item["index"]: item for item in rejected}
    for index, field in where.items():
        value = rows[index][field]
        item = by_index.get(index)
        if item is None:
            problems.append(f"{field}={value!r}: the row was taken")
        elif field not in item["errors"]:
            problems.append(f"{field}={value!r}: rejected for {item['errors']!r}, which does "
                            f"not name {field}")
        elif has_bad_char(item["errors"][field]):
            problems.append(f"{field}={value!r}: the reason repeats the bad character: "
                            f"{item['errors'][field]!r}")
    for index in sorted(set(by_index) - set(where)):
        problems.append(f"good row {index} rejected: {by_index[index]['errors']!r}")
    return problems


def _stored_problems(org, before: int) -> list[str]:
    stored = set(CallRecord.objects.filter(organization=org).values_list("graph_id", flat=True))
    problems = [f"good row {gid} not stored" for gid in GOOD_IDS if gid not in stored]
    if len(stored) - before != len(GOOD_IDS):
        problems.append(f"{len(stored) - before} rows stored, expected the {len(GOOD_IDS)} "
                        "good ones")
    return problems


def _call_file(fmt: str, rows: list[dict]) -> tuple[str, bytes]:
    if fmt == "json":
        return "calls.json", json.dumps({"value": rows}).encode()
    data = export_csv_text(rows).encode("utf-8", "surrogatepass")
    if fmt == "csv":
        return "PSTN.calls.csv", data
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("PSTN.calls.0.csv", data)
    return "PSTN.calls.zip", buffer.getvalue()


def _fields_for(fmt: str) -> list[str]:
    return CALL_FIELDS if fmt in ("json", "api") else EXPORT_FIELDS


@pytest.mark.parametrize("kind", CLASSES)
def test_pstn_api_rejects_only_the_row_with_the_bad_field(api_client, rated_org, tally, kind):
    @fuzz_settings(6)
    @given(bad=_bad_values(kind, valid_call("bad"), CALL_TEXT_LIMITS))
    def probe(bad):
        rows, where = _call_batch(bad, CALL_FIELDS)

        def post():
            before = CallRecord.objects.filter(organization=rated_org).count()
            response = tally.run(api_client.post, "/api/v1/pstn-calls",
                                 data=json.dumps({"value": rows}),
                                 content_type="application/json")
            assert response.status_code == 200, (kind, response.status_code,
                                                 response.content[:300])
            body = response.json()
            problems = _call_problems(body["rejected"], where, rows)
            problems += _stored_problems(rated_org, before)
            if body["accepted"] != len(GOOD_IDS):
                problems.append(f"accepted {body['accepted']}, expected {len(GOOD_IDS)}")
            assert not problems, "\n".join(problems)

        rolled_back(post)

    probe()


def _import_calls(path, org, capsys) -> tuple[int, str, str]:
    code = 0
    try:
        call_command("import_pstn_calls", str(path), "--org", org.slug)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("kind", CLASSES)
@pytest.mark.parametrize("fmt", ["json", "csv", "zip"])
def test_pstn_import_command_rejects_only_the_row_with_the_bad_field(
        tmp_path, rated_org, capsys, tally, fmt, kind):
    fields = _fields_for(fmt)
    valid = {f: v for f, v in valid_call("bad").items() if f in fields}

    @fuzz_settings(3)
    @given(bad=_bad_values(kind, valid, CALL_TEXT_LIMITS))
    def probe(bad):
        rows, where = _call_batch(bad, fields)
        name, data = _call_file(fmt, rows)
        path = tmp_path / name
        path.write_bytes(data)

        def run():
            before = CallRecord.objects.filter(organization=rated_org).count()
            code, out, err = tally.run(_import_calls, path, rated_org, capsys)
            assert code == 1 and out.startswith(
                f"PSTN: imported {len(GOOD_IDS)}, duplicates 0, rejected {len(where)}"), (
                fmt, kind, code, out[:500], err[:500])
            lines = {line.split(" ", 2)[1]: line for line in out.splitlines()[2:]}
            problems = []
            for index, field in where.items():
                line = lines.get(str(index + 1), "")
                reasons = line.split("): ", 1)[-1].split("; ")
                if not any(r.startswith(f"{field}: ") for r in reasons):
                    problems.append(f"{field}={rows[index][field]!r}: output {line!r} does "
                                    f"not name {field}")
            problems += _stored_problems(rated_org, before)
            assert not problems, "\n".join(problems)

        rolled_back(run)

    probe()


@pytest.mark.parametrize("kind", CLASSES)
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_pstn_upload_page_rejects_only_the_row_with_the_bad_field(
        admin_client, rated_org, django_capture_on_commit_callbacks, tally, fmt, kind):
    fields = _fields_for(fmt)
    valid = {f: v for f, v in valid_call("bad").items() if f in fields}

    @fuzz_settings(2)
    @given(bad=_bad_values(kind, valid, CALL_TEXT_LIMITS))
    def probe(bad):
        rows, where = _call_batch(bad, fields)
        name, data = _call_file(fmt, rows)

        def upload():
            before = CallRecord.objects.filter(organization=rated_org).count()
            # The page may import in the background once the upload commits: run it.
            with django_capture_on_commit_callbacks(execute=True):
                response = tally.run(admin_client.post, "/reports/pstn-usage/import/",
                                     {"file": SimpleUploadedFile(name, data)})
            if response.status_code == 302:  # to the import's own page
                response = tally.run(admin_client.get, response.url)
            assert response.status_code == 200, (fmt, kind, response.status_code,
                                                 response.context and
                                                 response.context["form"].errors)
            result = response.context["result"]
            assert result is not None, (response.context["form"].errors,
                                        response.context.get("job"))
            problems = _call_problems(result.rejected, where, rows)
            problems += _stored_problems(rated_org, before)
            assert not problems, "\n".join(problems)

        rolled_back(upload)

    probe()


def test_the_valid_call_row_is_taken_on_every_path(rated_org):
    """The fuzz above is sharp: its valid row is taken as it is, from JSON and from CSV."""
    result = calls_ingest(organization=rated_org, rows=[valid_call("a")], source="api")
    assert (result.accepted, result.rejected) == (1, [])

    for fmt in ("csv", "zip"):
        rows = rows_from_file(*_call_file(fmt, [valid_call(f"{fmt}-1")]))
        result = calls_ingest(organization=rated_org, rows=rows, source="import")
        assert (result.accepted, result.rejected) == (1, []), fmt


# --- people CSV ---------------------------------------------------------------------------------

PEOPLE_COLUMNS = ["userPrincipalName", "displayName", "email", "usageLocation",
                  "preferredLanguage", "roles", "licenses"]
# The words a reason may name a column with.
PEOPLE_NAMES = {"userPrincipalName": ("userprincipalname", "upn"),
                "displayName": ("displayname",), "email": ("email",),
                "usageLocation": ("usagelocation",),
                "preferredLanguage": ("preferredlanguage", "language"),
                "roles": ("role",), "licenses": ("licen", "product")}
# Limits of the directory's columns (credits.models.Person).
PEOPLE_LIMITS = {"userPrincipalName": 128, "displayName": 128, "email": 254,
                 "usageLocation": 2}


def valid_person(key: str) -> dict[str, str]:
    upn = f"{key}@contoso-test.example"
    return {"userPrincipalName": upn, "displayName": f"Fuzz {key}", "email": upn,
            "usageLocation": "US", "preferredLanguage": "en", "roles": "", "licenses": ""}


# What the bad characters go into for the columns a good row leaves empty.
PEOPLE_BASE = {**valid_person("bad"), "roles": "Global Reader", "licenses": "MCOEV"}


def _people_batch(bad: dict[str, str]) -> tuple[str, dict[int, str], list[str]]:
    """(CSV text, {line: its bad column}, the good rows' UPNs)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PEOPLE_COLUMNS)
    good = ["good-a", "good-b"]
    rows = [valid_person(good[0])]
    where = {}
    for column in PEOPLE_COLUMNS:
        if column in bad:
            row = valid_person(f"bad-{column.lower()}")
            row[column] = bad[column]
            where[len(rows) + 2] = column  # line 1 is the header
            rows.append(row)
    rows.append(valid_person(good[1]))
    for row in rows:
        writer.writerow([row[c] for c in PEOPLE_COLUMNS])
    return out.getvalue(), where, [valid_person(g)["userPrincipalName"] for g in good]


def _people_problems(report, where, bad, good_upns, org, before: int) -> list[str]:
    if report.fatal:
        return [f"the whole file was refused: {report.fatal!r} (bad values: {bad!r})"]
    problems = []
    by_line = {row.line: row for row in report.rows}
    for line, column in where.items():
        row = by_line.get(line)
        value = bad[column]
        if row is None:
            problems.append(f"{column}={value!r}: line {line} has no result")
        elif row.ok:
            problems.append(f"{column}={value!r}: the row was taken ({row.message!r})")
        elif not any(n in _names(row.message) for n in PEOPLE_NAMES[column]):
            problems.append(f"{column}={value!r}: rejected with {row.message!r}, which does "
                            f"not name {column}")
        elif has_bad_char(row.message):
            problems.append(f"{column}={value!r}: the reason repeats the bad character: "
                            f"{row.message!r}")
    for row in report.rows:
        if row.line not in where and not row.ok:
            problems.append(f"good line {row.line} rejected: {row.message!r}")
    people = set(Person.objects.filter(organization=org).values_list("upn", flat=True))
    problems += [f"good person {upn} not stored" for upn in good_upns if upn not in people]
    if len(people) - before != len(good_upns):
        problems.append(f"{len(people) - before} people stored, expected {len(good_upns)}")
    return problems


def _people_count(org) -> int:
    return Person.objects.filter(organization=org).count()


@pytest.mark.parametrize("data_as", ["bytes", "text"])
@pytest.mark.parametrize("kind", CLASSES)
def test_people_import_rejects_only_the_row_with_the_bad_field(org, tally, kind, data_as):
    @fuzz_settings(3)
    @given(bad=_bad_values(kind, PEOPLE_BASE, PEOPLE_LIMITS))
    def probe(bad):
        text, where, good = _people_batch(bad)
        # As a broken exporter writes a lone surrogate: its UTF-8 form, which the importer
        # reads back as that surrogate.
        data = text.encode("utf-8", "surrogatepass") if data_as == "bytes" else text

        def run():
            before = _people_count(org)
            report = tally.run(import_csv, organization=org, data=data,
                               actor=Actor.system("fuzz"), grow_seats=True)
            problems = _people_problems(report, where, bad, good, org, before)
            assert not problems, "\n".join(problems)

        rolled_back(run)

    probe()


@pytest.mark.parametrize("kind", ["nul", "oversized"])
def test_import_people_command_rejects_only_the_row_with_the_bad_field(
        tmp_path, org, capsys, tally, kind):
    @fuzz_settings(2)
    @given(bad=_bad_values(kind, PEOPLE_BASE, PEOPLE_LIMITS))
    def probe(bad):
        text, where, good = _people_batch(bad)
        path = tmp_path / "people.csv"
        path.write_bytes(text.encode())

        def run():
            before = _people_count(org)
            code = 0
            try:
                tally.run(call_command, "import_people", str(path), "--org", org.slug)
            except SystemExit as exc:
                code = exc.code
            out, err = capsys.readouterr()
            assert code == 1, (kind, code, out[-500:], err[-500:])
            lines = {int(line.split(":")[0].split()[1]): line
                     for line in out.splitlines() if line.startswith("line ")}
            problems = []
            for line, column in where.items():
                said = lines.get(line, "")
                if ": rejected" not in said or not any(
                        n in _names(said.split(": rejected", 1)[1])
                        for n in PEOPLE_NAMES[column]):
                    problems.append(f"{column}={bad[column]!r}: output {said!r} does not "
                                    f"reject it naming {column}")
            stored = _people_count(org) - before
            if stored != len(good):
                problems.append(f"{stored} people stored, expected {len(good)}")
            assert not problems, "\n".join(problems)

        rolled_back(run)

    probe()


@pytest.mark.parametrize("kind", ["nul", "oversized"])
def test_users_upload_page_rejects_only_the_row_with_the_bad_field(admin_client, org, tally,
                                                                    kind):
    @fuzz_settings(2)
    @given(bad=_bad_values(kind, PEOPLE_BASE, PEOPLE_LIMITS))
    def probe(bad):
        text, where, good = _people_batch(bad)

        def upload():
            before = _people_count(org)
            response = tally.run(admin_client.post, "/users/import/",
                                 {"file": SimpleUploadedFile("people.csv", text.encode(),
                                                             content_type="text/csv")})
            assert response.status_code == 200, (kind, response.status_code)
            assert "report" in response.context, response.context["form"].errors
            problems = _people_problems(response.context["report"], where, bad, good, org,
                                        before)
            assert not problems, "\n".join(problems)

        rolled_back(upload)

    probe()


# --- rate deck ----------------------------------------------------------------------------------

GOOD_PREFIXES = ("33901", "33902")


def valid_rate(prefix: str, currency: str) -> dict[str, str]:
    return dict(zip(decks.COLUMNS, ["outbound", prefix, "Fuzz destination", "FR", "landline",
                                    "0.02000", "0.00", "60", "60", currency, "2026-01-01"],
                    strict=True))


def _deck_batch(bad: dict[str, str], currency: str) -> tuple[str, dict[int, str]]:
    """(deck CSV text, {line: its bad column}); line 1 is the header."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(decks.COLUMNS)
    rows = [valid_rate(GOOD_PREFIXES[0], currency)]
    where = {}
    for n, column in enumerate(decks.COLUMNS):
        if column in bad:
            row = valid_rate(f"3391{n:02d}", currency)
            row[column] = bad[column]
            where[len(rows) + 2] = column
            rows.append(row)
    rows.append(valid_rate(GOOD_PREFIXES[1], currency))
    for row in rows:
        writer.writerow([row[c] for c in decks.COLUMNS])
    return out.getvalue(), where


def _deck_problems(errors: list[tuple[int, str]], where: dict[int, str], bad) -> list[str]:
    problems = []
    by_line: dict[int, list[str]] = {}
    for line, reason in errors:
        by_line.setdefault(line, []).append(str(reason))
    for line, column in where.items():
        reasons = by_line.get(line)
        if not reasons:
            problems.append(f"{column}={bad[column]!r}: line {line} was taken")
        elif not any(column in r for r in reasons):
            problems.append(f"{column}={bad[column]!r}: rejected with {reasons!r}, which does "
                            f"not name {column}")
        elif any(has_bad_char(r) for r in reasons):
            problems.append(f"{column}={bad[column]!r}: the reason repeats the bad "
                            f"character: {reasons!r}")
    for line in sorted(set(by_line) - set(where)):
        problems.append(f"good line {line} rejected: {by_line[line]!r}")
    return problems


def _deck_values(kind: str, currency: str):
    # Every column a value the deck refuses: a prefix or a code too long, a destination
    # over its 100 characters, the others past 64 characters.
    limits = {c: 64 for c in decks.COLUMNS} | {"destination": 100}
    return _bad_values(kind, valid_rate("339199", currency), limits)


def _encode_deck(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


@pytest.mark.parametrize("data_as", ["text", "bytes"])
@pytest.mark.parametrize("kind", CLASSES)
def test_rate_deck_rejects_only_the_line_with_the_bad_field(org, tally, kind, data_as):
    @fuzz_settings(5)
    @given(bad=_deck_values(kind, org.currency))
    def probe(bad):
        text, where = _deck_batch(bad, org.currency)
        data = text if data_as == "text" else _encode_deck(text)

        def run():
            try:
                rates, errors = tally.run(decks.parse_deck, data, org.currency,
                                          expected=(decks.DeckError,))
            except decks.DeckError as exc:
                raise AssertionError(f"the whole deck was refused: {exc} (bad: {bad!r})") \
                    from None
            problems = _deck_problems(errors, where, bad)
            taken = sorted(r.prefix for r in rates)
            if taken != sorted(GOOD_PREFIXES):
                problems.append(f"rates taken: {taken}, expected {sorted(GOOD_PREFIXES)}")
            assert not problems, "\n".join(problems)
            loaded = tally.run(rate_deck_load, organization=org, rates=rates,
                               actor=Actor.system("fuzz"))
            assert loaded == len(GOOD_PREFIXES) == Rate.objects.filter(
                organization=org).count()

        rolled_back(run)

    probe()


@pytest.mark.parametrize("kind", CLASSES)
def test_load_rates_skips_only_the_line_with_the_bad_field(tmp_path, org, capsys, tally,
                                                           kind):
    @fuzz_settings(3)
    @given(bad=_deck_values(kind, org.currency))
    def probe(bad):
        text, where = _deck_batch(bad, org.currency)
        path = tmp_path / "deck.csv"
        path.write_bytes(_encode_deck(text))

        def run():
            try:
                tally.run(call_command, "load_rates", str(path), "--org", org.slug,
                          "--skip-bad-rows", expected=(CommandError,))
            except CommandError as exc:
                raise AssertionError(f"load_rates refused the deck: {exc} (bad: {bad!r})") \
                    from None
            out, err = capsys.readouterr()
            errors = []
            for line in err.splitlines():
                number, _sep, reason = line.removeprefix("line ").partition(": ")
                errors.append((int(number), reason))
            problems = _deck_problems(errors, where, bad)
            if not out.startswith(f"loaded {len(GOOD_PREFIXES)} rates"):
                problems.append(f"output: {out!r}")
            assert not problems, "\n".join(problems)

        rolled_back(run)

    probe()


@pytest.mark.parametrize("kind", CLASSES)
def test_rates_upload_page_names_the_bad_line_and_skips_it(admin_client, org, tally, kind):
    @fuzz_settings(2)
    @given(bad=_deck_values(kind, org.currency))
    def probe(bad):
        text, where = _deck_batch(bad, org.currency)

        def upload(**extra):
            return tally.run(admin_client.post, "/settings/rates/upload/", {
                "file": SimpleUploadedFile("deck.csv", _encode_deck(text),
                                           content_type="text/csv"), **extra})

        def strict():
            response = upload()
            assert response.status_code == 400, (kind, response.status_code)
            line_errors = response.context["line_errors"]
            assert line_errors, ("the whole deck was refused",
                                 response.context["form"].errors, bad)
            problems = _deck_problems(line_errors, where, bad)
            assert not problems, "\n".join(problems)
            assert not Rate.objects.filter(organization=org).exists()

        def skipping():
            response = upload(skip_bad_rows="on")
            assert response.status_code == 302, (kind, response.status_code,
                                                 response.context and
                                                 response.context["form"].errors)
            assert Rate.objects.filter(organization=org).count() == len(GOOD_PREFIXES)

        rolled_back(strict)
        rolled_back(skipping)

    probe()


# --- fields past the csv module's limit ---------------------------------------------------------


def _csv_with(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


@fuzz_settings(2)
@given(size=st.integers(CSV_FIELD_LIMIT + 1, CSV_FIELD_LIMIT + 2048),
       fill=st.sampled_from("xé9"))
def test_rate_deck_fields_past_the_csv_limit_are_a_clear_error(admin_client, org, tmp_path,
                                                               capsys, tally, size, fill):
    good = [list(valid_rate(p, org.currency).values()) for p in GOOD_PREFIXES]

    def parse(data, column):
        try:
            rates, errors = tally.run(decks.parse_deck, data, org.currency,
                                      expected=(decks.DeckError,))
        except decks.DeckError as exc:
            assert str(exc).strip(), column
            return
        assert [line for line, _r in errors] == [3], (column, errors)
        assert sorted(r.prefix for r in rates) == sorted(GOOD_PREFIXES), column

    def command(data, column):
        path = tmp_path / "deck.csv"
        path.write_bytes(data)
        try:
            tally.run(call_command, "load_rates", str(path), "--org", org.slug,
                      "--skip-bad-rows", expected=(CommandError,))
        except CommandError as exc:
            assert str(exc).strip(), column
        capsys.readouterr()

    def page(data, column):
        response = tally.run(admin_client.post, "/settings/rates/upload/", {
            "file": SimpleUploadedFile("deck.csv", data, content_type="text/csv")})
        assert response.status_code == 400, (column, response.status_code)
        assert response.context["form"].errors or response.context["line_errors"], column

    for n, column in enumerate(decks.COLUMNS):
        row = list(valid_rate("339199", org.currency).values())
        row[n] = fill * size
        data = _csv_with(decks.COLUMNS, [good[0], row, good[1]])
        for step in (parse, command, page):
            rolled_back(step, data, column)


@fuzz_settings(4)
@given(size=st.integers(CSV_FIELD_LIMIT + 1, CSV_FIELD_LIMIT + 2048),
       column=st.integers(0, len(PEOPLE_COLUMNS) - 1))
def test_people_and_call_csv_fields_past_the_csv_limit_are_a_clear_error(org, tally, size,
                                                                         column):
    from usage.ingest import FileError

    people = [list(valid_person(k).values()) for k in ("good-a", "big", "good-b")]
    people[1][column] = "x" * size

    def read_people():
        report = tally.run(import_csv, organization=org, data=_csv_with(PEOPLE_COLUMNS, people),
                           actor=Actor.system("fuzz"))
        if report.fatal:
            assert report.fatal.strip()
        else:
            assert [r.line for r in report.rows if not r.ok] == [3], report.rows

    calls = [valid_call("good-a"), valid_call("big"), valid_call("good-b")]
    calls[1][EXPORT_FIELDS[column]] = "x" * size

    def read_calls():
        try:
            rows = tally.run(rows_from_file, "calls.csv", export_csv_text(calls).encode(),
                             expected=(FileError,))
        except FileError as exc:
            assert str(exc).strip()
            return
        result = calls_ingest(organization=org, rows=rows, source="import")
        assert [r["index"] for r in result.rejected] == [1], result.rejected

    rolled_back(read_people)
    rolled_back(read_calls)


# --- POST /api/v1/calls/authorize ----------------------------------------------------------------

AUTHORIZE_VALID = {"userPrincipalName": "dom.user@contoso-test.example",
                   "calleeNumber": "+33123456789", "callType": "user_out"}


def test_the_authorize_fields_are_every_field_of_its_schema():
    assert set(AUTHORIZE_VALID) == set(AuthorizeIn.model_fields)


@pytest.mark.parametrize("kind", ["nul", "surrogate"])
def test_authorize_refuses_a_bad_character_in_any_field_with_a_422(api_client, rated_org,
                                                                   tally, kind):
    person = PersonFactory(organization=rated_org, upn=AUTHORIZE_VALID["userPrincipalName"],
                           usage_location="US")
    give_licenses(person, "MCOEV", "MCOPSTNC")
    response = tally.run(api_client.post, "/api/v1/calls/authorize",
                         data=json.dumps(AUTHORIZE_VALID), content_type="application/json")
    assert response.status_code == 200 and response.json()["allowed"], response.content

    @fuzz_settings(5)
    @given(bad=_bad_values(kind, AUTHORIZE_VALID, {}))
    def probe(bad):
        def post(field, value):
            body = {**AUTHORIZE_VALID, field: value}
            response = tally.run(api_client.post, "/api/v1/calls/authorize",
                                 data=json.dumps(body), content_type="application/json")
            answer = assert_api_error(response, 422, "validation_error", (field, value))
            places = [item["loc"] for item in answer["errors"] or []]
            assert any(field in loc for loc in places), (field, value, answer)

        for field, value in bad.items():
            rolled_back(post, field, value)

    probe()


# --- NUL in query parameters --------------------------------------------------------------------


@pytest.fixture
def report_world(rated_org, admin_person):
    """Calls in the report's default range, so that the table's query runs."""
    person = PersonFactory(organization=rated_org, upn="dom.user@contoso-test.example",
                           display_name="Dom User", usage_location="US")
    give_licenses(person, "MCOEV", "MCOPSTNC")
    day = (timezone.now() - timedelta(days=2)).date().isoformat()
    result = calls_ingest(organization=rated_org, source="api", rows=[
        graph_row(f"world-{i}", userPrincipalName=person.upn, calleeNumber="+33123456789",
                  startDateTime=f"{day}T0{i}:00:00Z", duration=60 + i) for i in range(3)])
    assert result.accepted == 3, result.rejected
    return rated_org


def _report_params(today):
    return {"range": "custom", "from": (today - timedelta(days=7)).isoformat(),
            "to": today.isoformat(), "call_type": "user_out", "context": "international",
            "charged_to": "credits", "capability": "MCOPSTNPP", "user": "dom",
            "sort": "-start"}


@st.composite
def nul_params(draw, valid: dict[str, str]) -> dict[str, str]:
    """Some of `valid`'s parameters, at least one with a NUL put in."""
    names = draw(st.lists(st.sampled_from(sorted(valid)), min_size=1, unique=True))
    params = {n: valid[n] for n in draw(st.lists(st.sampled_from(sorted(valid)),
                                                 unique=True))}
    for name in names:
        params[name] = draw(poisoned(valid[name], NUL))
    return params


def test_nul_in_report_and_export_parameters_never_fails(admin_client, report_world, tally):
    today = timezone.now().date()
    valid = _report_params(today)

    @fuzz_settings(8)
    @given(params=nul_params(valid), cursor=st.sampled_from(["", "after", "before"]),
           fmt=st.sampled_from(["xlsx", "csv-zip", "x\x00"]))
    def probe(params, cursor, fmt):
        def page():
            response = tally.run(admin_client.get, "/reports/pstn-usage/", {
                **params, **({cursor: "a\x00b"} if cursor else {})})
            assert response.status_code in (200, 400), (params, response.status_code)

        def export():
            before = set(Export.objects.values_list("pk", flat=True))
            response = tally.run(admin_client.post, "/reports/pstn-usage/export/",
                                 {**params, "format": fmt})
            assert response.status_code in (302, 400), (params, response.status_code)
            for made in Export.objects.exclude(pk__in=before):
                stored = json.dumps(made.filters)
                assert "\\u0000" not in stored, ("a NUL was stored in an export", params,
                                                 made.filters)

        rolled_back(page)
        rolled_back(export)

    probe()


def test_nul_in_rates_and_api_query_parameters_never_fails(admin_client, api_client,
                                                           report_world, tally):
    rates = {"q": "France", "direction": "outbound", "number_type": "landline", "page": "1"}
    api = {"fromDateTime": "2026-11-01T00:00:00Z", "toDateTime": "2026-11-30T00:00:00Z",
           "$skiptoken": "eyJ4IjogMX0"}

    @fuzz_settings(10)
    @given(rates_params=nul_params(rates), api_params=nul_params(api))
    def probe(rates_params, api_params):
        def rates_page():
            response = tally.run(admin_client.get, "/settings/rates/", rates_params)
            assert response.status_code in (200, 400), (rates_params, response.status_code)

        def api_page():
            response = tally.run(api_client.get, "/api/v1/pstn-calls", api_params)
            assert response.status_code in (400, 422), (api_params, response.status_code,
                                                        response.content[:300])
            assert_api_error(response, response.status_code,
                             {400: "bad_request", 422: "validation_error"}[
                                 response.status_code], api_params)

        rolled_back(rates_page)
        rolled_back(api_page)

    probe()
