import pytest
from django.core import mail
from django.core.management import call_command
from django.http import HttpRequest
from django.urls import reverse

from credits.models import AuditEntry, Organization, Person
from credits.platform.services import Actor, ServiceError, person_create, person_set_roles


@pytest.mark.django_db
def test_sign_in_with_email_and_password_then_sign_out(client, make_person):
    person = make_person("billing_administrator")
    response = client.post(
        reverse("login"), {"username": person.email, "password": "pass-word-123"}
    )
    assert response.status_code == 302 and response["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert person.display_name in home.content.decode()
    assert person.organization.name in home.content.decode()
    client.post(reverse("logout"))
    assert client.get("/").status_code == 302


@pytest.mark.django_db
def test_wrong_password_is_refused_with_a_message(client, make_person):
    person = make_person("billing_administrator")
    response = client.post(reverse("login"), {"username": person.email, "password": "nope"})
    assert response.status_code == 200
    assert "correct" in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_password_reset_sends_a_link_that_sets_a_new_password(client, make_person):
    person = make_person("global_administrator")
    client.post(reverse("password_reset"), {"email": person.email})
    assert len(mail.outbox) == 1
    link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/reset/" in line)
    path = link.split("testserver", 1)[1].strip()
    form_page = client.get(path, follow=True)
    set_url = form_page.redirect_chain[-1][0]
    client.post(set_url, {"new_password1": "Brand-new-pass-42", "new_password2":
                          "Brand-new-pass-42"})
    assert client.login(request=HttpRequest(), username=person.email,
                        password="Brand-new-pass-42")  # django-axes needs the request


@pytest.mark.django_db
def test_people_of_another_organization_are_invisible(client, make_person, other_org):
    from credits.platform import selectors

    mine = make_person("global_administrator")
    theirs = make_person(organization=other_org)
    with pytest.raises(Person.DoesNotExist):
        selectors.person_get(organization=mine.organization, pk=theirs.pk)


@pytest.mark.django_db
def test_audit_entry_is_written_with_the_change_and_shown_to_admins(
    client, admin_person
):
    client.force_login(admin_person.user)
    client.post(reverse("set_language"), {"language": "fr", "next": "/"},
                REMOTE_ADDR="203.0.113.7")
    entry = AuditEntry.objects.get(action="person.language")
    assert entry.actor == admin_person
    assert entry.ip_address == "203.0.113.7"
    assert entry.changes == {"preferred_language": {"from": "", "to": "fr"}}
    page = client.get(reverse("settings_audit")).content.decode()
    assert "person.language" in page and "203.0.113.7" in page


@pytest.mark.django_db
def test_audit_row_is_rolled_back_with_a_failed_change(org):
    actor = Actor.system("test")
    with pytest.raises(ServiceError):
        person_create(organization=org, display_name="X", upn="x@e.com",
                      roles=["not_a_role"], actor=actor)
    assert not AuditEntry.objects.filter(action="person.create").exists()
    assert not Person.objects.filter(upn="x@e.com").exists()


@pytest.mark.django_db
def test_role_change_is_audited_and_changes_permissions(org):
    actor = Actor.system("test")
    person = person_create(organization=org, display_name="P", upn="p@e.com",
                           roles=["global_reader"], actor=actor)
    assert not person.has_perm("manage_billing")
    person_set_roles(person=person, roles=["billing_administrator"], actor=actor)
    person = Person.objects.get(pk=person.pk)
    assert person.has_perm("manage_billing")
    assert AuditEntry.objects.filter(action="person.roles", target_id=str(person.pk)).exists()


@pytest.mark.django_db
def test_language_follows_person_preference_then_browser(client, make_person):
    french = make_person("global_administrator", preferred_language="fr")
    client.force_login(french.user)
    assert "Accueil" in client.get("/").content.decode()
    english_pref = make_person("global_administrator", preferred_language="")
    client.force_login(english_pref.user)
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9").content.decode()
    assert "Accueil" in page
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="en-US").content.decode()
    assert "Home" in page and "Accueil" not in page


@pytest.mark.django_db
def test_create_org_command_creates_an_empty_organization(capsys):
    call_command("create_org", "fabrikam", name="Fabrikam", country="fr", currency="eur")
    org = Organization.objects.get(slug="fabrikam")
    assert (org.name, org.country, org.currency, org.billing_region) == (
        "Fabrikam", "FR", "EUR", "FR")
    assert org.people.count() == 0


@pytest.mark.django_db
def test_create_org_command_refuses_a_duplicate_slug_naming_the_field():
    from django.core.management.base import CommandError

    call_command("create_org", "dup", name="A", country="US", currency="USD")
    with pytest.raises(CommandError, match="slug"):
        call_command("create_org", "dup", name="B", country="US", currency="USD")


@pytest.mark.django_db
def test_create_org_command_rejects_a_bad_country_code():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="country"):
        call_command("create_org", "bad", name="B", country="USA", currency="USD")
    assert not Organization.objects.filter(slug="bad").exists()


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_ends_with_the_sign_in(client):
    from io import StringIO

    out = StringIO()
    call_command("seed_demo", stdout=out)
    counts = (Organization.objects.count(), Person.objects.count(),
              AuditEntry.objects.count())
    out2 = StringIO()
    call_command("seed_demo", stdout=out2)
    assert (Organization.objects.count(), Person.objects.count(),
            AuditEntry.objects.count()) == counts
    lines = out2.getvalue().strip().splitlines()
    assert lines[-2].startswith("email: ") and lines[-1].startswith("password: ")
    email, password = lines[-2][7:], lines[-1][10:]
    assert client.login(request=HttpRequest(), username=email, password=password)
    assert client.get("/settings/audit/").status_code == 200
    countries = set(Person.objects.values_list("usage_location", flat=True))
    assert {"US", "FR", "GB"} <= countries
