"""Report call records whose ids are one GUID spelled differently.

Ingestion now stores a GUID-shaped id (8-4-4-4-12 hex digits, optionally in braces) in one
canonical form: lower case, no braces. Rows stored before may hold one GUID in several
spellings (`AB12...`, `ab12...`, `{ab12...}`): the same call, stored and charged more than
once. This migration changes nothing: it logs a warning (which `migrate` shows) naming
each colliding group, per organization and canonical id, so that the extra charges can be
reviewed and refunded by hand. The database groups the GUID-shaped rows by canonical id
(plain ORM expressions that SQLite and PostgreSQL both run), so only colliding rows are
read into Python.

The GUID rule is copied here on purpose: a migration must keep meaning what it meant when
it was written, whatever usage.ingest becomes.
"""

import logging
from collections import defaultdict

from django.db import migrations
from django.db.models import Count, Value
from django.db.models.functions import Lower, Replace

logger = logging.getLogger("usage.migrations")

_G = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
GUID_SHAPED = rf"^(\{{{_G}\}}|{_G})$"
_BATCH = 500


def _guid_rows(CallRecord):
    """The GUID-shaped rows, each with its canonical id (lower case, no braces)."""
    canonical = Lower(Replace(Replace("graph_id", Value("{"), Value("")), Value("}"),
                              Value("")))
    return (CallRecord.objects.filter(graph_id__regex=GUID_SHAPED)
            .annotate(canonical=canonical).order_by())


def collisions(CallRecord):
    """{(organization id, canonical id): [(row pk, stored id), ...]} for every canonical id
    that more than one row holds. Grouped by the database: only the colliding groups come
    back, however many rows the table has."""
    rows = _guid_rows(CallRecord)
    keys = defaultdict(list)
    for org_id, canonical in (rows.values("organization_id", "canonical")
                              .annotate(n=Count("pk")).filter(n__gt=1)
                              .values_list("organization_id", "canonical")):
        keys[org_id].append(canonical)
    found = defaultdict(list)
    for org_id, ids in keys.items():
        for start in range(0, len(ids), _BATCH):
            for pk, graph_id, canonical in rows.filter(
                    organization_id=org_id, canonical__in=ids[start:start + _BATCH]
            ).values_list("pk", "graph_id", "canonical"):
                found[(org_id, canonical)].append((pk, graph_id))
    return {key: sorted(group) for key, group in found.items()}


def report_collisions(apps, schema_editor):
    CallRecord = apps.get_model("usage", "CallRecord")
    found = collisions(CallRecord)
    if not found:
        return
    lines = [f"usage 0002: {len(found)} call id(s) stored more than once in different "
             "spellings (nothing was changed; review their charges):"]
    for (org_id, canonical), rows in sorted(found.items()):
        spelled = ", ".join(f"{graph_id!r} (row {pk})" for pk, graph_id in rows)
        lines.append(f"  organization {org_id}, id {canonical}: {spelled}")
    logger.warning("\n".join(lines))


class Migration(migrations.Migration):
    dependencies = [("usage", "0001_initial")]

    operations = [migrations.RunPython(report_collisions, migrations.RunPython.noop)]
