import pytest
from django.conf import settings

from tests.factories import OrganizationFactory, PersonFactory

requires_postgres = pytest.mark.skipif(
    not settings.USING_POSTGRES, reason="needs PostgreSQL (row locks and real concurrency)"
)
requires_redis = pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL")


@pytest.fixture
def org(db):
    return OrganizationFactory(name="Contoso", slug="contoso-test")


@pytest.fixture
def other_org(db):
    return OrganizationFactory(name="Fabrikam", slug="fabrikam-test", country="FR",
                               currency="EUR")


@pytest.fixture
def make_person(db, org):
    def make(*roles, organization=None, **kwargs):
        return PersonFactory(
            organization=organization or org, roles=list(roles), with_user=True, **kwargs
        )

    return make


@pytest.fixture
def admin_person(make_person):
    return make_person("global_administrator", display_name="Global Admin")


@pytest.fixture
def admin_client(client, admin_person):
    client.force_login(admin_person.user)
    return client


@pytest.fixture
def client_for(client):
    def login(person):
        client.force_login(person.user)
        return client

    return login


@pytest.fixture(autouse=True)
def _default_language_after_each_test():
    """A request by a French-speaking person activates French for the thread (as it must,
    for the response); the next test starts from the default language again."""
    yield
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _celery_may_join_after_each_test():
    """A test whose threads ran eager tasks at once can leave Celery's process-wide join
    flag set (tests.concurrency.clear_celery_join_flag); the next test starts clear."""
    yield
    from tests.concurrency import clear_celery_join_flag

    clear_celery_join_flag()
