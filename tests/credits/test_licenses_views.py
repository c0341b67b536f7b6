import pytest
from django.urls import reverse
from django.utils import translation

from credits.models import AuditEntry, LicenseAssignment, Person, Subscription
from credits.services.licenses import license_assign, pool_key_for, pool_take_minutes
from tests.factories import PersonFactory, SubscriptionFactory, give_licenses


@pytest.fixture
def license_admin(make_person):
    return make_person("license_administrator", display_name="Lic Admin")


@pytest.mark.django_db
def test_users_list_shows_licenses_and_usage_location_with_links(admin_client, org):
    person = give_licenses(PersonFactory(organization=org, display_name="Zed Caller",
                                         usage_location="FR"), "MCOPSTNC")
    html = admin_client.get(reverse("users")).content.decode()
    assert "Zed Caller" in html
    assert reverse("person_licenses", args=[person.pk]) in html
    assert "Communications Credits" in html
    assert "France (FR)" in html


@pytest.mark.django_db
def test_users_list_filters_by_license_role_and_search(admin_client, org):
    give_licenses(PersonFactory(organization=org, display_name="Has Credits"), "MCOPSTNC")
    PersonFactory(organization=org, display_name="No Credits")
    PersonFactory(organization=org, display_name="Bill Payer", roles=["billing_administrator"])
    by_license = admin_client.get(reverse("users"), {"license": "MCOPSTNC"}).content.decode()
    assert "Has Credits" in by_license and "No Credits" not in by_license
    by_role = admin_client.get(reverse("users"), {"role": "billing_administrator"}).content.decode()
    assert "Bill Payer" in by_role and "Has Credits" not in by_role
    found = admin_client.get(reverse("users"), {"q": "no cred"}).content.decode()
    assert "No Credits" in found and "Has Credits" not in found


@pytest.mark.django_db
def test_users_list_sorts_and_pages(admin_client, org):
    PersonFactory.create_batch(60, organization=org)
    PersonFactory(organization=org, display_name="Zzz Last")
    first = admin_client.get(reverse("users")).content.decode()
    assert "Zzz Last" not in first and "Page 1 of 2" in first
    desc = admin_client.get(reverse("users"), {"sort": "-name"}).content.decode()
    assert "Zzz Last" in desc


@pytest.mark.django_db
def test_person_page_assigns_ticked_products(client_for, license_admin, org):
    person = PersonFactory(organization=org, usage_location="")
    SubscriptionFactory(organization=org, sku="MCOEV", seats=20)
    SubscriptionFactory(organization=org, sku="MCOPSTN1", seats=20)
    url = reverse("person_licenses", args=[person.pk])
    client = client_for(license_admin)
    response = client.post(url, {"usage_location": "CA", "products": ["MCOEV", "MCOPSTN1",
                                                                      "MCOPSTNC"]})
    assert response.status_code == 302
    assert set(LicenseAssignment.objects.filter(person=person).values_list("sku", flat=True)) == {
        "MCOEV", "MCOPSTN1", "MCOPSTNC"}
    html = client.get(url).content.decode()
    assert "1 of 20 assigned" in html and "Unlimited" in html
    assert AuditEntry.objects.filter(action="license.assign", target_id=str(person.pk)).count() == 3


@pytest.mark.django_db
def test_person_page_explains_a_missing_teams_phone_instead_of_failing(admin_client, org):
    person = PersonFactory(organization=org)
    SubscriptionFactory(organization=org, sku="MCOPSTN1", seats=20)
    url = reverse("person_licenses", args=[person.pk])
    assert "Needs Teams Phone Standard" in admin_client.get(url).content.decode()
    response = admin_client.post(url, {"usage_location": "US", "products": ["MCOPSTN1"]})
    assert response.status_code == 200
    html = response.content.decode()
    assert "needs Teams Phone Standard" in html and 'aria-invalid="true"' in html
    assert not LicenseAssignment.objects.filter(person=person).exists()


@pytest.mark.django_db
def test_person_page_requires_usage_location_for_a_plan(admin_client, org):
    person = PersonFactory(organization=org, usage_location="")
    give_licenses(person, "MCOEV")
    SubscriptionFactory(organization=org, sku="MCOPSTN2", seats=20)
    url = reverse("person_licenses", args=[person.pk])
    html = admin_client.get(url).content.decode()
    assert "Set a usage location first." in html
    response = admin_client.post(url, {"usage_location": "", "products": ["MCOEV", "MCOPSTN2"]})
    assert "Set a usage location before assigning a calling plan." in response.content.decode()


@pytest.mark.django_db
def test_person_page_warns_credits_without_plan_or_conferencing(admin_client, org):
    person = give_licenses(PersonFactory(organization=org), "MCOPSTNC")
    html = admin_client.get(reverse("person_licenses", args=[person.pk])).content.decode()
    assert "does nothing for them" in html


@pytest.mark.django_db
def test_person_page_of_another_organization_is_404(admin_client, other_org):
    stranger = PersonFactory(organization=other_org)
    url = reverse("person_licenses", args=[stranger.pk])
    assert admin_client.get(url).status_code == 404
    assert admin_client.post(url, {"products": ["MCOPSTNC"]}).status_code == 404


@pytest.mark.django_db
def test_global_reader_sees_licenses_but_cannot_change_them(client_for, make_person, org):
    reader = make_person("global_reader")
    person = PersonFactory(organization=org)
    client = client_for(reader)
    url = reverse("person_licenses", args=[person.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"products": ["MCOPSTNC"]}).status_code == 403
    assert client.post(reverse("users_bulk"), {"people": [person.pk], "sku": "MCOPSTNC",
                                               "action": "assign"}).status_code == 403
    assert not LicenseAssignment.objects.exists()


@pytest.mark.parametrize(
    ("role", "url_name", "allowed"),
    [
        ("license_administrator", "users", True),
        ("license_administrator", "users_import", True),
        ("license_administrator", "reports_minute_pools", False),
        ("billing_administrator", "billing_licenses", True),
        ("billing_administrator", "reports_minute_pools", True),
        ("billing_administrator", "users", False),
        ("billing_administrator", "users_import", False),
        ("teams_communications_support_engineer", "reports_minute_pools", True),
        ("teams_communications_support_engineer", "billing_licenses", False),
        ("teams_communications_support_engineer", "users", False),
        ("helpdesk_administrator", "users", False),
        ("global_reader", "users", True),
        ("global_reader", "users_import", False),
        ("global_reader", "reports_minute_pools", True),
    ],
)
@pytest.mark.django_db
def test_each_role_sees_only_what_roles_csv_allows(client_for, make_person, role, url_name,
                                                    allowed):
    client = client_for(make_person(role))
    status = client.get(reverse(url_name)).status_code
    assert (status == 200) is allowed and status in (200, 403)


@pytest.mark.django_db
def test_bulk_assign_reports_each_row_and_keeps_the_good_ones(client_for, license_admin, org):
    SubscriptionFactory(organization=org, sku="MCOEV", seats=1)
    a = PersonFactory(organization=org, display_name="Aa First")
    b = PersonFactory(organization=org, display_name="Bb Second")
    response = client_for(license_admin).post(
        reverse("users_bulk"), {"people": [a.pk, b.pk], "sku": "MCOEV", "action": "assign"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "1 done, 1 not done" in html and "No Teams Phone Standard seat left" in html
    assert LicenseAssignment.objects.filter(sku="MCOEV").count() == 1


@pytest.mark.django_db
def test_bulk_ignores_people_of_another_organization(client_for, license_admin, other_org):
    stranger = PersonFactory(organization=other_org)
    response = client_for(license_admin).post(
        reverse("users_bulk"), {"people": [stranger.pk], "sku": "MCOPSTNC", "action": "assign"}
    )
    assert response.status_code == 302
    assert not LicenseAssignment.objects.exists()


@pytest.mark.django_db
def test_csv_upload_assigns_good_rows_and_explains_bad_ones(client_for, license_admin, org):
    from django.core.files.uploadedfile import SimpleUploadedFile

    SubscriptionFactory(organization=org, sku="MCOEV", seats=1)
    SubscriptionFactory(organization=org, sku="MCOPSTN1", seats=5)
    ok = PersonFactory(organization=org, upn="ok@x.example")
    full = PersonFactory(organization=org, upn="full@x.example")
    nowhere = PersonFactory(organization=org, upn="nowhere@x.example", usage_location="")
    license_assign(person=nowhere, sku="MCOPSTNC", actor="x")
    data = (
        "userPrincipalName,sku,action\n"
        "ok@x.example,MCOEV,assign\n"
        "full@x.example,MCOEV,assign\n"
        "ghost@x.example,MCOPSTNC,assign\n"
        "ok@x.example,MCOPSTN1,assign\n"
        "full@x.example,MCOPSTN1,assign\n"
        "nowhere@x.example,MCOPSTNC,remove\n"
    )
    response = client_for(license_admin).post(
        reverse("users_import"),
        {"file": SimpleUploadedFile("l.csv", data.encode(), content_type="text/csv")},
    )
    html = response.content.decode()
    assert "3 done, 3 not done" in html
    assert "No Teams Phone Standard seat left" in html
    assert "Unknown person: ghost@x.example" in html
    assert "needs Teams Phone Standard" in html
    assert set(LicenseAssignment.objects.filter(person=ok, removed_at__isnull=True)
               .values_list("sku", flat=True)) == {"MCOEV", "MCOPSTN1"}
    assert not LicenseAssignment.objects.filter(person=full).exists()


@pytest.mark.django_db
def test_csv_upload_of_an_unreadable_file_says_why(client_for, license_admin):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client_for(license_admin).post(
        reverse("users_import"),
        {"file": SimpleUploadedFile("x.csv", b"hello,world\n1,2\n", content_type="text/csv")},
    )
    assert response.status_code == 200
    assert "header was not recognized" in response.content.decode()


@pytest.mark.django_db
def test_billing_admin_changes_seats_but_not_below_assigned(client_for, make_person, org):
    billing = make_person("billing_administrator")
    sub = SubscriptionFactory(organization=org, sku="MCOEV", seats=5)
    for p in PersonFactory.create_batch(2, organization=org):
        license_assign(person=p, sku="MCOEV", actor="x")
    client = client_for(billing)
    url = reverse("billing_seats", args=["MCOEV"])
    assert client.post(url, {"seats": "1"}).status_code == 400
    sub.refresh_from_db()
    assert sub.seats == 5
    assert client.post(url, {"seats": "8"}).status_code == 302
    sub.refresh_from_db()
    assert sub.seats == 8
    html = client.get(reverse("billing_licenses")).content.decode()
    assert "Teams Phone Standard" in html and ">8<" in html


@pytest.mark.django_db
def test_license_admin_cannot_change_seats(client_for, license_admin, org):
    SubscriptionFactory(organization=org, sku="MCOEV", seats=5)
    client = client_for(license_admin)
    assert client.post(reverse("billing_seats", args=["MCOEV"]), {"seats": "50"}).status_code == 403
    assert Subscription.objects.get(sku="MCOEV").seats == 5


@pytest.mark.django_db
def test_minute_pools_report_rows_and_chart(client_for, make_person, org):
    from django.utils import timezone

    viewer = make_person("teams_communications_support_engineer")
    us = give_licenses(PersonFactory(organization=org, usage_location="US"), "MCOEV", "MCOPSTN1",
                       "MCOMEETADD")
    fr = give_licenses(PersonFactory(organization=org, usage_location="FR"), "MCOEV", "MCOPSTN2")
    assert us and fr
    now = timezone.now()
    pool_take_minutes(organization=org, key=pool_key_for(kind="domestic", country="US", at=now),
                      minutes=120, at=now)
    html = client_for(viewer).get(reverse("reports_minute_pools")).content.decode()
    assert "<svg" in html and "<meter" in html
    assert "3,000" in html and "2,880" in html  # US domestic total and available
    assert "MCOPSTN2" in html and "MCOMEETADD" in html
    assert "France" in html and "Tenant-wide" in html
    assert "style=" not in html and "<script>" not in html


@pytest.mark.django_db
def test_pages_work_in_french(admin_client, org):
    person = give_licenses(PersonFactory(organization=org), "MCOPSTNC")
    admin_client.cookies["django_language"] = "fr"
    with translation.override("fr"):
        for url in (reverse("users"), reverse("person_licenses", args=[person.pk]),
                    reverse("billing_licenses"), reverse("reports_minute_pools"),
                    reverse("users_import")):
            response = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="fr")
            assert response.status_code == 200, url
            assert 'lang="fr"' in response.content.decode()


@pytest.mark.django_db
def test_home_licenses_card_shows_assigned_and_available(admin_client, org):
    SubscriptionFactory(organization=org, sku="MCOEV", seats=20)
    give_licenses(PersonFactory(organization=org), "MCOPSTNC")
    license_assign(person=PersonFactory(organization=org), sku="MCOEV", actor="x")
    html = admin_client.get("/").content.decode()
    assert "Teams Phone Standard: 1 of 20 assigned · 19 available" in html


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["license_administrator", "user_administrator"])
def test_csv_upload_cannot_give_admin_roles_without_manage_org(client_for, make_person, org,
                                                               role):
    from django.core.files.uploadedfile import SimpleUploadedFile

    uploader = make_person(role, upn="uploader@x.example", email="uploader@x.example")
    data = ("userPrincipalName,displayName,email,usageLocation,preferredLanguage,roles,licenses\n"
            "uploader@x.example,Me,uploader@x.example,US,en,Global Administrator,\n"
            "new@x.example,New,new@x.example,US,en,Billing Administrator,\n")
    response = client_for(uploader).post(
        reverse("users_import"),
        {"file": SimpleUploadedFile("p.csv", data.encode(), content_type="text/csv")},
    )
    assert response.status_code == 200
    uploader.refresh_from_db()
    assert "global_administrator" not in set(uploader.roles.values_list("role", flat=True))
    assert not uploader.has_perm("manage_org")
    assert not Person.objects.filter(upn="new@x.example", roles__isnull=False).exists()
    assert "Roles:" in response.content.decode()


@pytest.mark.django_db
def test_bulk_with_odd_person_ids_does_not_fail(client_for, license_admin, org):
    response = client_for(license_admin).post(
        reverse("users_bulk"), {"people": ["²", "５", "-1", "", "9" * 20], "sku": "MCOPSTNC",
                                "action": "assign"})
    assert response.status_code == 302
    assert not LicenseAssignment.objects.exists()


@pytest.mark.django_db
def test_odd_form_values_never_fail_a_licenses_page(admin_client, org):
    person = PersonFactory(organization=org, usage_location="US")
    SubscriptionFactory(organization=org, sku="MCOEV", seats=2)
    failures = []
    for v in ["-5", "0", "1.5", "9" * 20, "５０", "²", "", "abc", "1e5", "NaN", "50\x00"]:
        for url, data in [
            (reverse("billing_seats", args=["MCOEV"]), {"seats": v}),
            (reverse("billing_seats", args=[v or "x"]), {"seats": "3"}),
            (reverse("person_licenses", args=[person.pk]), {"usage_location": v,
                                                            "products": [v]}),
            (reverse("users_bulk"), {"people": [v], "sku": v, "action": v}),
        ]:
            if admin_client.post(url, data).status_code >= 500:
                failures.append((url, v))
        for url, params in [(reverse("reports_minute_pools"), {"month": v}),
                            (reverse("users"), {"page": v, "sort": v, "license": v})]:
            if admin_client.get(url, params).status_code >= 500:
                failures.append((url, v))
    assert admin_client.get(f"/users/{'9' * 20}/licenses/").status_code == 404
    assert not failures
    # "0" is the last value taken: "５０" is refused (digits 0-9 only).
    assert Subscription.objects.get(organization=org, sku="MCOEV").seats == 0
