import pytest
from django.utils import translation

from credits.platform.roles import ROLES, ROLES_BY_CODE


def test_every_role_has_a_french_name():
    with translation.override("fr"):
        untranslated = [r.name for r in ROLES if str(r.label) == r.name]
    assert untranslated == []
    with translation.override("fr"):
        assert str(ROLES_BY_CODE["global_administrator"].label) == "Administrateur général"


@pytest.mark.django_db
def test_user_list_shows_role_names_in_the_readers_language(client, make_person):
    reader = make_person("global_administrator", preferred_language="fr")
    make_person("billing_administrator", display_name="Alex Billing")
    client.force_login(reader.user)
    page = client.get("/users/").content.decode()
    assert "Administrateur de facturation" in page
    assert "Billing Administrator" not in page
