"""Reports > Minute pools: the calling plans' and conferencing minute pools of a month."""

from datetime import date

from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from credits import products as P
from credits.forms.licenses import country_name
from credits.platform.access import permission
from credits.selectors.licenses import month_start, pool_status
from credits.templatetags.numbers import num
from usage import charts, labels


def _month_param(value: str) -> date:
    current = month_start()
    try:
        year, month = (int(x) for x in (value or "").split("-"))
        chosen = date(year, month, 1)
    except ValueError:
        return current
    return chosen if chosen <= current else current


def _chart(rows: list[dict]) -> dict:
    """Minutes used per country, one colour per pool, over the country's included minutes."""
    countries = sorted({r["country"] for r in rows}, key=lambda c: (c == "", c))
    names = {r["country"]: r["country_name"] for r in rows}
    categories = [charts.Category(c or "*", names[c],
                                  sum(r["total"] for r in rows if r["country"] == c))
                  for c in countries]
    kinds = [k for k in P.POOL_KINDS if any(r["kind"] == k for r in rows)]
    series = [charts.Series(k, str(P.POOL_KIND_LABELS[k]),
                            [sum(r["used"] for r in rows if r["kind"] == k and r["country"] == c)
                             for c in countries])
              for k in kinds]
    return charts.category_chart(
        key="pools", categories=categories, series=series,
        label=_("Minutes by country"),
        description=_("For each country, the minutes used in each pool (one colour per "
                      "pool) over the minutes the pools include (light track)."),
        fmt=num, tick_fmt=num, capacity_name=_("Minutes included"))


@permission("view_usage")
def minute_pools(request):
    month = _month_param(request.GET.get("month", ""))
    rows = pool_status(organization=request.organization, month=month)
    for row in rows:
        row["country_name"] = country_name(row["country"]) if row["country"] else _("Tenant-wide")
        # Microsoft's capability codes, as its report shows them, each beside its name.
        row["capabilities"] = [(labels.capability_name(code), code)
                               for code in row["capability"].split(" / ")]
    chart = _chart(rows) if rows else None
    months = []
    m = month_start()
    for _i in range(6):
        months.append(m)
        m = date(m.year - (m.month == 1), (m.month - 2) % 12 + 1, 1)
    return render(
        request,
        "usage/minute_pools.html",
        {
            "rows": rows,
            "month": month,
            # A past month kept no pool: its licenses are not known any more, only that
            # there is nothing to show.
            "past_month": month < month_start(),
            "months": months,
            "chart": chart,
            "totals": {
                "total": sum(r["total"] for r in rows),
                "used": sum(r["used"] for r in rows),
                "available": sum(r["available"] for r in rows),
            },
            "as_of": timezone.now(),
        },
    )
