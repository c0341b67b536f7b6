"""Card rules that need no gateway: the Luhn check, the brand of a number, expiry."""

from datetime import date

from django.utils import timezone


def luhn_ok(number: str) -> bool:
    # ASCII only: str.isdigit() also accepts full-width and superscript digits, which no
    # card number contains (and int() refuses some of them).
    if not (number.isascii() and number.isdigit()) or not 12 <= len(number) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_brand(number: str) -> str:
    if number.startswith("4"):
        return "Visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or "2221" <= number[:4] <= "2720":
        return "Mastercard"
    if number[:2] in {"34", "37"}:
        return "American Express"
    if number.startswith("6011") or number.startswith("65"):
        return "Discover"
    return "Card"


def card_expired(exp_month: int, exp_year: int, today: date | None = None) -> bool:
    """A card is valid to the end of its expiry month."""
    today = today or timezone.now().date()
    return (exp_year, exp_month) < (today.year, today.month)
