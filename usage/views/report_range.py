"""Keep a report's filter form and address bar in step with what the server shows.

A report's filters refresh only its body (htmx). The server decides the dates a preset
range covers, so it tells the page: the address to push (the canonical one, without the
stale From/To of a preset) and the From/To the fields must now show, which "Custom" then
starts from.
"""

import json
from urllib.parse import urlencode

REPORT_RANGE_EVENT = "cc:report-range"


def sync_report_range(request, response, *, filters, query: dict[str, str]):
    """Add the htmx headers to a report body answered to the filter form."""
    if not request.headers.get("HX-Request"):
        return response
    params = dict(query)
    for cursor in ("after", "before"):
        if request.GET.get(cursor):
            params[cursor] = request.GET[cursor]
    response["HX-Push-Url"] = request.path + ("?" + urlencode(params) if params else "")
    response["HX-Trigger-After-Swap"] = json.dumps({REPORT_RANGE_EVENT: {
        "range": filters.range,
        "from": filters.start.isoformat(),
        "to": filters.end.isoformat(),
    }})
    return response
