"""Database helpers shared by the apps (credits never imports usage): the PostgreSQL fast
paths, each behind a named function with a portable equivalent used elsewhere."""

import functools
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, models


def pg_text_array(values) -> str:
    """A PostgreSQL text[] literal of `values` (bind it with `%s::text[]`). psycopg turns a
    Python list into an array element by element, in Python: for the 1000 ids of an
    ingestion batch that cost more than the lookup itself."""
    return "{" + ",".join(
        '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def existing_values(model: type[models.Model], column: str, values: list[str], *,
                    scope_column: str, scope_id) -> set[str]:
    """Which of `values` are stored in `model.column` among the rows whose `scope_column`
    is `scope_id`. PostgreSQL: one query with one array parameter, a constant query text
    whatever the number of values. Elsewhere: `__in` lookups in chunks."""
    if not values:
        return set()
    if connection.vendor == "postgresql":
        return existing_values_pg(model, column, values, scope_column=scope_column,
                                  scope_id=scope_id)
    return existing_values_portable(model, column, values, scope_column=scope_column,
                                    scope_id=scope_id)


def existing_values_pg(model, column, values, *, scope_column, scope_id) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(existing_values_pg_sql(model, column, scope_column),
                       [pg_text_array(values), scope_id])
        return {row[0] for row in cursor.fetchall()}


def existing_values_pg_sql(model, column: str, scope_column: str) -> str:
    """The lookup of `existing_values_pg` (parameters: the values as a text[] literal, the
    scope id): one index probe per value, whose cost does not grow with the scope's
    history, whatever the table's statistics.

    - A subquery with LIMIT under LATERAL is never flattened into a join, so the planner
      cannot trade the probes for a scan of every row of the scope, as it did for `column =
      ANY(...)` once the scope held some 60,000 rows.
    - When a unique index leads with `column` (CallRecord's ids, the ledger's keys), the
      scope is compared as `scope + 0`, which no index can use: that unique index is then
      the only index the probe can take. Otherwise, when the statistics predate the
      scope's rows (a new organization importing a year of calls), the planner believed
      it had one row and probed an index on the scope alone, reading all its rows at
      every probe.
    - Elsewhere the scope is given as `(SELECT %s)`, a value the planner does not see, so
      it plans for an average scope, where the unique index (one row for certain) wins."""
    table = model._meta.db_table
    if _unique_index_leads_with(model, column, scope_column):
        scope = f"t.{scope_column} + 0 = %s"
    else:
        scope = f"t.{scope_column} = (SELECT %s::bigint)"
    return (f"SELECT v.value FROM unnest(%s::text[]) AS v(value) CROSS JOIN LATERAL "
            f"(SELECT 1 FROM {table} t WHERE t.{column} = v.value AND {scope} LIMIT 1) "
            f"AS hit")


@functools.cache
def _unique_index_leads_with(model, column: str, scope_column: str) -> bool:
    """Whether a unique constraint of `model` is on (column, scope_column), in that
    order."""
    columns = {f.name: f.column for f in model._meta.concrete_fields}
    return any(isinstance(c, models.UniqueConstraint) and not c.condition
               and [columns.get(name) for name in c.fields] == [column, scope_column]
               for c in model._meta.constraints)


def existing_values_portable(model, column, values, *, scope_column, scope_id) -> set[str]:
    field = next(f for f in model._meta.concrete_fields if f.column == column)
    scope = next(f for f in model._meta.concrete_fields if f.column == scope_column)
    found: set[str] = set()
    for i in range(0, len(values), 2000):
        found.update(model.objects.filter(**{scope.attname: scope_id,
                                             f"{field.name}__in": values[i:i + 2000]})
                     .values_list(field.name, flat=True))
    return found


def copy_rows(model: type[models.Model], columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Append `rows` (values in `columns` order) to the model's table. PostgreSQL: one
    binary COPY, the cheapest bulk insert there is; the table's constraints still apply
    to every row. Elsewhere: bulk_create. No model hooks run in either case."""
    if connection.vendor == "postgresql":
        copy_rows_pg(model, columns, rows)
    else:
        copy_rows_portable(model, columns, rows)


@functools.cache
def _copy_types(model, columns: tuple[str, ...]) -> list[str]:
    """The PostgreSQL type of each column, from the model (binary COPY needs them); read
    once: working them out again for every batch cost a measurable share of the COPY."""
    fields = {f.column: f for f in model._meta.concrete_fields}
    return [fields[c].db_type(connection).split("(")[0] for c in columns]


def copy_rows_pg(model, columns, rows) -> None:
    sql = (f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)")
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        copy.set_types(_copy_types(model, tuple(columns)))
        for row in rows:
            copy.write_row(row)


def copy_rows_portable(model, columns, rows) -> None:
    fields = {f.column: f for f in model._meta.concrete_fields}
    names = [fields[c].attname for c in columns]
    objs = [model(**dict(zip(names, row, strict=True))) for row in rows]
    model._default_manager.bulk_create(objs, batch_size=1000)


@contextmanager
def advisory_lock(space: int, key: int) -> Iterator[bool]:
    """Whether this connection holds the lock (space, key) for the block, without waiting.
    PostgreSQL: a session advisory lock, which is no transaction (no row lock, no snapshot)
    and ends with the connection, so a killed process frees it at once. Elsewhere (SQLite:
    one writer, development and tests) there is no second process to keep out: held."""
    if connection.vendor != "postgresql":
        yield True
        return
    pair = [space, key % 2**31]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", pair)
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", pair)
