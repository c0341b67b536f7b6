"""The hot paths made fast (one-statement reads, COPY writes, rollups grouped by the
database: usage.pg) give the same answers as the plain ORM paths they replace. The parity
tests run both versions on the same input (the portable one by making `pg.available` say
no) and compare what they store, read or write."""

import io
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Sum

from credits import products
from credits.models import CreditAccount, LedgerEntry, LicenseAssignment, MinutePool
from credits.platform.services import Actor
from credits.selectors.billing import credit_balance
from credits.selectors.licenses import PoolCapacity, licenses_at, pool_facts
from credits.selectors.spend_limits import spend_facts
from credits.services.ledger import UsageCharge, credits_charge_usage_batch
from credits.services.licenses import pool_key_for
from credits.services.spend_limits import person_spend_limit_set, spend_limit_set
from tests.conftest import requires_postgres
from tests.factories import (
    TEST_DECK_CSV,
    PersonFactory,
    call_record,
    graph_row,
    load_test_deck,
)
from tests.usage.conftest import fund, licensed
from usage import exports, pg, rating, report, services
from usage.models import CallRecord, UsageDestinationRollup, UsagePersonDay, UsageRollup
from usage.records import COLUMNS, CallRecordRow
from usage.rollups import rollups_add_calls, rollups_rebuild
from usage.selectors import (
    authorize_facts,
    authorize_read,
    person_for_call,
    rate_deck_for,
)
from usage.services import api_token_create, api_token_revoke, calls_ingest

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _one_by_one(org, upn, direction, digits, at, pool_kinds=()):
    person = person_for_call(organization=org, upn=upn)
    if person is None:
        return None
    skus = licenses_at(organization=org, at=at, person_ids=[person[0]]).get(person[0],
                                                                              frozenset())
    rate = rate_deck_for(organization=org).lookup(direction, digits, at.date())
    country = (person[1] or org.country).upper()
    return (person[0], person[1], skus, credit_balance(organization=org), rate,
            *spend_facts(organization=org, person_id=person[0], at=at), country,
            *pool_facts(organization=org, kinds=pool_kinds, country=country, at=at),
            tuple(pool_kinds))


def test_authorize_facts_read_what_the_one_by_one_selectors_read(org):
    load_test_deck(org)
    alice = licensed(PersonFactory(organization=org, upn="Alice@Contoso.com",
                                   usage_location="FR"), "MCOEV", "MCOPSTN1", "MCOPSTNC")
    # A license removed before the instant and one assigned after it do not count.
    LicenseAssignment.objects.filter(person=alice, sku="MCOPSTN1").update(
        removed_at=AT - timedelta(hours=1))
    LicenseAssignment.objects.filter(person=alice, sku="MCOEV").update(
        assigned_at=AT + timedelta(hours=1))
    for case in [("alice@contoso.com", rating.OUTBOUND, "33123456789"),
                 ("ALICE@CONTOSO.COM", rating.OUTBOUND, "336123456789"),
                 ("alice@contoso.com", rating.INBOUND_TOLL_FREE, "18005550100"),
                 ("alice@contoso.com", rating.OUTBOUND, "999123")]:
        # No credit account yet, then a funded one.
        for _funded in (False, True):
            facts = authorize_facts(organization=org, upn=case[0], direction=case[1],
                                    digits=case[2], at=AT)
            assert tuple(facts) == _one_by_one(org, *case, AT)
            if not CreditAccount.objects.filter(organization=org).exists():
                fund(org, "12.34")
    facts = authorize_facts(organization=org, upn="alice@contoso.com",
                            direction=rating.OUTBOUND, digits="33123456789", at=AT)
    assert facts.skus == frozenset({"MCOPSTNC"}) and facts.balance == Decimal("12.34")
    # The spend limits and the month's counters, in the same read.
    spend_limit_set(organization=org, monthly_limit="100", actor="test")
    person_spend_limit_set(person=alice, monthly_limit="7.50", actor="test")
    credits_charge_usage_batch(organization=org, charges=[
        UsageCharge(key="call:fp-1", amount=Decimal("1.25"), description="",
                    occurred_at=AT, person_id=alice.pk),
        UsageCharge(key="call:fp-2", amount=Decimal("2.00"), description="",
                    occurred_at=AT),
        UsageCharge(key="call:fp-3", amount=Decimal("4.00"), description="",
                    occurred_at=AT - timedelta(days=5))])  # October: another month
    case = ("alice@contoso.com", rating.OUTBOUND, "33123456789")
    facts = authorize_facts(organization=org, upn=case[0], direction=case[1],
                            digits=case[2], at=AT)
    assert tuple(facts) == _one_by_one(org, *case, AT)
    assert facts[5:9] == (Decimal("100.00"), Decimal("3.25"), Decimal("7.50"),
                         Decimal("1.25"))
    assert facts.rate.prefix == "33" and facts.rate.rate_per_minute == Decimal("0.02400")
    assert authorize_facts(organization=org, upn="nobody@contoso.com",
                           direction=rating.OUTBOUND, digits="33123456789", at=AT) is None


def test_authorize_facts_read_nothing_of_another_organization(org, other_org):
    load_test_deck(other_org, TEST_DECK_CSV.replace(",USD,", f",{other_org.currency},"))
    licensed(PersonFactory(organization=other_org, upn="bob@fabrikam.com"), "MCOPSTNC")
    fund(other_org, "50")
    assert authorize_facts(organization=org, upn="bob@fabrikam.com",
                           direction=rating.OUTBOUND, digits="33123456789", at=AT) is None
    licensed(PersonFactory(organization=org, upn="bob@fabrikam.com"), "MCOEV")
    facts = authorize_facts(organization=org, upn="bob@fabrikam.com",
                            direction=rating.OUTBOUND, digits="33123456789", at=AT)
    assert facts.skus == frozenset({"MCOEV"})
    assert facts.balance == Decimal("0.00") and facts.rate is None


def _rollups(org):
    def rows(model, *fields):
        return sorted(model.objects.filter(organization=org).values_list(
            *fields, "calls", "duration_s", "billable_s", "credit_s", "pool_minutes", "charge"))

    return (
        rows(UsageRollup, "day", "person_key", "upn", "call_type", "context", "charged_to",
             "capability", "user_name"),
        rows(UsagePersonDay, "day", "person_key", "upn", "user_name"),
        rows(UsageDestinationRollup, "day", "destination", "call_type", "context",
             "charged_to", "capability"),
    )


def test_ingestion_keeps_the_rollups_equal_to_a_rebuild_from_the_call_records(org):
    load_test_deck(org)
    fund(org, "100")
    alice = licensed(PersonFactory(organization=org, upn="alice@contoso.com",
                                   display_name="Alice", usage_location="US"),
                     "MCOEV", "MCOPSTN2", "MCOPSTNC")
    day2 = "2026-11-03T23:59:00Z"
    batches = [
        [graph_row("a1", userPrincipalName=alice.upn, userDisplayName="Alice",
                   destinationContext="Domestic", duration=300),
         graph_row("a2", userPrincipalName=alice.upn, userDisplayName="Alice",
                   calleeNumber="+33123456789", destinationContext="INTERNATIONAL",
                   destinationName="France", duration=4000),
         graph_row("x1", userPrincipalName="robot@contoso.com", userDisplayName="Robot",
                   destinationContext="somewhere", duration=61),
         graph_row("x2", userDisplayName="", duration=0),
         graph_row("u1", callType="teleport", duration=30)],
        [graph_row("a3", userPrincipalName=alice.upn, userDisplayName="Alice",
                   destinationContext="Domestic", duration=45),
         graph_row("a4", userPrincipalName=alice.upn, userDisplayName="Alice",
                   startDateTime=day2, calleeNumber="+447700900123",
                   destinationName="United Kingdom", duration=125),
         graph_row("x3", userPrincipalName="robot@contoso.com", userDisplayName="Robot",
                   startDateTime=day2, duration=7),
         graph_row("a1", userPrincipalName=alice.upn, duration=999)],  # a duplicate
    ]
    for rows in batches:
        calls_ingest(organization=org, rows=rows, source="api")
    ingested = _rollups(org)
    assert sum(r[-6] for r in ingested[0]) == 8  # calls, the duplicate not counted twice
    rollups_rebuild(organization=org)
    assert _rollups(org) == ingested


def test_a_usage_batch_writes_one_entry_per_new_key_and_keeps_the_sum(org):
    fund(org, "10.00")
    at = datetime(2026, 11, 2, tzinfo=UTC)

    def charge(key, amount):
        return UsageCharge(key=key, amount=Decimal(amount), description=f"call {key}",
                           occurred_at=at)

    with transaction.atomic():
        first = credits_charge_usage_batch(organization=org, charges=[
            charge("call:1", "1.25"), charge("call:2", "0.00"), charge("call:3", "9.50"),
            charge("call:1", "1.25")])
    assert first.charged_keys == ["call:1", "call:2", "call:3"]
    assert first.duplicate_keys == ["call:1"]
    assert first.total == Decimal("10.75") and first.balance_after == Decimal("-0.75")
    again = credits_charge_usage_batch(organization=org, charges=[
        charge("call:3", "9.50"), charge("call:4", "0.10")])
    assert again.charged_keys == ["call:4"] and again.duplicate_keys == ["call:3"]
    usage = list(LedgerEntry.objects.filter(organization=org, kind="usage")
                 .order_by("id").values_list("idempotency_key", "amount", "balance_after",
                                             "description", "actor_label", "occurred_at"))
    assert usage == [
        ("call:1", Decimal("-1.25"), Decimal("8.75"), "call call:1", "usage", at),
        ("call:3", Decimal("-9.50"), Decimal("-0.75"), "call call:3", "usage", at),
        ("call:4", Decimal("-0.10"), Decimal("-0.85"), "call call:4", "usage", at),
    ]
    account = CreditAccount.objects.get(organization=org)
    total = LedgerEntry.objects.filter(account=account).aggregate(s=Sum("amount"))["s"]
    assert account.balance == total == Decimal("-0.85")
    assert date(2026, 11, 2) == usage[0][5].date()


def _naive_lookup(rates, direction, digits, on):
    """Longest prefix first, then the newest row in effect: the deck's rule, spelt out."""
    for length in range(len(digits), 0, -1):
        rows = [r for r in rates if r.direction == direction and r.prefix == digits[:length]
                and r.effective_from <= on]
        if rows:
            return max(rows, key=lambda r: r.effective_from)
    return None


def test_the_rate_deck_lookup_memo_answers_as_the_rule_says_on_every_date():
    def rate(prefix, since, direction=rating.OUTBOUND):
        return rating.Rate(direction, prefix, prefix, "FR", "landline", Decimal("0.01"),
                           Decimal("0"), 60, 60, "USD", since)

    rates = [rate("33", date(2026, 1, 1)), rate("33", date(2026, 6, 1)),
             rate("331", date(2026, 3, 1)), rate("3312", date(2027, 1, 1)),
             rate("44", date(2026, 1, 1)), rate("1800", date(2026, 1, 1),
                                                rating.INBOUND_TOLL_FREE)]
    deck = rating.RateDeck(rates, "USD")
    numbers = ["33123456789", "331", "33", "3", "3312", "33999", "441234", "18005550100",
               "999"]
    days = [date(2025, 12, 31), date(2026, 2, 1), date(2026, 3, 1), date(2026, 7, 1),
            date(2027, 1, 1)]
    for _twice in range(2):  # the second pass reads the memo
        for direction in rating.DIRECTIONS:
            for digits in numbers:
                for day in days:
                    assert deck.lookup(direction, digits, day) == _naive_lookup(
                        rates, direction, digits, day), (direction, digits, day)
    assert deck.lookup(rating.OUTBOUND, "33123", date(2026, 7, 1)).prefix == "331"
    assert deck.lookup(rating.OUTBOUND, "33123", date(2026, 2, 1)).effective_from == \
        date(2026, 1, 1)


def test_ids_with_quotes_commas_and_braces_are_found_again_as_duplicates(org):
    load_test_deck(org)
    fund(org, "10")
    ids = ['a"b', "c\\d", "e,f", "{g}", "NULL", " h ", "é"]
    rows = [graph_row(i) for i in ids]
    first = calls_ingest(organization=org, rows=rows, source="api")
    assert (first.accepted, first.duplicates) == (len(ids), 0)
    again = calls_ingest(organization=org, rows=[graph_row(i) for i in ids], source="api")
    assert (again.accepted, again.duplicates, again.charged) == (0, len(ids), 0)
    charged = LedgerEntry.objects.filter(organization=org, kind="usage").count()
    assert charged == first.charged == len(ids)


def test_the_region_shortcuts_answer_as_phonenumbers_parse_for_shared_calling_codes():
    import random

    import phonenumbers

    def cc_len(digits):
        return next(n for n in (1, 2, 3)
                    if int(digits[:n]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)

    rng = random.Random(7)
    shared = [cc for cc, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items()
              if len(regions) > 1]
    numbers = []
    for cc in shared:
        for _ in range(1500):
            # National numbers of 1 to 12 digits, some starting with a national prefix.
            national = str(rng.randrange(1, 10)) + "".join(
                str(rng.randrange(10)) for _ in range(rng.randrange(0, 12)))
            numbers.append(str(cc) + national)
    # Real numbers of the shared codes, valid ones among them.
    numbers += ["12125550100", "14165550100", "18765550100", "112125550100", "447700900123",
                "441481712345", "441534712345", "441624712345", "79161234567", "77011234567",
                "390669812345", "4779123456", "358181234567", "6118311234567"]
    found = 0
    for digits in numbers:
        try:
            parsed = phonenumbers.parse("+" + digits)
        except phonenumbers.NumberParseException:
            expected = None
        else:
            expected = phonenumbers.region_code_for_number(parsed)
        assert rating._region_of_number(digits, cc_len(digits)) == expected, digits
        assert rating._region_of_number(digits) == expected, digits
        found += expected is not None
    assert len(numbers) > 10_000 and found > 1000


def test_number_validity_from_the_compiled_patterns_is_phonenumbers_verdict():
    """rating.is_valid_number decides most numbers without parse(): on every calling code,
    random national numbers (a national prefix or a leading zero among them) and each
    region's example numbers of every type, it answers as phonenumbers does."""
    import random

    import phonenumbers

    def verdict(digits):
        try:
            return phonenumbers.is_valid_number(phonenumbers.parse("+" + digits))
        except phonenumbers.NumberParseException:
            return False

    rng = random.Random(11)
    numbers = []
    for cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        for _ in range(150):
            national = "".join(str(rng.randrange(10)) for _ in range(rng.randrange(1, 13)))
            numbers.append(str(cc) + national)
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE,
                     phonenumbers.PhoneNumberType.TOLL_FREE,
                     phonenumbers.PhoneNumberType.PREMIUM_RATE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
                numbers += [e164[1:], e164[1:-1], e164[1:] + "1"]
    decided = valid = 0
    for digits in numbers:
        expected = verdict(digits)
        assert rating.is_valid_number(digits) == expected, digits
        fast = rating._valid_by_patterns(digits)
        assert fast in (None, expected), digits
        decided += fast is not None
        valid += expected
    # The shortcut is what answers: most numbers, valid ones among them, never parse.
    assert len(numbers) > 30_000 and valid > 1000 and decided > 0.7 * len(numbers)
    assert rating._valid_by_patterns("33123456789") is True
    assert rating._valid_by_patterns("12125550123") is True
    assert rating._valid_by_patterns("1212555012") is False


# --- each PostgreSQL fast path against its portable version, on the same input ----------


@pytest.fixture
def portable(monkeypatch):
    """Call `run()` with the portable versions chosen, on the same database."""

    def run(function, *args, **kwargs):
        with monkeypatch.context() as m:
            m.setattr(pg, "available", lambda: False)
            return function(*args, **kwargs)

    return run


_NAMES = ["", "Alice", 'Zoë "Z", Ünïcode', "a\\b\tc", "line\nbreak", "=1+2", "NULL"]
_CONTEXTS = ["Domestic", " INTERNATIONAL ", "", "other", "domestic"]
_PLACES = ["France", "", "Côte d'Ivoire, \"Abidjan\"", "x" * 100]


def _call_rows(org, person, count, seed) -> list[CallRecordRow]:
    """Calls of every shape ingestion stores: with and without a person, odd text, empty
    and long fields, NULL amounts and end times, several UTC days."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        record = call_record(
            org, person=person if i % 3 else None,
            start=AT + timedelta(minutes=37 * i, seconds=rng.randrange(60)),
            graph_id=f"{seed}-{i}-" + rng.choice(["", "é", '"q"', "{b}", "a,b"]),
            duration_s=rng.randrange(0, 5000), pool_minutes=rng.randrange(0, 50),
            upn=rng.choice(["aa@contoso.example", "Robot@Contoso.example", ""]),
            user_display_name=rng.choice(_NAMES), caller_number=rng.choice(
                ["+14255550100", "", "4255550100", "+33 1 23 45 67 89"]),
            callee_number=rng.choice(["+33123456789", "", "911", "+447700900123"]),
            call_type=rng.choice(["user_out", "user_in", "emergency", "teleport"]),
            destination_context=rng.choice(_CONTEXTS), destination_name=rng.choice(_PLACES),
            charged_to=rng.choice(["credits", "pool", ""]),
            capability=rng.choice(["MCOPSTNPP", "", "MCOPSTN1"]),
            charge=Decimal(rng.randrange(0, 10**6)) / 100,
            connection_fee=Decimal(rng.randrange(0, 10**5)) / 100000,
            rate_per_minute=rng.choice([None, Decimal("0.02400")]),
            reported_charge=rng.choice([None, Decimal("1.23456")]),
            end_at=None if i % 5 == 0 else AT + timedelta(minutes=37 * i + 90),
        )
        record.ingested_at = AT
        rows.append(CallRecordRow(*(getattr(record, f) for f in COLUMNS)))
    return rows


def _stored(org):
    return list(CallRecord.objects.filter(organization=org).order_by("graph_id")
                .values_list(*COLUMNS))


@requires_postgres
def test_copy_call_records_stores_what_bulk_create_stores(org, portable):
    person = PersonFactory(organization=org, upn="alice@contoso.com")
    rows = _call_rows(org, person, 300, "copy")
    services._insert(rows)
    fast = _stored(org)
    CallRecord.objects.filter(organization=org).delete()
    portable(services._insert, rows)
    assert _stored(org) == fast and len(fast) == 300


def _rollups_both_ways(org, portable, rows):
    """The rollups of `rows` (stored) added by the database (`pg.rollups_add_stored`), by
    Python with the one-statement upsert, and by Python with the portable upsert."""
    services._insert(rows)
    halves = (rows[:170], rows[170:])  # the second half adds to the first's rows

    def add_stored():
        for half in halves:
            pg.rollups_add_stored(organization=org, graph_ids=[r.graph_id for r in half])

    def add_calls():
        for half in halves:
            rollups_add_calls(organization=org, records=half)

    results = []
    for run in (add_stored, add_calls, lambda: portable(add_calls)):
        for model in (UsageRollup, UsagePersonDay, UsageDestinationRollup):
            model.objects.filter(organization=org).delete()
        run()
        results.append(_rollups(org))
    return results


def _without_person_day_names(rollups):
    people, person_days, places = rollups
    return people, [r[:3] + r[4:] for r in person_days], places


@requires_postgres
def test_rollups_added_by_the_database_equal_those_added_in_python(org, portable):
    person = PersonFactory(organization=org, upn="alice@contoso.com")
    results = _rollups_both_ways(org, portable, _call_rows(org, person, 400, "roll"))
    fast, python, plain = (_without_person_day_names(r) for r in results)
    assert fast == python == plain
    assert results[1] == results[2]
    assert sum(r[-6] for r in results[0][0]) == 400


@requires_postgres
def test_the_person_day_name_is_the_same_both_ways(org, portable):
    person = PersonFactory(organization=org, upn="alice@contoso.com")
    results = _rollups_both_ways(org, portable, _call_rows(org, person, 400, "names"))
    assert results[0][1] == results[1][1]


@requires_postgres
def test_authorize_facts_in_one_query_equal_the_selectors_one_by_one(org, portable):
    load_test_deck(org)
    alice = licensed(PersonFactory(organization=org, upn="Alice@Contoso.com",
                                   usage_location="FR"), "MCOEV", "MCOPSTN1", "MCOPSTNC")
    LicenseAssignment.objects.filter(person=alice, sku="MCOPSTN1").update(
        removed_at=AT - timedelta(hours=1))
    cases = [(upn, direction, digits)
             for upn in ("alice@contoso.com", " ALICE@contoso.COM ", "nobody@contoso.com")
             for direction in rating.DIRECTIONS
             for digits in ("33123456789", "336123456789", "18005550100", "999123", "", "3")]
    for funded in (False, True):
        if funded:
            fund(org, "7.77")
        for upn, direction, digits in cases:
            kwargs = dict(organization=org, upn=upn, direction=direction, digits=digits)
            for at in (AT, AT - timedelta(days=400)):
                fast = authorize_facts(**kwargs, at=at)
                assert fast == portable(authorize_facts, **kwargs, at=at), (kwargs, at)


def _pools_org(org):
    """People and pools around AT: plan seats in the US and in France, one removed before
    AT and one assigned after it, conferencing seats in two countries, and the month's
    (and the month before's) minutes used."""
    load_test_deck(org)
    us = [licensed(PersonFactory(organization=org, upn=f"us{i}@contoso.com",
                                 usage_location="US"), "MCOEV", "MCOPSTN1", "MCOMEETADD")
          for i in range(3)]
    licensed(PersonFactory(organization=org, upn="fr@contoso.com", usage_location="FR"),
             "MCOEV", "MCOPSTN2", "MCOMEETADD")
    licensed(PersonFactory(organization=org, upn="plain@contoso.com", usage_location=""),
             "MCOEV", "MCOPSTNC")
    LicenseAssignment.objects.filter(person=us[1], sku="MCOPSTN1").update(
        removed_at=AT - timedelta(hours=1))
    LicenseAssignment.objects.filter(person=us[2], sku="MCOMEETADD").update(
        assigned_at=AT + timedelta(hours=1))
    month = date(AT.year, AT.month, 1)
    for kind, country, used, when in [("domestic", "US", 100, month),
                                      ("international", "US", 5, month),
                                      ("conference", "", 30, month),
                                      ("domestic", "FR", 7, month),
                                      ("domestic", "US", 999, date(2026, 10, 1))]:
        MinutePool.objects.create(organization=org, kind=kind, country=country, month=when,
                                  used_minutes=used)
    fund(org, "20")


def test_authorize_facts_read_the_pools_of_the_call(org):
    _pools_org(org)
    kinds = rating.pool_kinds_for("user_out")
    assert kinds == ("domestic", "international")
    assert rating.pool_kinds_for("conf_out") == ("conference",)
    assert rating.pool_kinds_for("user_in") == rating.pool_kinds_for("nonsense") == ()
    facts = authorize_facts(organization=org, upn="us0@contoso.com",
                            direction=rating.OUTBOUND, digits="12125550123", at=AT,
                            pool_kinds=kinds)
    assert tuple(facts) == _one_by_one(org, "us0@contoso.com", rating.OUTBOUND,
                                       "12125550123", AT, kinds)
    # us1's plan was removed before AT: two US plan seats; FR's plan is not the US pool's.
    assert facts.pool_country == "US" and facts.pool_seats == {"MCOPSTN1": 2}
    assert facts.pool_used == {"domestic": 100, "international": 5}
    for kind in kinds:
        key = pool_key_for(kind=kind, country="US", at=AT)
        assert facts.pool_minutes_left(key) == max(
            0, PoolCapacity(org, {key}).at(key, AT) - facts.pool_used.get(kind, 0))
    assert facts.pool_minutes_left(pool_key_for(kind="domestic", country="US", at=AT)) == \
        2 * products.included_minutes("MCOPSTN1", "domestic", "US") - 100
    # Not about another country's pool, nor about a kind it did not read.
    assert facts.pool_minutes_left(pool_key_for(kind="domestic", country="FR", at=AT)) is None
    assert facts.pool_minutes_left(pool_key_for(kind="conference", country="", at=AT)) is None
    # The conferencing pool: its seats wherever their holders are (us2's comes after AT).
    conf = authorize_facts(organization=org, upn="plain@contoso.com",
                           direction=rating.OUTBOUND, digits="12125550123", at=AT,
                           pool_kinds=("conference",))
    assert conf.pool_seats == {"MCOMEETADD": 3} and conf.pool_used == {"conference": 30}
    # No usage location: the organization's country.
    assert conf.pool_country == org.country.upper()
    key = pool_key_for(kind="conference", country="", at=AT)
    assert conf.pool_minutes_left(key) == PoolCapacity(org, {key}).at(key, AT) - 30


@requires_postgres
def test_authorize_pool_facts_in_one_query_equal_the_selectors(org, portable):
    _pools_org(org)
    for upn in ("us0@contoso.com", "US1@contoso.com", "fr@contoso.com", "plain@contoso.com",
                "nobody@contoso.com"):
        for kinds in ((), ("conference",), ("domestic", "international")):
            for at in (AT, AT - timedelta(days=31), AT + timedelta(hours=2)):
                kwargs = dict(organization=org, upn=upn, direction=rating.OUTBOUND,
                              digits="12125550123", at=at, pool_kinds=kinds)
                assert authorize_facts(**kwargs) == portable(authorize_facts, **kwargs), \
                    kwargs


def test_authorize_read_is_the_token_and_the_facts_of_its_organization(org, other_org):
    _pools_org(org)
    licensed(PersonFactory(organization=other_org, upn="bob@fabrikam.com"), "MCOPSTNC")
    token, raw = api_token_create(organization=org, name="pbx", actor=Actor.system("test"))
    _other, other_raw = api_token_create(organization=other_org, name="pbx",
                                         actor=Actor.system("test"))
    args = dict(direction=rating.OUTBOUND, digits="12125550123", at=AT,
                pool_kinds=("domestic", "international"))
    found, facts = authorize_read(raw_token=raw, upn=" US0@contoso.com", **args)
    assert found == token and found.organization == org
    assert facts == authorize_facts(organization=org, upn="us0@contoso.com", **args)
    # A person of another organization is nobody here, and the other way round.
    assert authorize_read(raw_token=raw, upn="bob@fabrikam.com", **args) == (token, None)
    other_found, other_facts = authorize_read(raw_token=other_raw, upn="us0@contoso.com",
                                              **args)
    assert other_found.organization == other_org and other_facts is None
    # Unknown, empty, oversized and revoked tokens find nothing.
    for bad in ("", "x" * 201, raw + "x", raw.upper()):
        assert authorize_read(raw_token=bad, upn="us0@contoso.com", **args) == (None, None)
    api_token_revoke(token=token, actor=Actor.system("test"))
    assert authorize_read(raw_token=raw, upn="us0@contoso.com", **args) == (None, None)


def _csv_both_ways(organization, portable):
    """(text, rows counted) of the CSV export made by PostgreSQL, then made in Python."""
    filters = report.ReportFilters(start=date(2026, 10, 1), end=date(2026, 12, 31),
                                   range="custom")
    job = exports.ExportJob(organization, filters, AT, 7, "test")
    fast, slow = io.BytesIO(), io.BytesIO()
    done = pg.export_csv_copy(fast, exports._calls(job), mask_digits=job.mask_digits,
                              currency=job.currency, tick=exports._Progress(None))
    slow_done = portable(exports._csv_python, slow, job, exports._Progress(None))
    return (fast.getvalue(), done), (slow.getvalue(), slow_done)


@requires_postgres
def test_the_csv_made_by_postgresql_is_the_csv_made_in_python(org, other_org, portable):
    for organization in (org, other_org):  # a country with masked numbers, one without
        services._insert(_call_rows(organization, None, 250, f"csv-{organization.pk}"))
        (fast, fast_done), (slow, slow_done) = _csv_both_ways(organization, portable)
        assert fast == slow and slow_done == 250


@requires_postgres
def test_the_csv_rows_are_counted_alike_when_a_field_holds_a_line_break(org, portable):
    rows = _call_rows(org, None, 20, "nl")
    services._insert([r._replace(user_display_name="line\nbreak") for r in rows])
    (fast, fast_done), (slow, slow_done) = _csv_both_ways(org, portable)
    assert fast == slow and fast_done == slow_done == 20


@pytest.mark.parametrize("cut", range(1, 12))
def test_rows_are_counted_by_their_ends_outside_quotes_wherever_a_block_is_cut(cut):
    from usage.pg import _row_ends

    text = b'a,"x\ny",1\n"q""\n",2\nb,c,3\n'
    first, quoted = _row_ends(text[:cut], False)
    assert first + _row_ends(text[cut:], quoted)[0] == 3
