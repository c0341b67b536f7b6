"""credits.platform.csvsafe: cells of CSV files meant for people cannot start a formula, and
`restore` gives back exactly what was written."""

import csv
import io
from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from credits.platform import csvsafe

DANGEROUS = ["=", "+", "-", "@", "\t", "\r"]
PAYLOADS = ['HYPERLINK("http://evil.example","x")', "1+1", "cmd|' /C calc'!A0", "SUM(1,2)",
            "", "2+3", "=1+1", "'", "10"]
FAST = settings(max_examples=300, deadline=None, database=None, derandomize=True)


def _formula_like(cell: str) -> bool:
    return cell[:1] in DANGEROUS and not csvsafe._PLAIN_DECIMAL.match(cell)


def test_every_dangerous_first_character_is_quoted():
    for first in DANGEROUS:
        for payload in PAYLOADS:
            value = first + payload
            safe = csvsafe.neutralize(value)
            if csvsafe._PLAIN_DECIMAL.match(value):  # "-10", "+10": numbers, not formulas
                assert safe == value
            else:
                assert safe == "'" + value, repr(value)
            assert csvsafe.restore(safe) == value


def test_plain_numbers_and_non_text_stay_as_they_are():
    for value in ("-12.50", "+44", "-0", "12", "0.019", 7, Decimal("-3.5"), None,
                  date(2026, 1, 1), ""):
        assert csvsafe.neutralize(value) == value
    for value in ("-1+1", "+44 20", "-1e5", "-.5", "+", "-", "-12.", "-١٢"):
        assert csvsafe.neutralize(value) == "'" + value, value


@FAST
@given(st.text())
def test_the_round_trip_is_exact_for_any_text(value):
    safe = csvsafe.neutralize(value)
    assert csvsafe.restore(safe) == value
    assert not _formula_like(safe)


@FAST
@given(st.sampled_from(DANGEROUS + ["'", "''"]), st.text())
def test_the_round_trip_is_exact_for_text_starting_like_a_formula(first, rest):
    value = first + rest
    safe = csvsafe.neutralize(value)
    assert csvsafe.restore(safe) == value
    assert not _formula_like(safe)


def test_the_writer_neutralizes_every_cell_through_the_csv_module():
    out = io.StringIO()
    writer = csvsafe.writer(out, lineterminator="\n")
    rows = [[first + "1+1", "plain", -5, "-5"] for first in DANGEROUS]
    writer.writerows(rows)
    read = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    for row, original in zip(read, rows, strict=True):
        assert not any(_formula_like(cell) for cell in row), row
        assert [csvsafe.restore(c) for c in row] == [str(v) for v in original]
