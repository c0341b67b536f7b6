"""Monthly credits spend limits (credits.spend_limits): the counters kept with the usage
entries, the 80 % / 100 % alerts once per month and level, the services and their audit,
the pages, the people CSV column and the `set_spend_limit` command."""

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db.models import Sum

from credits.models import AuditEntry, CreditAccount, DomainEvent, LedgerEntry, SpendCounter
from credits.people_import import import_csv
from credits.platform.services import Actor, ServiceError
from credits.selectors.spend_limits import organization_spend, people_spend, person_spend
from credits.services.ledger import UsageCharge, credits_charge_usage_batch
from credits.services.spend_limits import (
    people_spend_limit_set,
    person_spend_limit_set,
    spend_limit_set,
)
from credits.spend_limits import LimitError, crossed_levels, month_of, parse_limit
from tests.factories import PersonFactory, funded_account

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
_n = iter(range(10**6))


def charge(org, amount, *, person=None, at=NOW):
    return credits_charge_usage_batch(organization=org, charges=[UsageCharge(
        key=f"call:t{next(_n)}", amount=Decimal(amount), description="test call",
        occurred_at=at, person_id=person.pk if person else None)])


def events(org, prefix):
    return list(DomainEvent.objects.filter(organization=org, name__startswith=prefix)
                .order_by("id").values_list("name", "payload"))


@pytest.fixture
def admins(org):
    return [PersonFactory(organization=org, display_name="Megan Global", email="megan@x.example",
                          roles=["global_administrator"]),
            PersonFactory(organization=org, display_name="Alex Billing", email="alex@x.example",
                          roles=["billing_administrator"], preferred_language="fr")]


# --- rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("250", Decimal("250.00")), ("99.5", Decimal("99.50")), ("1,000.25", Decimal("1000.25")),
    ("0", Decimal("0.00")), ("off", None), ("", None), (" OFF ", None),
])
def test_parse_limit_reads_amounts_and_off(text, expected):
    assert parse_limit(text, label="limit") == expected


@pytest.mark.parametrize(("text", "words"), [
    ("-5", "cannot be negative"), ("12.345", "2 decimal places"), ("100,50", "enter an amount"),
    ("1e5", "enter an amount"), ("2000000", "at most"), ("abc", "enter an amount"),
])
def test_parse_limit_refuses_nonsense_naming_the_field(text, words):
    with pytest.raises(LimitError) as exc:
        parse_limit(text, label="Monthly spend limit")
    assert exc.value.message.startswith("Monthly spend limit")
    assert words in exc.value.message


def test_crossed_levels_and_utc_month():
    assert crossed_levels(Decimal("100"), Decimal("79.50"), Decimal("80.00")) == [80]
    assert crossed_levels(Decimal("100"), Decimal("79.50"), Decimal("100.00")) == [80, 100]
    assert crossed_levels(Decimal("100"), Decimal("80.00"), Decimal("99.99")) == []
    assert crossed_levels(None, Decimal("0"), Decimal("1000")) == []
    # 23:30 on Oct 31 in New York is Nov 1 in UTC.
    from zoneinfo import ZoneInfo
    at = datetime(2026, 10, 31, 23, 30, tzinfo=ZoneInfo("America/New_York"))
    assert month_of(at) == date(2026, 11, 1)


# --- counters and alerts -------------------------------------------------------------------


def test_usage_charges_keep_the_month_counters_of_the_org_and_the_person(org):
    funded_account(org, "500.00")
    ann = PersonFactory(organization=org)
    charge(org, "1.25", person=ann)
    charge(org, "2.00")  # a call of nobody known (a toll-free number): the org only
    charge(org, "3.00", person=ann, at=datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC))
    counters = {(c.month.isoformat(), c.person_key): c.spent
                for c in SpendCounter.objects.filter(organization=org)}
    assert counters == {("2026-11-01", 0): Decimal("3.25"), ("2026-11-01", ann.pk): Decimal("1.25"),
                        ("2026-10-01", 0): Decimal("3.00"), ("2026-10-01", ann.pk): Decimal("3.00")}
    # The counter is the sum of the month's usage entries: one definition of spend.
    usage = LedgerEntry.objects.filter(organization=org, kind="usage",
                                       occurred_at__gte=NOW.replace(day=1))
    assert -usage.aggregate(s=Sum("amount"))["s"] == Decimal("3.25")
    assert organization_spend(organization=org, at=NOW).spent == Decimal("3.25")


def test_refunds_and_adjustments_do_not_lower_the_spend(org):
    funded_account(org, "500.00")
    charge(org, "40.00")
    from credits.services.ledger import credits_adjust
    credits_adjust(organization=org, amount=Decimal("25.00"), reason="goodwill",
                   actor=Actor.system("test"))
    assert organization_spend(organization=org, at=NOW).spent == Decimal("40.00")


def test_example_org_limit_alerts_at_80_and_100_once_per_month(org, admins,
                                                              django_capture_on_commit_callbacks):
    """Limit 100.00: 79.50 spent tells nobody; +0.60 (80.10) tells 80 %; +5 tells nothing
    more; +20.00 (105.10) tells 100 %; another 1.00 tells nothing; December starts over."""
    funded_account(org, "500.00")
    spend_limit_set(organization=org, monthly_limit=Decimal("100"), actor="test", now=NOW)
    with django_capture_on_commit_callbacks(execute=True):
        charge(org, "79.50")
        assert events(org, "spend_limit") == []
        charge(org, "0.60")
        charge(org, "5.00")
        charge(org, "20.00")
        charge(org, "1.00")
    got = events(org, "spend_limit")
    assert [n for n, _p in got] == ["spend_limit_80", "spend_limit_100"]
    assert got[0][1] == {"level": 80, "limit": "100.00", "spent": "80.10", "currency": "USD",
                         "month": "2026-11"}
    assert got[1][1]["spent"] == "105.10"
    # In full: a call in progress settles past the limit, as at a zero balance.
    assert CreditAccount.objects.get(organization=org).balance == Decimal("393.90")
    subjects = sorted(m.subject for m in mail.outbox)
    assert "[Contoso] Monthly spend limit 80% used: $80.10 of $100.00" in subjects
    assert "[Contoso] Monthly spend limit reached: $105.10 of $100.00" in subjects
    french = [m for m in mail.outbox if m.to == ["alex@x.example"]]
    assert any("Limite de dépenses mensuelle atteinte" in m.subject for m in french)
    assert any("/billing/communications-credits/spend-limit/" in m.body for m in french)
    charge(org, "90.00", at=datetime(2026, 12, 2, tzinfo=UTC))
    assert [n for n, _p in events(org, "spend_limit")][-1] == "spend_limit_80"
    assert events(org, "spend_limit")[-1][1]["month"] == "2026-12"


def test_example_person_limit_alert_names_the_person(org, admins,
                                                    django_capture_on_commit_callbacks):
    """Person limit 20.00: 15.99 spent is 79 %, a call of 0.01 makes 16.00 (80 %)."""
    funded_account(org, "500.00")
    ann = PersonFactory(organization=org, display_name="Ann Caller", upn="ann@contoso.com")
    person_spend_limit_set(person=ann, monthly_limit="20", actor="test", now=NOW)
    with django_capture_on_commit_callbacks(execute=True):
        charge(org, "15.99", person=ann)
        charge(org, "50.00")  # someone else's spend is not Ann's
        assert events(org, "person_limit") == []
        charge(org, "0.01", person=ann)
    ((name, payload),) = events(org, "person_limit")
    assert name == "person_limit_80"
    assert payload["person_name"] == "Ann Caller" and payload["spent"] == "16.00"
    english = next(m for m in mail.outbox if m.to == ["megan@x.example"])
    assert "Ann Caller spent $16.00" in english.body
    assert f"/users/{ann.pk}/licenses/" in english.body


def test_a_limit_set_below_the_months_spend_tells_the_level_reached(org, admins):
    funded_account(org, "500.00")
    charge(org, "90.00", at=datetime.now(UTC))
    spend_limit_set(organization=org, monthly_limit="100", actor="test")
    assert [n for n, _p in events(org, "spend_limit")] == ["spend_limit_80"]
    spend_limit_set(organization=org, monthly_limit="50", actor="test")
    spend_limit_set(organization=org, monthly_limit="40", actor="test")  # told already
    assert [n for n, _p in events(org, "spend_limit")] == ["spend_limit_80", "spend_limit_100"]


# --- services ------------------------------------------------------------------------------


def test_setting_the_org_limit_is_audited_and_off_clears_it(org):
    spend_limit_set(organization=org, monthly_limit="250.50", actor="support")
    assert CreditAccount.objects.get(organization=org).monthly_spend_limit == Decimal("250.50")
    spend_limit_set(organization=org, monthly_limit="off", actor="support")
    assert CreditAccount.objects.get(organization=org).monthly_spend_limit is None
    changes = [a.changes for a in AuditEntry.objects.filter(action="credits.spend_limit")
               .order_by("id")]
    assert changes == [{"monthly_spend_limit": {"from": None, "to": "250.50"}},
                       {"monthly_spend_limit": {"from": "250.50", "to": None}}]


def test_a_bad_limit_is_refused_and_nothing_changes(org):
    spend_limit_set(organization=org, monthly_limit="100", actor="support")
    with pytest.raises(ServiceError) as exc:
        spend_limit_set(organization=org, monthly_limit="-1", actor="support")
    assert exc.value.field == "monthly_limit"
    assert CreditAccount.objects.get(organization=org).monthly_spend_limit == Decimal("100.00")


def test_bulk_person_limits_all_or_nothing(org, other_org):
    a, b = PersonFactory(organization=org), PersonFactory(organization=org)
    stranger = PersonFactory(organization=other_org)
    n = people_spend_limit_set(organization=org, people_ids=[a.pk, b.pk, stranger.pk],
                               monthly_limit="30", actor="admin")
    assert n == 2
    a.refresh_from_db(), stranger.refresh_from_db()
    assert a.credits_monthly_limit == Decimal("30.00") and stranger.credits_monthly_limit is None
    assert AuditEntry.objects.filter(action="person.credits_monthly_limit").count() == 2


# --- people CSV ----------------------------------------------------------------------------


def test_people_csv_column_sets_clears_and_rejects_limits(org):
    kept = PersonFactory(organization=org, upn="kept@contoso.com",
                         credits_monthly_limit=Decimal("9"))
    cleared = PersonFactory(organization=org, upn="cleared@contoso.com",
                            credits_monthly_limit=Decimal("9"))
    data = ("userPrincipalName,displayName,email,usageLocation,preferredLanguage,roles,"
            "licenses,creditsMonthlyLimit\n"
            "new@contoso.com,New Person,,US,en,,,75.50\n"
            "cleared@contoso.com,Cleared,,,,,,\n"
            "bad@contoso.com,Bad Limit,,US,en,,,12.345\n")
    report = import_csv(organization=org, data=data, actor=Actor.system("test"))
    assert [r.ok for r in report.rows] == [True, True, False]
    assert "creditsMonthlyLimit: at most 2 decimal places" in report.rows[2].message
    assert org.people.get(upn="new@contoso.com").credits_monthly_limit == Decimal("75.50")
    cleared.refresh_from_db(), kept.refresh_from_db()
    assert cleared.credits_monthly_limit is None
    assert kept.credits_monthly_limit == Decimal("9.00")  # not in the file
    assert not org.people.filter(upn="bad@contoso.com").exists()
    # A file without the column leaves limits alone.
    import_csv(organization=org, data="userPrincipalName,displayName\nkept@contoso.com,Kept\n",
               actor=Actor.system("test"))
    kept.refresh_from_db()
    assert kept.credits_monthly_limit == Decimal("9.00")


# --- command -------------------------------------------------------------------------------


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("set_spend_limit", *args, stdout=out, stderr=err)
        code = 0
    except CommandError as exc:
        return exc.returncode, out.getvalue(), str(exc)
    return code, out.getvalue(), err.getvalue()


def test_set_spend_limit_command(org):
    funded_account(org, "100.00")
    charge(org, "12.30", at=datetime.now(UTC))
    ann = PersonFactory(organization=org, upn="ann@contoso.com")
    code, out, _err = run("--org", org.slug, "--monthly", "50")
    month = datetime.now(UTC).strftime("%Y-%m")
    assert (code, out.strip().splitlines()[-1]) == (
        0, f"monthly spend limit: 50.00 USD (spent in {month}: 12.30 USD, 24%)")
    code, out, _err = run("--org", org.slug, "--person", "ANN@contoso.com", "--monthly", "5")
    assert code == 0 and "monthly credits limit of ann@contoso.com: 5.00 USD" in out
    ann.refresh_from_db()
    assert ann.credits_monthly_limit == Decimal("5.00")
    code, out, _err = run("--org", org.slug, "--monthly", "off")
    assert code == 0 and out.startswith("monthly spend limit: off")
    assert run("--org", "nope", "--monthly", "5")[0] == 2
    assert run("--org", org.slug, "--person", "who@x", "--monthly", "5")[0] == 2
    code, _out, err = run("--org", org.slug, "--monthly", "lots")
    assert code == 2 and "--monthly" in err
    assert CreditAccount.objects.get(organization=org).monthly_spend_limit is None


# --- pages ---------------------------------------------------------------------------------


def test_credits_page_home_card_and_limit_page_show_spend_against_the_limit(
        org, client_for, make_person):
    funded_account(org, "500.00")
    billing = make_person("billing_administrator")
    charge(org, "85.00", at=datetime.now(UTC))
    client = client_for(billing)
    response = client.post("/billing/communications-credits/spend-limit/",
                           {"monthly_limit": "100"})
    assert response.status_code == 302
    page = client.get("/billing/communications-credits/").content.decode()
    assert "$85.00 of $100.00 spent this month (85%)" in page
    assert "calls in progress can carry it past the limit" in page
    home = client.get("/").content.decode()
    assert "Spent this month: $85.00 of the $100.00 monthly limit (85%)." in home
    limit_page = client.get("/billing/communications-credits/spend-limit/").content.decode()
    assert "85% of the monthly spend limit is used." in limit_page
    assert "maxDurationSeconds" in limit_page
    bad = client.post("/billing/communications-credits/spend-limit/", {"monthly_limit": "-3"})
    assert bad.status_code == 400 and "cannot be negative" in bad.content.decode()
    assert CreditAccount.objects.get(organization=org).monthly_spend_limit == Decimal("100.00")


def test_french_limit_page(org, client_for, make_person):
    billing = make_person("billing_administrator", preferred_language="fr")
    client = client_for(billing)
    page = client.get("/billing/communications-credits/spend-limit/",
                      HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Limite de dépenses mensuelle" in page


def test_a_reader_sees_but_cannot_change_the_org_limit(org, client_for, make_person):
    reader = make_person("global_reader")
    client = client_for(reader)
    assert client.get("/billing/communications-credits/spend-limit/").status_code == 200
    assert client.post("/billing/communications-credits/spend-limit/",
                       {"monthly_limit": "1"}).status_code == 403
    assert CreditAccount.objects.filter(organization=org,
                                        monthly_spend_limit__isnull=False).count() == 0


def test_person_limit_on_licenses_page_and_in_bulk(org, client_for, make_person):
    admin = make_person("license_administrator")
    ann = PersonFactory(organization=org, display_name="Ann Caller")
    bob = PersonFactory(organization=org, display_name="Bob Caller")
    client = client_for(admin)
    r = client.post(f"/users/{ann.pk}/limit/", {"monthly_limit": "40"})
    assert r.status_code == 302
    page = client.get(f"/users/{ann.pk}/licenses/").content.decode()
    assert "$0.00 of $40.00 spent this month (0%)" in page
    r = client.post("/users/bulk/limit/", {"monthly_limit": "25.5", "people": [ann.pk, bob.pk],
                                           "action": "assign", "sku": "MCOPSTNC"})
    assert r.status_code == 302
    ann.refresh_from_db(), bob.refresh_from_db()
    assert (ann.credits_monthly_limit, bob.credits_monthly_limit) == (Decimal("25.50"),
                                                                      Decimal("25.50"))
    assert not ann.licenses.exists()  # the limit button does not apply a product
    client.post("/users/bulk/limit/", {"monthly_limit": "", "people": [bob.pk]})
    bob.refresh_from_db()
    assert bob.credits_monthly_limit is None
    r = client.post("/users/bulk/limit/", {"monthly_limit": "x", "people": [ann.pk]},
                    follow=True)
    assert "enter an amount" in r.content.decode()
    ann.refresh_from_db()
    assert ann.credits_monthly_limit == Decimal("25.50")
    assert person_spend(person=ann, at=NOW).limit == Decimal("25.50")


def test_people_spend_filters_near_and_over(org):
    funded_account(org, "500.00")
    near = PersonFactory(organization=org, credits_monthly_limit=Decimal("10"))
    over = PersonFactory(organization=org, credits_monthly_limit=Decimal("10"))
    fine = PersonFactory(organization=org, credits_monthly_limit=Decimal("10"))
    charge(org, "8.00", person=near)
    charge(org, "10.00", person=over)
    charge(org, "7.99", person=fine)
    assert [p for p, _l in people_spend(organization=org, at=NOW, status="near")] == [over, near]
    assert [p for p, _l in people_spend(organization=org, at=NOW, status="over")] == [over]
