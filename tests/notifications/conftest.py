import itertools

import pytest

from credits.platform.events import event_dispatch, event_emit

_keys = itertools.count(1)

# A complete payload of every event, as INTERFACES.md lists them (strings for amounts):
# rows are named by id, never by a path.
PAYLOADS = {
    "recharge_succeeded": {
        "amount": "100.00", "balance": "1234.56", "currency": "USD", "card": "Visa •••• 4242",
        "kind": "auto_recharge", "invoice_id": 17, "attempt_id": "41",
    },
    "recharge_failed": {
        "amount": "100.00", "currency": "USD", "card": "Visa •••• 0069",
        "reason_code": "expired_card", "reason": "The card has expired.",
        "declines_in_a_row": 1, "auto_recharge_disabled": False,
        "next_attempt_at": "2026-05-03T11:00:00+00:00",
    },
    "balance_zero": {"balance": "-2.40", "currency": "USD"},
    "balance_low": {
        "balance": "42.10", "currency": "USD", "threshold": "50.00", "days_left": 3,
    },
    "funds_expiring": {
        "amount": "75.25", "currency": "USD", "expires_on": "2026-06-01",
        "purchase_entry_id": "9",
    },
    "pool_80": {
        "pool": "Domestic calling, US", "kind": "domestic", "country": "US",
        "month": "2026-05", "used": 2400, "total": 3000, "left": 600,
    },
    "pool_100": {
        "pool": "Domestic calling, US", "kind": "domestic", "country": "US",
        "month": "2026-05", "used": 3000, "total": 3000, "left": 0,
    },
    "export_ready": {
        "export_id": 5, "requester_person_id": None,
        "expires_at": "2026-05-10T08:00:00+00:00", "format": "xlsx",
    },
    "auto_recharge_disabled": {
        "reason": "Your card was declined.", "declines_in_a_row": 3,
    },
}


def payload_of(name, **changes):
    return {**PAYLOADS[name], **changes}


@pytest.fixture
def emit(django_capture_on_commit_callbacks):
    """Record an event the way credits does and dispatch it, running what is enqueued on
    commit (deliveries are sent by eager Celery tasks, like a worker would)."""

    def emit(org, name, dedupe_key=None, **changes):
        with django_capture_on_commit_callbacks(execute=True):
            event = event_emit(
                organization=org,
                name=name,
                payload=payload_of(name, **changes),
                dedupe_key=dedupe_key or f"test:{name}:{next(_keys)}",
            )
            if event is not None:
                event_dispatch(event_id=event.pk)
        return event

    return emit
