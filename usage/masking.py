"""Masking of external phone numbers (domain/number-masking.csv).

In the countries of that table, privacy law has Microsoft hide the end of the other party's
number in the PSTN usage report and its exports. The report and every export of this app do
the same for organizations whose country is listed, with the given digit count.

The external number is the other party's: the callee of an outbound call, the caller of an
inbound one. For a call type this system does not know, both numbers are masked (hiding too
much is the safe side). The same rule is written once in SQL (`sql_masked`) for the CSV
export, which PostgreSQL formats itself; a test holds the two equal.
"""

from usage import rating

# domain/number-masking.csv: tenant country -> digits masked.
DIGITS_MASKED = {
    "BE": 3, "CH": 4, "DE": 3, "DK": 3, "ES": 3, "FI": 3, "FR": 4, "IT": 3, "NL": 3,
    "NO": 3, "SE": 3,
}
MASK = "*"


def digits_masked(country: str) -> int:
    """How many trailing digits to hide for an organization of `country` (0: none)."""
    return DIGITS_MASKED.get((country or "").upper(), 0)


def mask_number(number: str, digits: int) -> str:
    """Replace the last `digits` characters with '*'. Numbers already masked by Microsoft
    (they hold a '*') and empty values are left as they are."""
    if not digits or not number or MASK in number:
        return number
    keep = max(len(number) - digits, 0)
    return number[:keep] + MASK * (len(number) - keep)


def external_sides(call_type: str) -> tuple[bool, bool]:
    """(caller is external, callee is external) for a call type."""
    if call_type in rating.INBOUND_TYPES:
        return True, False
    if call_type in rating.OUTBOUND_TYPES:
        return False, True
    return True, True


def mask_call_numbers(call_type: str, caller: str, callee: str,
                      digits: int) -> tuple[str, str]:
    """(caller, callee) as the report shows them."""
    if not digits:
        return caller, callee
    caller_ext, callee_ext = external_sides(call_type)
    return (mask_number(caller, digits) if caller_ext else caller,
            mask_number(callee, digits) if callee_ext else callee)


def sql_masked(column: str, side: str, digits: int) -> str:
    """A PostgreSQL expression of `column` (caller_number / callee_number) masked as
    `mask_call_numbers` masks it; `side` is "caller" or "callee". Only trusted identifiers
    and integers are interpolated (no user input)."""
    if side not in ("caller", "callee"):
        raise ValueError(side)
    if not digits:
        return column
    digits = int(digits)
    inbound = ", ".join(f"'{t}'" for t in sorted(rating.INBOUND_TYPES))
    outbound = ", ".join(f"'{t}'" for t in sorted(rating.OUTBOUND_TYPES))
    # The side that is NOT external for this call type stays as it is.
    own_side = outbound if side == "caller" else inbound
    masked = (
        f"CASE WHEN {column} = '' OR strpos({column}, '{MASK}') > 0 THEN {column} "
        f"ELSE left({column}, greatest(length({column}) - {digits}, 0)) "
        f"|| repeat('{MASK}', least({digits}, length({column}))) END"
    )
    return f"CASE WHEN call_type IN ({own_side}) THEN {column} ELSE {masked} END"
