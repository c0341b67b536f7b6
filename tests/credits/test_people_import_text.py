"""A NUL or a lone UTF-16 surrogate in any cell of a people or license-action CSV rejects
that row only, naming the column; the other rows are taken (credits.people_import).

Every column x {NUL, high surrogate, low surrogate} x {start, middle, end of the value} x
{bytes, text}: in a file a surrogate arrives as the bytes UTF-8 gives it when surrogates
pass (ED A0 80 .. ED BF BF).
"""

import csv
import io
import unicodedata

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from credits.models import LicenseAssignment, Person
from credits.people_import import ImportReport, import_csv
from credits.platform.services import Actor
from credits.platform.text import LONE_SURROGATE, NUL_CHARACTER, text_problem
from tests.factories import PersonFactory

pytestmark = pytest.mark.django_db

PEOPLE_COLUMNS = ["userPrincipalName", "displayName", "email", "usageLocation",
                  "preferredLanguage", "roles", "licenses"]
LICENSE_COLUMNS = ["userPrincipalName", "sku", "action"]
BAD_CHARS = {"nul": "\x00", "high surrogate": "\ud800", "low surrogate": "\udfff"}


def _poison(value: str, char: str, where: str) -> str:
    cut = {"start": 0, "middle": len(value) // 2, "end": len(value)}[where]
    return value[:cut] + char + value[cut:]


CASES = [(column, kind, where) for column in PEOPLE_COLUMNS for kind in BAD_CHARS
         for where in ("start", "middle", "end")]


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def _encode(text: str) -> bytes:
    # What a broken exporter writes for a lone surrogate.
    return text.encode("utf-8", errors="surrogatepass")


def _person(key: str) -> dict[str, str]:
    upn = f"{key}@contoso.example"
    return {"userPrincipalName": upn, "displayName": f"Person {key}", "email": upn,
            "usageLocation": "US", "preferredLanguage": "en", "roles": "", "licenses": ""}


def _people_file(column: str, bad_value: str) -> str:
    bad = {**_person("bad"), "roles": "Global Reader", "licenses": "MCOPSTNC"}
    bad[column] = bad_value
    rows = [_person("good-a"), bad, _person("good-b")]
    return _csv([PEOPLE_COLUMNS, *([r[c] for c in PEOPLE_COLUMNS] for r in rows)])


def _clean(text: str) -> bool:
    return not any(ch == "\x00" or unicodedata.category(ch) == "Cs" for ch in text)


def _assert_only_line_3_rejected(report, column: str):
    assert not report.fatal, report.fatal
    by_line = {row.line: row for row in report.rows}
    assert sorted(by_line) == [2, 3, 4]
    bad = by_line[3]
    assert not bad.ok and bad.code == "invalid_text", bad
    assert bad.message.startswith(f"{column}: "), bad.message
    # Shown on the page and printed by the command: never the bad character itself.
    assert _clean(bad.message) and _clean(bad.upn), bad
    assert by_line[2].ok and by_line[4].ok, (by_line[2], by_line[4])


@pytest.mark.parametrize("data_as", ["bytes", "text"])
@pytest.mark.parametrize(("column", "kind", "where"), CASES)
def test_a_bad_character_in_a_people_column_rejects_only_its_row(org, column, kind, where,
                                                                 data_as):
    value = _poison(_person("bad")[column] or "Global Reader", BAD_CHARS[kind], where)
    text = _people_file(column, value)
    report = import_csv(organization=org, data=_encode(text) if data_as == "bytes" else text,
                        actor=Actor.system("t"), grow_seats=True)
    _assert_only_line_3_rejected(report, column)
    reason = "NUL" if kind == "nul" else "surrogate"
    assert reason in report.rows[1].message
    assert set(Person.objects.filter(organization=org).values_list("upn", flat=True)) == {
        "good-a@contoso.example", "good-b@contoso.example"}


@pytest.mark.parametrize("kind", BAD_CHARS)
def test_a_truncated_language_is_checked_before_it_is_cut(org, kind):
    # preferredLanguage keeps two characters: "en" + the bad one must not pass as "en".
    report = import_csv(organization=org, data=_people_file("preferredLanguage",
                                                            "en" + BAD_CHARS[kind]),
                        actor=Actor.system("t"))
    _assert_only_line_3_rejected(report, "preferredLanguage")


@pytest.mark.parametrize("kind", BAD_CHARS)
def test_a_row_with_a_bad_character_leaves_an_existing_person_as_it_was(org, kind):
    PersonFactory(organization=org, upn="bad@contoso.example", usage_location="GB")
    text = _people_file("roles", "Global Reader" + BAD_CHARS[kind])
    report = import_csv(organization=org, data=_encode(text), actor=Actor.system("t"),
                        grow_seats=True)
    _assert_only_line_3_rejected(report, "roles")
    person = Person.objects.get(upn="bad@contoso.example")
    assert person.usage_location == "GB" and not person.role_codes
    assert not LicenseAssignment.objects.filter(person=person).exists()


@pytest.mark.parametrize("header", [True, False])
@pytest.mark.parametrize("data_as", ["bytes", "text"])
@pytest.mark.parametrize(("column", "kind"), [(c, k) for c in LICENSE_COLUMNS
                                              for k in BAD_CHARS])
def test_a_bad_character_in_a_license_action_column_rejects_only_its_row(
        org, column, kind, data_as, header):
    for key in ("good-a", "bad", "good-b"):
        PersonFactory(organization=org, upn=f"{key}@contoso.example")
    rows = [[f"{key}@contoso.example", "MCOPSTNC", "assign"]
            for key in ("good-a", "bad", "good-b")]
    at = LICENSE_COLUMNS.index(column)
    rows[1][at] = _poison(rows[1][at], BAD_CHARS[kind], "middle")
    if header:
        text = _csv([LICENSE_COLUMNS, *rows])
    else:  # line 1 is the first row: number the lines as with a header
        text = _csv([["nobody@contoso.example", "MCOPSTNC", "assign"], *rows])
    report = import_csv(organization=org, data=_encode(text) if data_as == "bytes" else text,
                        actor=Actor.system("t"), grow_seats=True)
    rows_after_line_1 = ImportReport(rows=[r for r in report.rows if r.line > 1],
                                     fatal=report.fatal)
    _assert_only_line_3_rejected(rows_after_line_1, column)
    assert _clean(report.rows[-2].sku) and _clean(report.rows[-2].action)
    assert set(LicenseAssignment.objects.filter(person__organization=org)
               .values_list("person__upn", flat=True)) == {"good-a@contoso.example",
                                                           "good-b@contoso.example"}


@pytest.mark.parametrize("char", BAD_CHARS.values())
def test_a_header_that_is_not_text_refuses_the_file(org, char):
    text = "userPrincipalName,display" + char + "Name\nx@contoso.example,X\n"
    for data in (text, _encode(text), "userPrincipalName\x00,sku\n".encode("utf-16-le")):
        report = import_csv(organization=org, data=data, actor=Actor.system("t"))
        assert report.fatal == "The file is not text (UTF-8 CSV expected)."
        assert report.exit_code == 2 and not report.rows


def test_a_file_that_is_not_utf8_is_still_read_as_cp1252(org):
    text = _csv([PEOPLE_COLUMNS, ["zoe@contoso.example", "Zoé Noël", "", "FR", "fr", "", ""]])
    report = import_csv(organization=org, data=text.encode("cp1252"), actor=Actor.system("t"))
    assert report.exit_code == 0, report.rows
    assert Person.objects.get(upn="zoe@contoso.example").display_name == "Zoé Noël"


@pytest.mark.parametrize("kind", BAD_CHARS)
def test_import_people_command_prints_the_rejected_row(tmp_path, org, capsys, kind):
    path = tmp_path / "people.csv"
    path.write_bytes(_encode(_people_file("displayName", "Person" + BAD_CHARS[kind])))
    with pytest.raises(SystemExit) as exc:
        call_command("import_people", str(path), "--org", org.slug)
    out = capsys.readouterr().out
    assert exc.value.code == 1
    assert "line 3: bad@contoso.example: rejected [invalid_text]: displayName: " in out
    assert "imported 2, rejected 1" in out


@pytest.mark.parametrize("kind", BAD_CHARS)
def test_users_upload_page_shows_the_rejected_row(admin_client, org, kind):
    upload = SimpleUploadedFile("people.csv", _encode(_people_file("email", "x" + BAD_CHARS[kind]
                                                                   + "@contoso.example")),
                                content_type="text/csv")
    response = admin_client.post("/users/import/", {"file": upload})
    assert response.status_code == 200
    report = response.context["report"]
    _assert_only_line_3_rejected(report, "email")
    assert "email: " in response.content.decode()


def test_the_check_is_the_one_usage_ingest_uses():
    from usage import ingest

    assert ingest.text_problem is text_problem
    assert (ingest.NUL_CHARACTER, ingest.LONE_SURROGATE) == (NUL_CHARACTER, LONE_SURROGATE)
    assert text_problem("Zoë 東京 🎉") is None
    assert text_problem("\ud83c\udf89") == LONE_SURROGATE  # a pair written as two halves
