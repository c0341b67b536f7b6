"""The hot paths made fast (one-statement reads, COPY writes, rollups grouped by the
database) give the same answers as the plain ORM paths they replace."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum

from credits.models import CreditAccount, LedgerEntry, LicenseAssignment
from credits.selectors.billing import credit_balance
from credits.selectors.licenses import licenses_at
from credits.services.ledger import UsageCharge, credits_charge_usage_batch
from tests.factories import TEST_DECK_CSV, PersonFactory, graph_row, load_test_deck
from tests.usage.conftest import fund, licensed
from usage import rating
from usage.models import UsageDestinationRollup, UsagePersonDay, UsageRollup
from usage.rollups import rollups_rebuild
from usage.selectors import authorize_facts, person_for_call, rate_lookup
from usage.services import calls_ingest

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _one_by_one(org, upn, direction, digits, at):
    person = person_for_call(organization=org, upn=upn)
    if person is None:
        return None
    skus = licenses_at(organization=org, at=at, person_ids=[person[0]]).get(person[0],
                                                                              frozenset())
    rate = rate_lookup(organization=org, direction=direction, digits=digits, on=at.date())
    return person[0], person[1], skus, credit_balance(organization=org), rate


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
