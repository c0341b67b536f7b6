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
