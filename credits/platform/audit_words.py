"""The audit log's entries in words, through a seam: the platform stores codes and raw
changes, and the app that knows what they mean (credits.audit_text, whose words name
billing's products, reasons and amounts) registers the two functions from AppConfig.ready().
Until then an entry reads as its code and its raw changes."""

from collections.abc import Callable


def _code(action: str) -> str:
    return action


def _raw(changes, *, currency: str = "USD") -> list[str]:
    if not changes:
        return []
    if not isinstance(changes, dict):
        return [str(changes)]
    return [f"{key}: {value}" for key, value in changes.items()]


WORDS: dict[str, Callable] = {"action_name": _code, "change_lines": _raw}


def register(*, action_name: Callable[[str], str], change_lines: Callable[..., list[str]]):
    WORDS.update(action_name=action_name, change_lines=change_lines)


def action_name(action: str) -> str:
    """The action's name in the active language: "Auto-recharge settings"."""
    return WORDS["action_name"](action)


def change_lines(changes, *, currency: str = "USD") -> list[str]:
    """One line per change, in the active language: "Auto-recharge: off → on"."""
    return WORDS["change_lines"](changes, currency=currency)
