"""load_rates, create_api_token and import_pstn_calls (DESIGN.md section 8)."""

import csv
import io
import json
import zipfile
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from tests.factories import TEST_DECK_CSV, graph_row, load_test_deck
from usage.ingest import EXPORT_HEADER
from usage.models import CallRecord, Rate
from usage.selectors import api_token_authenticate

from .conftest import run_command

pytestmark = pytest.mark.django_db


def test_load_rates_loads_and_refuses_bad_files(tmp_path, org):
    good = tmp_path / "deck.csv"
    good.write_text(TEST_DECK_CSV)
    code, out, _err = run_command("load_rates", str(good), "--org", org.slug)
    assert out.strip() == f"loaded 9 rates into {org.slug}"
    bad = tmp_path / "bad.csv"
    bad.write_text(TEST_DECK_CSV.replace("USD,2026-01-01\n", "EUR,2026-01-01\n", 1))
    with pytest.raises(CommandError, match="nothing loaded"):
        call_command("load_rates", str(bad), "--org", org.slug, stderr=io.StringIO())
    assert Rate.objects.filter(organization=org, prefix="1").exists()
    code, out, err = run_command("load_rates", str(bad), "--org", org.slug, "--skip-bad-rows")
    assert "line 2: currency" in err and "loaded 8 rates" in out


def test_shipped_illustrative_deck_loads(org):
    from pathlib import Path

    import usage

    path = Path(usage.__file__).parent / "data" / "illustrative-rate-deck-USD.csv"
    code, out, err = run_command("load_rates", str(path), "--org", org.slug)
    assert not err and "loaded" in out
    countries = set(Rate.objects.filter(organization=org).values_list("country", flat=True))
    assert {"US", "FR", "GB", "DE"} <= countries


def test_create_api_token_prints_only_the_token(org):
    _code, out, _err = run_command("create_api_token", "--org", org.slug, "--name", "sbc")
    raw = out.strip()
    assert "\n" not in raw and api_token_authenticate(raw=raw).organization == org


def export_csv(rows):
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(EXPORT_HEADER)
    for r in rows:
        writer.writerow([r["id"], r["callId"], "", "US", "", r["userPrincipalName"], "",
                         r["callerNumber"], r["callType"], "Subscriber", "International",
                         "France", r["calleeNumber"], r["startDateTime"], "",
                         r["duration"], "0.00", "0.05", "USD", "MCOPSTNPP"])
    return buf.getvalue()


def test_import_csv_zip_and_json_with_exit_codes(tmp_path, org):
    load_test_deck(org)
    rows = [graph_row(f"c{i}", calleeNumber="+33123456789", duration=61) for i in range(3)]
    csv_path = tmp_path / "PSTN.calls.2026-11-02.csv"
    csv_path.write_text(export_csv(rows))
    code, out, _err = run_command("import_pstn_calls", str(csv_path), "--org", org.slug)
    assert (code, out.splitlines()[0]) == (0, "PSTN: imported 3, duplicates 0, rejected 0")
    call = CallRecord.objects.get(organization=org, graph_id="c0")
    # Microsoft's charge is kept as reported; the charge is this system's own rating.
    assert (call.reported_charge, call.charge, call.charged_to) == (
        Decimal("0.05"), Decimal("0.05"), "credits")
    assert call.reported_capability == "MCOPSTNPP"

    zip_path = tmp_path / "export.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("PSTN.calls.2026-11-02.csv", export_csv(rows + [graph_row("c9")]))
        archive.writestr("parameters.json", "{}")
    code, out, _err = run_command("import_pstn_calls", str(zip_path), "--org", org.slug)
    assert (code, out.splitlines()[0]) == (0, "PSTN: imported 1, duplicates 3, rejected 0")

    json_path = tmp_path / "page.json"
    json_path.write_text(json.dumps({"value": [graph_row("j1"),
                                               graph_row("j2", startDateTime="soon")]}))
    code, out, _err = run_command("import_pstn_calls", str(json_path), "--org", org.slug)
    assert code == 1
    assert out.splitlines()[:2] == ["PSTN: imported 1, duplicates 0, rejected 1",
                                "Direct Routing: imported 0, duplicates 0, rejected 0"]
    assert "row 2 (id j2): startDateTime:" in out

    list_path = tmp_path / "list.json"
    list_path.write_text(json.dumps([graph_row("l1")]))
    assert run_command("import_pstn_calls", str(list_path), "--org", org.slug)[0] == 0


@pytest.mark.parametrize("content", [b"\xff\xfe\x00", b"a,b,c\n1,2,3\n", b"{broken json"])
def test_import_unreadable_file_exits_2(tmp_path, org, content):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    code, _out, err = run_command("import_pstn_calls", str(path), "--org", org.slug)
    assert code == 2 and "cannot read" in err


def test_import_missing_file_exits_2(org):
    assert run_command("import_pstn_calls", "/nonexistent/file.csv", "--org", org.slug)[0] == 2
