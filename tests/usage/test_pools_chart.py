"""Reports > Minute pools: the chart is usage.charts' (axes with localized ticks, one colour
per pool with a legend, a title, a description and a data table), and the page reads in
French, its pool names and empty-month sentences included."""

import html as html_lib
import re
from datetime import date

import pytest
from django.urls import reverse
from django.utils import timezone

from credits.selectors.licenses import month_start
from credits.services.licenses import pool_key_for, pool_take_minutes
from tests.factories import PersonFactory, give_licenses
from usage import charts

pytestmark = pytest.mark.django_db


@pytest.fixture
def pools(org):
    us = give_licenses(PersonFactory(organization=org, usage_location="US"), "MCOEV",
                       "MCOPSTN1", "MCOMEETADD")
    fr = give_licenses(PersonFactory(organization=org, usage_location="FR"), "MCOEV",
                       "MCOPSTN2")
    now = timezone.now()
    for kind, country, minutes in (("domestic", "US", 120), ("international", "FR", 30),
                                   ("conference", "", 15)):
        pool_take_minutes(organization=org, minutes=minutes, at=now,
                          key=pool_key_for(kind=kind, country=country, at=now))
    return us, fr


def _page(client_for, make_person, language="en", query=""):
    viewer = make_person("teams_communications_support_engineer",
                         preferred_language=language)
    response = client_for(viewer).get(reverse("reports_minute_pools") + query)
    assert response.status_code == 200
    return response.content.decode()


def _texts(html, css_class):
    return [html_lib.unescape(t).replace("\u202f", " ").replace("\xa0", " ")
            for t in re.findall(rf'<text class="[^"]*{css_class}[^"]*"[^>]*>([^<]*)</text>', html)]


def _legend(html):
    keys = re.search(r'<ul class="chart__keys"[^>]*>(.*?)</ul>', html, re.S).group(1)
    return [(fill, html_lib.unescape(re.sub(r"<[^>]+>", "", name)))
            for fill, name in re.findall(r'<li class="chart__key[^"]*"(?: data-fill="([^"]*)")?>'
                                         r'(.*?)</li>', keys, re.S)]


def test_the_chart_has_value_ticks_category_names_and_a_legend_per_pool(
    client_for, make_person, pools
):
    html = _page(client_for, make_person)
    # US: 3,000 domestic minutes, the biggest country, so the axis runs 0 to 3,000.
    assert _texts(html, "chart__tick--x") == ["0", "1,000", "2,000", "3,000"]
    assert _texts(html, "chart__category") == ["France", "United States", "Tenant-wide"]
    legend = _legend(html)
    assert [name for _fill, name in legend] == [
        "Domestic calling", "International calling", "Audio Conferencing dial-out",
        "Minutes included"]
    fills = [fill for fill, _name in legend[:3]]
    assert len(set(fills)) == 3
    # Each pool's bar is drawn in its legend's colour.
    bars = re.findall(r'<rect class="chart__bar"[^>]* fill="([^"]+)"><title>([^<]+)</title>',
                      html)
    assert ("United States · Domestic calling: 120" in [t for _f, t in bars])
    assert dict((t.split(" · ")[1].split(":")[0], f) for f, t in bars) == dict(
        zip(["Domestic calling", "International calling", "Audio Conferencing dial-out"],
            fills, strict=True))


def test_the_chart_has_a_title_a_description_and_a_data_table(client_for, make_person, pools):
    html = _page(client_for, make_person)
    svg = re.search(r"<svg class=\"chart__svg\"[^>]*>", html).group(0)
    assert 'role="img"' in svg and "aria-labelledby=" in svg
    assert '<title id="chart-pools-svg-title">Minutes by country</title>' in html
    assert "one colour per pool" in re.search(r"<desc[^>]*>(.*?)</desc>", html).group(1)
    table = re.search(r'<details class="chart__data">.*?</details>', html, re.S).group(0)
    headers = re.findall(r'<th scope="col"[^>]*>([^<]*)</th>', table)
    assert headers == ["Country", "Domestic calling", "International calling",
                       "Audio Conferencing dial-out", "Total", "Minutes included"]
    assert re.search(r'<th scope="row">United States</th><td class="num">120</td>'
                     r'<td class="num">0</td><td class="num">0</td><td class="num">120</td>'
                     r'<td class="num">3,000</td>', table)


def test_the_pools_page_reads_in_french(client_for, make_person, pools):
    html = _page(client_for, make_person, "fr")
    assert _texts(html, "chart__tick--x") == ["0", "1 000", "2 000", "3 000"]
    assert _texts(html, "chart__category") == ["France", "États-Unis", "Toute l'organisation"]
    assert [name for _fill, name in _legend(html)] == [
        "Appels nationaux", "Appels internationaux", "Appels sortants d'audioconférence",
        "Minutes incluses"]
    assert "<td>Appels sortants d&#x27;audioconférence</td>" in html
    for english in ("Minute pools", "Minutes by country", "Domestic calling",
                    "International calling", "Audio Conferencing", "Tenant-wide",
                    "Minutes included", "Show data", "Legend", "Total minutes", "Data as of",
                    "For each country"):
        assert english not in html, english


def test_an_empty_month_says_so_in_french(client_for, make_person, org):
    html = _page(client_for, make_person, "fr")
    assert ("Aucune réserve de minutes ce mois-ci : aucun forfait d'appels ni licence "
            "d'audioconférence n'est attribué.") in html
    assert "chart__svg" not in html
    current = month_start()
    past = date(current.year - (current.month == 1), (current.month - 2) % 12 + 1, 1)
    html = _page(client_for, make_person, "fr", f"?month={past:%Y-%m}")
    assert "Aucune donnée pour ce mois." in html and "Choisissez un autre mois." in html
    assert "No data" not in html and "No minute pools" not in html


def test_category_chart_scales_the_axis_to_the_biggest_capacity():
    chart = charts.category_chart(
        key="k", label="L", description="D", fmt=str, tick_fmt=str,
        categories=[charts.Category("a", "A", 100), charts.Category("b", "B", None)],
        series=[charts.Series("x", "X", [40, 250]), charts.Series("y", "Y", [10, 0])],
        capacity_name="Included")
    assert [t["label"] for t in chart["x_ticks"]] == ["0", "100", "200", "300"]
    left, right = chart["left"], chart["right"]
    assert chart["x_ticks"][0]["x"] == left and chart["x_ticks"][-1]["x"] == right
    a, b = chart["rows"]
    assert a["track"]["w"] == round((right - left) / 3, 2) and b["track"] is None
    assert [bar["fill"] for bar in a["bars"]] == [charts.PALETTE[0], charts.PALETTE[1]]
    assert a["bars"][1]["x"] == round(left + a["bars"][0]["w"], 2)  # stacked
    assert len(b["bars"]) == 1  # a zero is not drawn
    assert chart["table"] == [("A", ["40", "10"], "50", "100"), ("B", ["250", "0"], "250", "")]


@pytest.mark.parametrize("language, plan", [("en", "Domestic Calling Plan"),
                                            ("fr", "Forfait d'appels nationaux")])
def test_each_capability_code_is_shown_beside_its_name(client_for, make_person, pools,
                                                       language, plan):
    from django.utils import translation

    from credits.call_names import capability_name

    with translation.override(language):
        expected = capability_name("MCOPSTN1")
    assert expected == plan
    html = html_lib.unescape(_page(client_for, make_person, language))
    cells = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", c)).strip()
             for c in re.findall(r"<td>(.*?)</td>", html, re.S)]
    assert f"{expected} MCOPSTN1" in cells
    # A code is never shown alone where a name exists.
    assert "MCOPSTN1" not in cells and "MCOMEETADD" not in cells
