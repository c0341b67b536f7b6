"""The report charts: axes with tick labels, one colour per series with a legend, an
accessible title and description, the "Show data" table, readable in French, parsed from
the page's HTML."""

from datetime import UTC, timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.utils import timezone

from tests.factories import PersonFactory, call_record
from usage.models import CallRecord
from usage.rollups import rollups_add_calls

URL = "/reports/pstn-usage/"


class Charts(HTMLParser):
    """Each <figure class="chart ..."> of a page: its tick labels, bar fills, legend
    entries (name and colour), svg title/desc and data-table header."""

    def __init__(self):
        super().__init__()
        self.charts, self._inside, self._text_into = [], False, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "figure" and "chart" in classes:
            self.charts.append({"x": [], "y": [], "fills": set(), "legend": [], "svg": {},
                                "title": "", "desc": "", "th": []})
            self._inside = True
        if not self._inside:
            return
        c = self.charts[-1]
        if tag == "svg" and "chart__svg" in classes:
            c["svg"] = a
        if tag == "rect" and "chart__bar" in classes:
            c["fills"].add(a["fill"])
        if tag == "text" and "chart__tick--x" in classes:
            self._text_into = c["x"]
        elif tag == "text" and "chart__tick--y" in classes:
            self._text_into = c["y"]
        elif tag == "li" and "chart__key" in classes:
            c["legend"].append([a["data-fill"], ""])
            self._text_into = "legend"
        elif tag in ("title", "desc") and not c[tag]:
            self._text_into = tag
        elif tag == "th":
            c["th"].append("")
            self._text_into = "th"

    def handle_endtag(self, tag):
        if tag == "figure":
            self._inside = False
        if tag in ("text", "li", "title", "desc", "th"):
            self._text_into = None

    def handle_data(self, data):
        if self._text_into is None or not self._inside:
            return
        c = self.charts[-1]
        if self._text_into == "legend":
            c["legend"][-1][1] += data
        elif self._text_into in ("title", "desc"):
            c[self._text_into] += data
        elif self._text_into == "th":
            c["th"][-1] += data
        else:
            self._text_into.append(data.strip())


def charts_of(html: str) -> list[dict]:
    parser = Charts()
    parser.feed(html)
    return parser.charts


def day_start(days_ago: int):
    today = timezone.now().astimezone(UTC).replace(hour=8, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


@pytest.fixture
def mixed_calls(org):
    alice = PersonFactory(organization=org, display_name="Alice", upn="alice@contoso.example")
    records = [
        call_record(org, person=alice, start=day_start(1), call_type="user_out",
                    charge=Decimal("1.25"), callee_number="+33123456789"),
        call_record(org, person=alice, start=day_start(3), call_type="conf_out",
                    charge=Decimal("2.50"), callee_number="+33123456780"),
        call_record(org, person=alice, start=day_start(3), call_type="user_out",
                    charge=Decimal("0"), charged_to="plan_pool", credit_seconds=0,
                    callee_number="+12125550100"),
    ]
    CallRecord.objects.bulk_create(records)
    rollups_add_calls(organization=org, records=records)
    return records


@pytest.mark.django_db
def test_each_chart_has_ticks_on_both_axes_and_a_legend_entry_per_coloured_series(
        admin_client, mixed_calls):
    html = admin_client.get(URL, {"range": "7"}).content.decode()
    calls, minutes, credits = charts_of(html)
    for chart in (calls, minutes, credits):
        assert len(chart["x"]) >= 2 and all(chart["x"]), chart["x"]
        assert len(chart["y"]) >= 2 and chart["y"][0] == "0", chart["y"]
        assert chart["svg"]["role"] == "img" and chart["svg"]["aria-labelledby"]
        assert chart["title"] and chart["desc"]
    # Calls and credits by call type: two series, two colours, a legend entry each.
    for chart in (calls, credits):
        names = [name for _fill, name in chart["legend"]]
        assert names == ["Outbound call (user_out)", "Conference dial-out (conf_out)"]
        fills = [fill for fill, _name in chart["legend"]]
        assert len(set(fills)) == 2
        assert chart["fills"] == set(fills)
        assert chart["th"][1:] == [*names, "Total"]
    # Minutes by who paid them.
    payers = [name for _fill, name in minutes["legend"]]
    assert len(payers) == 2 and len({f for f, _n in minutes["legend"]}) == 2
    assert minutes["fills"] == {f for f, _n in minutes["legend"]}
    # A week: a tick per day; the y ticks rise.
    assert len(calls["x"]) == 7
    assert [int(v) for v in calls["y"]] == sorted(int(v) for v in calls["y"])
    assert int(calls["y"][-1]) >= 2  # two calls on the busiest day


@pytest.mark.django_db
def test_charts_read_in_french(admin_client, mixed_calls):
    html = admin_client.get(URL, {"range": "28"}, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    calls = charts_of(html)[0]
    assert calls["title"] == "Appels par jour"
    assert "par type d’appel" in calls["desc"]
    months = "janv. févr. mars avr. mai juin juil. août sept. oct. nov. déc.".split()
    assert all(any(m in label for m in months) for label in calls["x"]), calls["x"]
    assert 2 <= len(calls["x"]) <= 7


@pytest.mark.django_db
def test_an_empty_range_still_draws_the_axes_without_a_legend(admin_client, org):
    html = admin_client.get(URL).content.decode()
    for chart in charts_of(html):
        assert chart["x"] and chart["y"] and chart["legend"] == []
        assert chart["fills"] == set()


@pytest.mark.django_db
def test_direct_routing_calls_are_split_succeeded_and_failed(admin_client, org):
    html = admin_client.get("/reports/pstn-usage/direct-routing/").content.decode()
    charts = charts_of(html)
    assert len(charts) == 2
    assert all(c["x"] and c["y"] for c in charts)
