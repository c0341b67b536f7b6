"""Reports > Minute pools: the calling plans' and conferencing minute pools of a month."""

from datetime import date

from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from credits.forms.licenses import country_name
from credits.platform.access import permission
from credits.selectors.licenses import month_start, pool_status

CHART_WIDTH = 400


def _month_param(value: str) -> date:
    current = month_start()
    try:
        year, month = (int(x) for x in (value or "").split("-"))
        chosen = date(year, month, 1)
    except ValueError:
        return current
    return chosen if chosen <= current else current


@permission("view_usage")
def minute_pools(request):
    month = _month_param(request.GET.get("month", ""))
    rows = pool_status(organization=request.organization, month=month)
    for row in rows:
        row["country_name"] = country_name(row["country"]) if row["country"] else _("Tenant-wide")
    # Bar chart by country: total and used minutes of every pool of that country.
    by_country = {}
    for row in rows:
        label = row["country"] or "*"
        bar = by_country.setdefault(label, {"label": row["country_name"], "code": row["country"],
                                            "total": 0, "used": 0})
        bar["total"] += row["total"]
        bar["used"] += row["used"]
    biggest = max([max(b["total"], b["used"]) for b in by_country.values()] + [1])
    bars = []
    ordered = sorted(by_country.values(), key=lambda b: (b["code"] == "", b["code"]))
    for i, bar in enumerate(ordered):
        bars.append({
            **bar,
            "y": i * 32,
            "total_w": round(bar["total"] * CHART_WIDTH / biggest),
            "used_w": round(bar["used"] * CHART_WIDTH / biggest),
        })
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
            "bars": bars,
            "chart_height": max(32, len(bars) * 32),
            "chart_width": CHART_WIDTH,
            "totals": {
                "total": sum(r["total"] for r in rows),
                "used": sum(r["used"] for r in rows),
                "available": sum(r["available"] for r in rows),
            },
            "as_of": timezone.now(),
        },
    )
