"""Whether a text an import brings can be stored as text: the one check of every text
field of the people CSV (credits.people_import), of a call row and of a rate deck row
(usage.ingest, usage.decks).

No database: usage.ingest reads rows without one. The problems are plain English strings,
as the API and the import command report them; `TEXT_PROBLEM_WORDS` translates them for
pages.
"""

from django.utils.translation import gettext_lazy

NUL_CHARACTER = "contains a NUL character"
LONE_SURROGATE = "contains a lone UTF-16 surrogate (not valid Unicode text)"

TEXT_PROBLEM_WORDS = {
    NUL_CHARACTER: gettext_lazy("contains a NUL character"),
    LONE_SURROGATE: gettext_lazy("contains a lone UTF-16 surrogate (not valid Unicode text)"),
}


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text (NUL_CHARACTER, LONE_SURROGATE), or None when
    it can.

    PostgreSQL text cannot hold NUL, and a lone surrogate (JSON's "\\udfff" decodes to one,
    and so do the bytes ED A0 80 .. ED BF BF of a file read with surrogatepass) is not
    encodable as UTF-8: either would fail later, in COPY or the database, for the whole
    batch instead of this one row.
    """
    if "\x00" in value:
        return NUL_CHARACTER
    if not value.isascii():  # O(1): ASCII text holds no surrogate
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return LONE_SURROGATE
    return None
