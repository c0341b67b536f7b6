"""Small database helpers shared by the apps (credits never imports usage)."""


def pg_text_array(values) -> str:
    """A PostgreSQL text[] literal of `values` (bind it with `%s::text[]`). psycopg turns a
    Python list into an array element by element, in Python: for the 1000 ids of an
    ingestion batch that cost more than the lookup itself."""
    return "{" + ",".join(
        '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"
