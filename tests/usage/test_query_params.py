"""A NUL byte or a lone surrogate in any parameter of the report, its export request and
the rates page gets a clean answer (the value is refused, visibly, or ignored), never a
server error. PostgreSQL refuses NUL in a query, so the class shows there first; the
tests run on both databases."""

from datetime import UTC, date, timedelta
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import PersonFactory, call_record, load_test_deck
from usage import report
from usage.models import CallRecord, Export
from usage.rollups import rollups_add_calls

pytestmark = pytest.mark.django_db

REPORT = "/reports/pstn-usage/"
EXPORT = "/reports/pstn-usage/export/"
RATES = "/settings/rates/"
REPORT_PARAMS = ["range", "from", "to", "user", "call_type", "context", "charged_to",
                 "capability", "sort", "after", "before"]
EXPORT_PARAMS = REPORT_PARAMS[:8]
RATES_PARAMS = ["q", "direction", "number_type", "page"]
NOT_ALLOWED = "Contains a character that is not allowed."
FUZZ = settings(max_examples=60, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))

VALID = {
    "range": ["7", "28", "90", "custom"], "from": ["2026-11-01"], "to": ["2026-11-09"],
    "user": ["alice", ""], "call_type": list(report.CALL_TYPES), "context": ["domestic"],
    "charged_to": list(report.CHARGED_TO), "capability": ["MCOPSTN1"], "sort": ["-charge"],
    "q": ["France", "+33"], "direction": ["outbound"], "number_type": ["mobile"],
    "page": ["2"],
}
# Text around the bad character: empty, a real value, or anything.
_AROUND = st.one_of(st.just(""), st.sampled_from(["alice", "custom", "2026-11-02", "7",
                                                  "user_out", "credits", "xlsx"]),
                    st.text(max_size=8))
# NUL, a lone surrogate, or both (a lone surrogate cannot even be sent as UTF-8: it goes as
# its surrogatepass bytes, which Django decodes to U+FFFD).
_BAD = st.sampled_from(["\x00", "\ud800", "\udfff", "\x00\udc80"])


@st.composite
def poisoned(draw, names):
    """Parameters of a page, at least one of them holding a NUL or a lone surrogate."""
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names),
                           unique=True))
    params = {}
    for i, name in enumerate(chosen):
        if i == 0 or draw(st.booleans()):
            params[name] = draw(_AROUND) + draw(_BAD) + draw(_AROUND)
        else:  # a good value, so that the bad one is not refused for another reason
            params[name] = draw(st.sampled_from(VALID.get(name, [""])))
    return params


def encode(params: dict) -> str:
    return "&".join(f"{quote(k)}={quote(v.encode('utf-8', 'surrogatepass'))}"
                    for k, v in params.items())


@pytest.fixture
def admin(client_for, make_person, org):
    alice = PersonFactory(organization=org, display_name="Alice Martin", upn="alice@x.example")
    start = timezone.now().astimezone(UTC).replace(microsecond=0) - timedelta(hours=2)
    records = [call_record(org, person=alice, start=start, charge=Decimal("0.50"))]
    CallRecord.objects.bulk_create(records)
    rollups_add_calls(organization=org, records=records)
    load_test_deck(org)
    return client_for(make_person("global_administrator"))


def test_a_nul_in_the_user_filter_is_refused_with_a_message(admin):
    response = admin.get(REPORT + "?user=x%00y")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="filter-errors"' in html and NOT_ALLOWED in html
    assert "x\x00y" not in html


def test_a_nul_in_the_rates_search_is_ignored_with_a_message(admin):
    response = admin.get(RATES + "?q=%00")
    assert response.status_code == 200
    html = response.content.decode()
    assert "The search was ignored" in html and "France - Premium" in html


def test_an_export_with_a_nul_filter_is_refused_and_nothing_is_exported(admin):
    response = admin.post(EXPORT, {"format": "xlsx", "range": "7", "user": "a\x00b"})
    assert response.status_code == 302 and response["Location"].startswith(REPORT)
    assert not Export.objects.exists()
    page = admin.get(response["Location"]).content.decode()
    assert "Nothing was exported" in page and "user" in page


@FUZZ
@given(params=poisoned(REPORT_PARAMS))
def test_every_report_parameter(admin, params):
    for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
        response = admin.get(REPORT + "?" + encode(params), **headers)
        assert response.status_code in (200, 400), (params, response.status_code)


@FUZZ
@given(params=poisoned(EXPORT_PARAMS), fmt=st.sampled_from(["xlsx", "csv-zip", "xlsx\x00"]))
def test_every_export_request_parameter(admin, params, fmt):
    response = admin.post(EXPORT, encode({"format": fmt, **params}),
                          content_type="application/x-www-form-urlencoded")
    assert response.status_code in (302, 400), (params, response.status_code)
    # Refused, or started with the bad values ignored (dates outside a custom range).
    for export in Export.objects.all():
        assert not any(unstorable(v) for v in export.filters.values()), (params, export)
    Export.objects.all().delete()


def unstorable(value: str) -> bool:
    return "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value)


@FUZZ
@given(params=poisoned(RATES_PARAMS))
def test_every_rates_page_parameter(admin, params):
    response = admin.get(RATES + "?" + encode(params))
    assert response.status_code in (200, 400), (params, response.status_code)


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(params=poisoned(REPORT_PARAMS))
def test_the_filters_never_keep_a_character_the_database_cannot_take(params):
    """Straight from the parser too, where a lone surrogate arrives as itself."""
    filters, errors = report.filters_from_query(params, today=date(2026, 11, 10))
    assert not any(unstorable(v) for v in filters.as_dict().values())
    # The dates are read only for a custom range; a bad one is then refused too.
    read = {"range", "user", "call_type", "context", "charged_to", "capability"}
    if report.query_text(params, "range")[0] == "custom":
        read |= {"from", "to"}
    bad = [k for k, v in params.items() if k in read and unstorable(v)]
    assert set(bad) <= set(errors), (params, errors)


def test_a_clean_query_still_filters(admin):
    response = admin.get(REPORT, {"user": "alice", "range": "7"})
    assert response.status_code == 200
    assert 'id="filter-errors"' not in response.content.decode()
