import factory
from factory.django import DjangoModelFactory

from credits.models import Organization, Person, PersonRole, User


class OrganizationFactory(DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")
    country = "US"
    currency = "USD"
    billing_region = factory.SelfAttribute("country")


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or "pass-word-123")
        if create:
            self.save(update_fields=["password"])


class PersonFactory(DjangoModelFactory):
    class Meta:
        model = Person
        skip_postgeneration_save = True

    organization = factory.SubFactory(OrganizationFactory)
    display_name = factory.Sequence(lambda n: f"Person {n}")
    upn = factory.LazyAttribute(
        lambda p: f"{p.display_name.lower().replace(' ', '.')}@{p.organization.slug}.example"
    )
    email = factory.LazyAttribute(lambda p: p.upn)
    usage_location = "US"

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if create and extracted:
            PersonRole.objects.bulk_create([PersonRole(person=self, role=r) for r in extracted])

    @factory.post_generation
    def with_user(self, create, extracted, **kwargs):
        if create and extracted:
            self.user = UserFactory(email=self.email)
            self.save(update_fields=["user"])


# --- licenses ---
from credits.models import Subscription  # noqa: E402


class SubscriptionFactory(DjangoModelFactory):
    """Seats of a product; `seats=None` only for Communications Credits (unlimited)."""

    class Meta:
        model = Subscription
        django_get_or_create = ("organization", "sku")

    organization = factory.SubFactory(OrganizationFactory)
    sku = "MCOEV"
    seats = 10


def give_licenses(person, *skus, seats=50):
    """Assign products to a person through the service, buying seats as needed."""
    from credits.services.licenses import license_assign, subscription_ensure_seats

    for sku in skus:
        if sku != "MCOPSTNC":
            subscription_ensure_seats(
                organization=person.organization, sku=sku, seats=seats, actor="test"
            )
        license_assign(person=person, sku=sku, actor="test")
    return person


# --- Communications Credits (billing) ------------------------------------------------------


def funded_account(organization, amount="100.00", **settings):
    """A credit account holding `amount` through one adjustment entry (ledger-consistent)."""
    from decimal import Decimal

    from django.db import transaction

    from credits.models import CreditAccount
    from credits.platform.services import Actor
    from credits.services.ledger import credit_account_lock, credits_adjust

    with transaction.atomic():
        credit_account_lock(organization=organization)
    if Decimal(amount) != 0:
        credits_adjust(organization=organization, amount=Decimal(amount),
                       reason="test funding", actor=Actor.system("tests"))

    account = CreditAccount.objects.get(organization=organization)
    if settings:
        CreditAccount.objects.filter(pk=account.pk).update(**settings)
        account.refresh_from_db()
    return account


def saved_card(organization, number="4242424242424242", exp_month=12, exp_year=None):
    """A payment method saved through the simulated gateway, as the page does."""
    from django.utils import timezone

    from credits.platform.services import Actor
    from credits.services.payment_methods import payment_method_add

    return payment_method_add(
        organization=organization, number=number, exp_month=exp_month,
        exp_year=exp_year or timezone.now().year + 2, cvc="123",
        actor=Actor.system("tests"),
    )


# --- usage ---
def load_test_deck(organization, text=None):
    """Load the illustrative rows of domain/rate-deck-format.md (plus a few) as the deck."""
    from credits.platform.services import Actor
    from usage.decks import parse_deck
    from usage.services import rate_deck_load

    rates, errors = parse_deck(text or TEST_DECK_CSV, organization.currency)
    assert not errors, errors
    rate_deck_load(organization=organization, rates=rates, actor=Actor.system("test"))


TEST_DECK_CSV = """\
direction,prefix,destination,country,number_type,rate_per_minute,connection_fee,first_increment_s,next_increment_s,currency,effective_from
outbound,1,United States and Canada,US,landline,0.01900,0.00,60,60,USD,2026-01-01
outbound,33,France,FR,landline,0.02400,0.00,60,60,USD,2026-01-01
outbound,336,France - Mobile,FR,mobile,0.11400,0.00,60,60,USD,2026-01-01
outbound,44,United Kingdom,GB,landline,0.02300,0.00,60,60,USD,2026-01-01
outbound,447,United Kingdom - Mobile,GB,mobile,0.09800,0.00,60,60,USD,2026-01-01
outbound,3395,France - Premium,FR,premium,0.80000,0.15,60,60,USD,2026-01-01
inbound_toll_free,1800,United States toll-free,US,toll_free,0.03000,0.00,60,60,USD,2026-01-01
inbound_toll_free,33800,France toll-free,FR,toll_free,0.05300,0.00,60,60,USD,2026-01-01
outbound,971,United Arab Emirates,AE,landline,0.15000,0.00,60,60,USD,2026-01-01
"""


def graph_row(graph_id, **fields):
    """A Graph pstnCallLogRow dict with sensible defaults (a US user's 60 s user_out)."""
    row = {
        "id": graph_id,
        "callId": f"call-{graph_id}",
        "userId": None,
        "userPrincipalName": "",
        "userDisplayName": "",
        "startDateTime": "2026-11-02T09:00:00Z",
        "endDateTime": None,
        "duration": 60,
        "charge": 0.0,
        "callType": "user_out",
        "currency": "USD",
        "calleeNumber": "+12125550100",
        "callerNumber": "+14255550100",
        "usageCountryCode": "US",
        "tenantCountryCode": "US",
        "connectionCharge": 0.0,
        "destinationContext": None,
        "destinationName": "United States",
        "conferenceId": None,
        "licenseCapability": "MCOPSTNU",
        "inventoryType": "Subscriber",
        "operator": "Microsoft",
        "callDurationSource": "microsoft",
    }
    row.update(fields)
    return row


# --- reports ---
def call_record(organization, *, person=None, start=None, **fields):
    """An unsaved CallRecord as ingestion stores it (a rated 2-minute user_out paid by
    credits unless told otherwise); save with bulk_create, then rollups_add_calls."""
    import uuid as _uuid
    from datetime import UTC as _UTC
    from datetime import datetime as _datetime
    from datetime import timedelta as _timedelta
    from decimal import Decimal as _Decimal

    from usage.models import CallRecord

    graph_id = fields.pop("graph_id", None) or str(_uuid.uuid4())
    start = start or _datetime(2026, 11, 2, 9, 0, tzinfo=_UTC)
    duration = fields.pop("duration_s", 120)
    values = {
        "organization": organization, "graph_id": graph_id, "call_id": f"call-{graph_id[:8]}",
        "person": person, "user_id": str(person.directory_id) if person else "",
        "upn": person.upn if person else "aa@contoso.example",
        "user_display_name": person.display_name if person else "Auto attendant",
        "start_at": start, "end_at": start + _timedelta(seconds=duration),
        "duration_s": duration, "call_type": "user_out", "caller_number": "+14255550100",
        "callee_number": "+33123456789", "usage_country": "US", "tenant_country": "US",
        "destination_context": "International", "destination_name": "France",
        "inventory_type": "Subscriber", "operator": "Microsoft", "currency": "USD",
        "charged_to": "credits", "credit_seconds": duration, "billable_seconds": duration,
        "rate_prefix": "33", "rate_per_minute": _Decimal("0.05000"),
        "connection_fee": _Decimal("0.00000"), "charge": _Decimal("0.10"),
        "capability": "MCOPSTNPP", "destination_country": "FR", "source": "import",
    }
    values.update(fields)
    return CallRecord(**values)
