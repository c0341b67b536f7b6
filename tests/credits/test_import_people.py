import pytest
from django.core.management import call_command
from django.http import HttpRequest

from credits.models import LicenseAssignment, Person, Subscription
from credits.people_import import import_csv
from credits.platform.services import Actor
from tests.factories import PersonFactory

GOOD_AND_BAD = """userPrincipalName,displayName,email,usageLocation,preferredLanguage,roles,licenses
ann@contoso.example,Ann Lee,ann@contoso.example,US,en,Billing Administrator,MCOPSTNC;MCOEV;MCOPSTN1
bob@contoso.example,Bob Roy,bob@contoso.example,FR,fr,,MCOPSTN2;MCOEV
cat@contoso.example,Cat Ode,,GB,,,MCOPSTN1
dan@contoso.example,Dan Ho,dan@contoso.example,CA,en,Not A Role,MCOPSTNC
eve@contoso.example,Eve Ng,eve@contoso.example,US,en,,NOSUCHSKU
"""


def run(tmp_path, text, slug, capsys):
    path = tmp_path / "people.csv"
    path.write_text(text, encoding="utf-8")
    code = 0
    try:
        call_command("import_people", str(path), "--org", slug)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr()


@pytest.mark.django_db
def test_import_people_takes_good_rows_and_explains_bad_ones(tmp_path, org, capsys):
    code, out = run(tmp_path, GOOD_AND_BAD, org.slug, capsys)
    assert code == 1
    assert "imported 2, rejected 3" in out.out
    assert "line 4: cat@contoso.example: rejected [missing_teams_phone]" in out.out
    assert "Unknown role: Not A Role" in out.out
    assert "Unknown product: NOSUCHSKU" in out.out
    assert set(Person.objects.filter(organization=org).values_list("upn", flat=True)) == {
        "ann@contoso.example", "bob@contoso.example"}
    bob = Person.objects.get(upn="bob@contoso.example")
    assert set(LicenseAssignment.objects.filter(person=bob).values_list("sku", flat=True)) == {
        "MCOEV", "MCOPSTN2"}
    assert bob.preferred_language == "fr" and bob.usage_location == "FR"


@pytest.mark.django_db
def test_import_people_buys_the_seats_it_needs(tmp_path, org, capsys):
    code, _out = run(tmp_path, GOOD_AND_BAD.splitlines()[0] + "\n" + "\n".join(
        GOOD_AND_BAD.splitlines()[1:3]) + "\n", org.slug, capsys)
    assert code == 0
    seats = dict(Subscription.objects.filter(organization=org).values_list("sku", "seats"))
    assert seats == {"MCOPSTNC": None, "MCOEV": 2, "MCOPSTN1": 1, "MCOPSTN2": 1}


@pytest.mark.django_db
def test_people_with_a_role_and_email_can_reset_their_password(tmp_path, org, capsys, client):
    from django.core import mail
    from django.urls import reverse

    run(tmp_path, GOOD_AND_BAD, org.slug, capsys)
    ann = Person.objects.get(upn="ann@contoso.example")
    bob = Person.objects.get(upn="bob@contoso.example")
    # No password works until a reset sets one (Django's reset form skips users whose
    # password is marked unusable, so the account keeps an empty, never-matching hash).
    assert ann.user is not None and not ann.user.check_password("")
    assert not client.login(request=HttpRequest(), username="ann@contoso.example", password="")
    assert bob.user is None  # no role: no sign-in
    client.post(reverse("password_reset"), {"email": "ann@contoso.example"})
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_import_people_is_idempotent(tmp_path, org, capsys):
    run(tmp_path, GOOD_AND_BAD, org.slug, capsys)
    code, out = run(tmp_path, GOOD_AND_BAD, org.slug, capsys)
    assert "imported 2, rejected 3" in out.out and code == 1
    assert LicenseAssignment.objects.filter(organization=org).count() == 5
    assert Person.objects.filter(organization=org).count() == 2


@pytest.mark.django_db
def test_unreadable_file_exits_2(tmp_path, org, capsys):
    code, out = run(tmp_path, "just some words\nmore", org.slug, capsys)
    assert code == 2 and "header was not recognized" in out.err
    missing = tmp_path / "absent.csv"
    with pytest.raises(SystemExit) as exc:
        call_command("import_people", str(missing), "--org", org.slug)
    assert exc.value.code == 2


@pytest.mark.django_db
def test_binary_file_is_unreadable(org):
    report = import_csv(organization=org, data=b"\x00\x01\x02PK\x03\x04",
                        actor=Actor.system("t"))
    assert report.exit_code == 2 and report.fatal


@pytest.mark.django_db
def test_all_good_rows_exit_0(tmp_path, org, capsys):
    text = ("userPrincipalName,displayName,email,usageLocation,preferredLanguage,roles,licenses\n"
            "x@contoso.example,X Y,x@contoso.example,GB,en,License Administrator,MCOPSTNC\n")
    code, out = run(tmp_path, text, org.slug, capsys)
    assert code == 0 and "imported 1, rejected 0" in out.out


@pytest.mark.django_db
def test_command_and_upload_share_the_license_action_format(tmp_path, org, capsys):
    PersonFactory(organization=org, upn="p@contoso.example")
    text = ("userPrincipalName,sku,action\n"
            "p@contoso.example,MCOPSTNC,assign\nq@c.example,MCOEV,add\n")
    code, out = run(tmp_path, text, org.slug, capsys)
    assert code == 1
    assert "[unknown_person]" in out.out
    assert LicenseAssignment.objects.filter(person__upn="p@contoso.example").count() == 1


@pytest.mark.django_db
def test_upload_without_manage_people_does_not_create_people(org):
    report = import_csv(
        organization=org,
        data=GOOD_AND_BAD,
        actor=Actor.system("t"),
        may_create_people=False,
    )
    assert report.taken == 0
    assert {r.code for r in report.rows} >= {"unknown_person"}
    assert not Person.objects.filter(organization=org).exists()
