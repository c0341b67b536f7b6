"""The Communications Credits pages: what a billing administrator sees and does."""

import re
from decimal import Decimal

import pytest
from django.core.management import call_command

from credits.models import (
    AuditEntry,
    CreditAccount,
    DomainEvent,
    Invoice,
    LedgerEntry,
    PaymentMethod,
)
from credits.services.purchases import credits_purchase
from credits.services.recharges import auto_recharge_configure
from tests.factories import funded_account, saved_card

CC = "/billing/communications-credits/"


@pytest.fixture
def billing_admin(make_person):
    return make_person("billing_administrator", display_name="Alex Wilber")


@pytest.fixture
def bclient(client, billing_admin):
    client.force_login(billing_admin.user)
    return client


@pytest.mark.django_db
def test_overview_shows_balance_auto_recharge_and_days_left(bclient, org):
    card = saved_card(org)
    funded_account(org, "1234.50")
    auto_recharge_configure(organization=org, enabled=True, amount=100, trigger=50,
                            payment_method=card, actor="tests")
    page = bclient.get(CC).content.decode()
    assert "$1,234.50" in page
    assert "Add $100 when the balance is below $50." in page
    assert "Visa •••• 4242" in page
    assert "No usage in the last 30 days." in page


@pytest.mark.django_db
def test_overview_in_french_formats_money_the_french_way(client, make_person, org):
    person = make_person("billing_administrator", preferred_language="fr")
    client.force_login(person.user)
    funded_account(org, "1234.50")
    page = client.get(CC).content.decode()
    assert "1\u202f234,50\xa0$US" in page or "1 234,50 $US" in page or "1\xa0234,50\xa0$US" in page


@pytest.mark.django_db
def test_add_funds_needs_a_confirmation_before_charging(bclient, org, billing_admin):
    card = saved_card(org)
    response = bclient.post(f"{CC}add-funds/", {"amount": "150", "payment_method": card.pk,
                                                "request_key": "abc"})
    assert response.status_code == 200
    assert "Place order" in response.content.decode()
    assert not LedgerEntry.objects.exists()
    response = bclient.post(f"{CC}add-funds/confirm/", {
        "amount": "150", "payment_method": card.pk, "request_key": "abc"})
    invoice = Invoice.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/billing/invoices/{invoice.pk}/"
    assert CreditAccount.objects.get(organization=org).balance == Decimal("150.00")
    audit = AuditEntry.objects.get(action="credits.purchase")
    assert audit.actor == billing_admin
    # Submitting the same confirmation again buys nothing more.
    bclient.post(f"{CC}add-funds/confirm/", {"amount": "150", "payment_method": card.pk,
                                             "request_key": "abc"})
    assert CreditAccount.objects.get(organization=org).balance == Decimal("150.00")
    page = bclient.get(f"/billing/invoices/{invoice.pk}/").content.decode()
    assert invoice.number in page and "$150.00" in page


@pytest.mark.django_db
@pytest.mark.parametrize("amount,message", [
    ("49", "Amount must be at least 50."),
    ("100001", "Amount must be at most 100,000."),
    ("75.50", "Amount must be a whole number, without cents."),
    ("abc", "Amount: enter a whole number"),
    ("", "Amount: enter how much to add."),
])
def test_add_funds_explains_each_rejection_naming_the_field(bclient, org, amount, message):
    card = saved_card(org)
    response = bclient.post(f"{CC}add-funds/", {"amount": amount, "payment_method": card.pk})
    page = response.content.decode()
    assert message in page
    assert 'aria-invalid="true"' in page
    assert re.search(r'aria-describedby="[^"]*id_amount_error', page)


@pytest.mark.django_db
def test_a_declined_purchase_shows_its_reason_and_changes_nothing(bclient, org):
    card = saved_card(org, "4000000000009995")
    response = bclient.post(f"{CC}add-funds/confirm/", {"amount": "100", "payment_method": card.pk,
                                                        "request_key": "k"})
    page = response.content.decode()
    assert "The card has insufficient funds." in page
    assert "Nothing was charged" in page
    assert not LedgerEntry.objects.exists()
    assert DomainEvent.objects.filter(name="recharge_failed").count() == 1
    assert "Failed" in bclient.get("/billing/bills/").content.decode()


@pytest.mark.django_db
def test_add_funds_page_recommends_starting_at_50_without_history(bclient, org):
    saved_card(org)
    page = bclient.get(f"{CC}add-funds/").content.decode()
    assert "Start low, at the $50 minimum" in page


@pytest.mark.django_db
def test_recommended_amounts_follow_recent_spend(org):
    from datetime import UTC, datetime, timedelta

    from credits.selectors.billing import recommended_amounts
    from credits.services.ledger import UsageCharge, credits_charge_usage_batch

    funded_account(org, "1000")
    now = datetime.now(UTC)
    credits_charge_usage_batch(organization=org, charges=[
        UsageCharge(key=f"d{i}", amount=Decimal("10"), description="",
                    occurred_at=now - timedelta(days=i)) for i in range(1, 31)])
    rec = recommended_amounts(organization=org, now=now)
    assert rec["has_history"] and rec["daily"] == Decimal("10.00")  # 300 over 30 days
    assert rec["trigger"] == Decimal("70") and rec["amount"] == Decimal("300")


@pytest.mark.django_db
@pytest.mark.parametrize("changes,says", [
    ({"billing_region": "FR"}, "Open a support request"),
    ({"billing_account_type": "partner"}, "through a partner"),
    ({"billing_account_type": "mca"}, "post-paid"),
])
def test_organizations_that_may_not_buy_see_why_instead_of_the_forms(bclient, org, changes, says):
    for k, v in changes.items():
        setattr(org, k, v)
    org.save()
    for url in (CC, f"{CC}add-funds/", f"{CC}auto-recharge/"):
        page = bclient.get(url).content.decode()
        assert says in page, url
        assert 'name="amount"' not in page


@pytest.mark.django_db
def test_support_request_is_recorded(bclient, org):
    org.billing_region = "FR"
    org.save()
    response = bclient.post(f"{CC}support-request/", {"message": "Please enable credits."})
    assert response.status_code == 302
    assert AuditEntry.objects.filter(action="support_request.create").exists()


@pytest.mark.django_db
def test_auto_recharge_form_saves_and_explains_rejections(bclient, org):
    funded_account(org, "100.00")  # above the trigger: saving charges nothing now
    card = saved_card(org)
    response = bclient.post(f"{CC}auto-recharge/", {"enabled": "on", "amount": "20",
                                                   "trigger": "50.5", "payment_method": card.pk})
    page = response.content.decode()
    assert "Add this amount must be at least 50." in page
    assert "When balance is below must be a whole number" in page
    response = bclient.post(f"{CC}auto-recharge/", {"enabled": "on", "amount": "100",
                                                   "trigger": "50", "payment_method": card.pk})
    assert response.status_code == 302
    account = CreditAccount.objects.get(organization=org)
    assert account.auto_recharge_enabled and account.auto_recharge_amount == Decimal(100)
    assert AuditEntry.objects.filter(action="credits.auto_recharge").exists()


@pytest.mark.django_db
def test_adding_a_card_keeps_only_token_brand_last4_and_expiry(bclient, org):
    response = bclient.post(f"{CC}payment-methods/", {
        "number": "4242 4242 4242 4242", "exp_month": "12", "exp_year": "2031", "cvc": "321"})
    assert response.status_code == 302
    card = PaymentMethod.objects.get()
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("Visa", "4242", 12, 2031)
    # Text columns only, and the CVC as a whole value: a timestamp's microseconds or the
    # random token may well contain "321".
    texts = [v for v in card.__dict__.values() if isinstance(v, str)]
    assert not any("4242424242424242" in v for v in texts) and "321" not in texts
    assert not {f.name for f in PaymentMethod._meta.get_fields()} & {"number", "cvc"}
    assert AuditEntry.objects.filter(action="payment_method.add").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("number,month,year,message", [
    ("4242424242424241", "12", "2031", "Card number: this is not a valid card number"),
    ("4242424242424242", "1", "2025", "Expiry year: choose a year from the list"),
    ("4000000000000002", "12", "2031", "The bank declined the card."),
    ("4000000000000127", "12", "2031", "The card's security code (CVC) is incorrect."),
])
def test_card_form_rejects_bad_cards(bclient, org, number, month, year, message):
    response = bclient.post(f"{CC}payment-methods/", {
        "number": number, "exp_month": month, "exp_year": year, "cvc": "123"})
    assert response.status_code == 200
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not PaymentMethod.objects.exists()


@pytest.mark.django_db
def test_transactions_list_every_entry_newest_first_with_balance_after(bclient, org):
    card = saved_card(org)
    credits_purchase(organization=org, amount=100, payment_method=card, actor="t")
    from datetime import UTC, datetime

    from credits.services.ledger import UsageCharge, credits_charge_usage_batch

    credits_charge_usage_batch(organization=org, charges=[UsageCharge(
        key="c", amount=Decimal("2.50"), description="user_out +33 1",
        occurred_at=datetime.now(UTC))])
    page = bclient.get(f"{CC}transactions/").content.decode()
    assert page.index("user_out +33 1") < page.index("Communications Credits purchase")
    assert "$97.50" in page and "$100.00" in page


@pytest.mark.django_db
def test_another_organizations_invoice_is_not_found(bclient, other_org):
    card = saved_card(other_org)
    attempt = credits_purchase(organization=other_org, amount=50, payment_method=card,
                               actor="t")
    assert bclient.get(f"/billing/invoices/{attempt.invoice.pk}/").status_code == 404
    assert bclient.post(f"{CC}payment-methods/{card.pk}/remove/").status_code == 404


@pytest.mark.django_db
def test_readers_see_the_pages_but_cannot_buy(client, make_person, org):
    reader = make_person("global_reader")
    client.force_login(reader.user)
    assert client.get(CC).status_code == 200
    assert client.get(f"{CC}transactions/").status_code == 200
    assert client.get(f"{CC}add-funds/").status_code == 403
    card = saved_card(org)
    assert client.post(f"{CC}add-funds/confirm/", {"amount": "50", "payment_method": card.pk}
                       ).status_code == 403
    assert client.post(f"{CC}auto-recharge/", {"enabled": "on"}).status_code == 403


@pytest.mark.django_db
def test_home_card_shows_balance_auto_recharge_state_and_add_funds(bclient, org):
    funded_account(org, "42.00")
    page = bclient.get("/").content.decode()
    assert "$42.00" in page and "Auto-recharge is off." in page
    assert f'href="{CC}add-funds/"' in page


@pytest.mark.django_db
def test_transactions_page_query_count_is_bounded(bclient, org, django_assert_max_num_queries):
    funded_account(org, "10")
    from datetime import UTC, datetime

    from credits.services.ledger import UsageCharge, credits_charge_usage_batch

    credits_charge_usage_batch(organization=org, charges=[UsageCharge(
        key=f"k{i}", amount=Decimal("0.10"), description="", occurred_at=datetime.now(UTC))
        for i in range(40)])
    with django_assert_max_num_queries(12):
        bclient.get(f"{CC}transactions/")


@pytest.mark.django_db
def test_add_funds_command_goes_through_the_gateway_and_prints_the_balance(org, capsys):
    call_command("add_funds", "--org", org.slug, "--amount", "75", "--card", "4242424242424242")
    out = capsys.readouterr().out
    assert "balance: 75.00 USD" in out
    call_command("add_funds", "--org", org.slug, "--amount", "50")
    assert "balance: 125.00 USD" in capsys.readouterr().out
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="declined"):
        call_command("add_funds", "--org", org.slug, "--amount", "50",
                     "--card", "4000000000000341")
    with pytest.raises(CommandError, match="at least 50"):
        call_command("add_funds", "--org", org.slug, "--amount", "10")


@pytest.mark.django_db
def test_balance_api_returns_the_summary(org):
    from ninja import NinjaAPI
    from ninja.testing import TestClient

    from credits.api import router

    card = saved_card(org)
    funded_account(org, "123.45")
    auto_recharge_configure(organization=org, enabled=True, amount=100, trigger=50,
                            payment_method=card, actor="t")
    api = NinjaAPI(urls_namespace="billing-test-api")
    api.add_router("/", router)
    response = TestClient(api).get("/credits/balance", auth=org)
    assert response.status_code == 200
    assert response.json() == {"balance": "123.45", "currency": "USD", "autoRecharge": {
        "enabled": True, "amount": "100", "threshold": "50", "mode": "add_amount",
        "target": None, "dailyCap": "1000", "paymentMethod": "Visa •••• 4242"}}


@pytest.mark.django_db
def test_seed_is_funded_with_auto_recharge_and_history_and_idempotent(org):
    import io

    from credits import demo_billing

    demo_billing.seed(org, io.StringIO())
    account = CreditAccount.objects.get(organization=org)
    # One purchase; the automatic recharges come with the demo calls (usage.demo), where
    # the balance crosses the trigger, and auto-recharge is switched on after them.
    assert not account.auto_recharge_enabled and account.balance == Decimal("200.00")
    kinds = list(LedgerEntry.objects.filter(organization=org).values_list("kind", flat=True))
    assert kinds == ["purchase"]
    demo_billing.auto_recharge_enable(org, io.StringIO())
    account.refresh_from_db()
    assert account.auto_recharge_enabled
    assert (account.auto_recharge_amount, account.auto_recharge_trigger) == (
        Decimal("100.00"), Decimal("50.00"))
    demo_billing.seed(org, io.StringIO())
    assert LedgerEntry.objects.filter(organization=org).count() == 1
    assert PaymentMethod.objects.filter(organization=org).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("number", [
    "４２４２４２４２４２４２４２４２",  # full-width digits: not a card number a gateway takes
    "4242424242424²42",  # a superscript digit passes str.isdigit() but not int()
])
def test_card_form_rejects_non_ascii_digits_naming_the_field(bclient, org, number):
    response = bclient.post(f"{CC}payment-methods/", {
        "number": number, "exp_month": "12", "exp_year": "2031", "cvc": "123"})
    assert response.status_code == 200
    assert "Card number: this is not a valid card number" in response.content.decode()
    assert not PaymentMethod.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("amount", ["100,50", "1,5000", "50,"])
def test_add_funds_refuses_a_comma_that_is_not_a_thousands_separator(bclient, org, amount):
    # "100,50" is 100.50 to a French reader: reading it as 10,050 would overcharge.
    card = saved_card(org)
    response = bclient.post(f"{CC}add-funds/", {"amount": amount, "payment_method": card.pk})
    page = response.content.decode()
    assert "Place order" not in page
    assert "Amount" in page and 'aria-invalid="true"' in page


@pytest.mark.django_db
def test_add_funds_reads_thousands_separators_and_refuses_other_digits(bclient, org):
    card = saved_card(org)
    page = bclient.post(f"{CC}add-funds/", {"amount": "1,000", "payment_method": card.pk}
                        ).content.decode()
    assert "Place order" in page and "$1,000.00" in page
    # Issue 8: money fields refuse digits other than 0-9 (full-width, Arabic-Indic, ...).
    page = bclient.post(f"{CC}add-funds/", {"amount": "５０", "payment_method": card.pk}
                        ).content.decode()
    assert "Place order" not in page and "Amount: type the number with the digits 0-9." in page


@pytest.mark.django_db
def test_after_a_decline_another_card_can_be_tried(bclient, org):
    declining = saved_card(org, "4000000000009995")
    good = saved_card(org)
    response = bclient.post(f"{CC}add-funds/confirm/", {
        "amount": "100", "payment_method": declining.pk, "request_key": "order-1"})
    page = response.content.decode()
    assert "The card has insufficient funds." in page
    key = re.search(r'name="request_key" value="([^"]*)"', page).group(1)
    assert key and key != "order-1"  # the failed order's key is spent
    response = bclient.post(f"{CC}add-funds/confirm/", {
        "amount": "100", "payment_method": good.pk, "request_key": key})
    assert response.status_code == 302
    assert CreditAccount.objects.get(organization=org).balance == Decimal("100.00")


ODD_VALUES = ["-5", "0", "1.5", "9" * 20, "５０", "²", "", "abc", "1e5", "NaN", "-0", "50\x00"]


@pytest.mark.django_db
def test_odd_form_values_never_fail_a_billing_page(bclient, org):
    card = saved_card(org)
    failures = []
    for v in ODD_VALUES:
        for url, data in [
            (f"{CC}add-funds/", {"amount": v, "payment_method": v}),
            (f"{CC}add-funds/confirm/", {"amount": v, "payment_method": card.pk,
                                         "request_key": v}),
            (f"{CC}auto-recharge/", {"enabled": "on", "amount": v, "trigger": v,
                                     "payment_method": v}),
            (f"{CC}payment-methods/", {"number": v, "exp_month": v, "exp_year": v, "cvc": v}),
            (f"{CC}support-request/", {"message": v}),
        ]:
            if bclient.post(url, data).status_code >= 500:
                failures.append((url, v))
        if bclient.get(f"{CC}transactions/", {"page": v}).status_code >= 500:
            failures.append(("transactions", v))
    for url in [f"/billing/invoices/{'9' * 20}/", f"{CC}payment-methods/{'9' * 20}/remove/"]:
        if bclient.post(url).status_code not in (404, 405):
            failures.append((url, "huge id"))
    assert not failures
    # None is an amount: "５０" is refused (digits 0-9 only) and "1e5" is not a whole number.
    assert not CreditAccount.objects.filter(organization=org, balance__gt=0).exists()
