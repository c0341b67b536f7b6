"""`manage.py adjust_balance --org SLUG --amount N --reason TEXT --reference REF`: a signed
manual credit or debit, once per reference; exit 0 adjusted, 1 refused, 2 bad input; the
last line is the new balance."""

from decimal import Decimal

import pytest
from django.core.management import get_commands, load_command_class
from django.db import connections

from credits.models import AuditEntry, CreditAccount, LedgerEntry
from tests.factories import funded_account


@pytest.fixture(autouse=True)
def keep_the_test_connection(monkeypatch):
    # run_from_argv closes every connection when it ends; the test's transaction needs its.
    monkeypatch.setattr(connections, "close_all", lambda: None)


def run(capsys, *args):
    """Through run_from_argv, as `manage.py` runs it: (exit code, stdout, stderr)."""
    command = load_command_class(get_commands()["adjust_balance"], "adjust_balance")
    code = 0
    try:
        command.run_from_argv(["manage.py", "adjust_balance", *args])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def balance(org):
    return CreditAccount.objects.get(organization=org).balance


@pytest.mark.django_db
def test_a_credit_prints_the_new_balance_and_the_same_reference_adjusts_once(capsys, org):
    funded_account(org, "10.00")
    args = ["--org", org.slug, "--amount", "25.50", "--reason", "goodwill",
            "--reference", "SUP-7"]
    code, out, _err = run(capsys, *args)
    assert code == 0
    assert out.strip().splitlines()[-1] == "balance: 35.50 USD"
    code, out, _err = run(capsys, *args)
    assert code == 0
    assert "already adjusted +25.50 USD under reference SUP-7" in out
    assert out.strip().splitlines()[-1] == "balance: 35.50 USD"
    entry = LedgerEntry.objects.get(organization=org, idempotency_key="adjustment:SUP-7")
    assert entry.actor_label == "adjust_balance command"
    assert AuditEntry.objects.filter(action="credits.adjust", target_id=str(entry.pk)).count() == 1


@pytest.mark.django_db
def test_a_debit_prints_the_new_balance(capsys, org):
    funded_account(org, "10.00")
    code, out, _err = run(capsys, "--org", org.slug, "--amount", "-2.25", "--reason", "fix",
                          "--reference", "FIX-1")
    assert code == 0 and out.strip().splitlines()[-1] == "balance: 7.75 USD"


@pytest.mark.django_db
def test_a_debit_below_zero_is_refused_unless_confirmed(capsys, org):
    funded_account(org, "10.00")
    args = ["--org", org.slug, "--amount", "-30", "--reason", "fix", "--reference", "FIX-2"]
    code, out, err = run(capsys, *args)
    assert code == 1
    assert "refused: This debit takes the balance below zero, to -$20.00" in err
    assert "--confirm-below-zero" in err
    assert balance(org) == Decimal("10.00")
    code, out, _err = run(capsys, *args, "--confirm-below-zero")
    assert code == 0 and out.strip().splitlines()[-1] == "balance: -20.00 USD"


@pytest.mark.django_db
def test_a_reference_reused_for_another_amount_is_refused(capsys, org):
    funded_account(org, "10.00")
    run(capsys, "--org", org.slug, "--amount", "5", "--reason", "r", "--reference", "R-1")
    code, _out, err = run(capsys, "--org", org.slug, "--amount", "6", "--reason", "r",
                          "--reference", "R-1")
    assert code == 1 and "The reference R-1 was already used" in err
    assert balance(org) == Decimal("15.00")


@pytest.mark.django_db
@pytest.mark.parametrize(("args", "message"), [
    (["--amount", "abc", "--reason", "r", "--reference", "X"], "--amount: enter an amount"),
    (["--amount", "1.234", "--reason", "r", "--reference", "X"], "at most 2 decimal places"),
    (["--amount", "0", "--reason", "r", "--reference", "X"], "cannot be zero"),
    (["--amount", "5", "--reason", " ", "--reference", "X"], "Reason is required"),
    (["--amount", "5", "--reason", "r", "--reference", ""], "Reference is required"),
])
def test_bad_input_exits_2_naming_the_field(capsys, org, args, message):
    funded_account(org, "10.00")
    code, _out, err = run(capsys, "--org", org.slug, *args)
    assert code == 2 and message in err
    assert balance(org) == Decimal("10.00")


@pytest.mark.django_db
def test_an_unknown_organization_exits_2(capsys, org):
    code, _out, err = run(capsys, "--org", "nope", "--amount", "5", "--reason", "r",
                          "--reference", "X")
    assert code == 2 and "no organization with slug 'nope'" in err


@pytest.mark.django_db
def test_a_missing_argument_exits_2(capsys, org):
    code, _out, err = run(capsys, "--org", org.slug, "--amount", "5", "--reason", "r")
    assert code == 2 and "--reference" in err
