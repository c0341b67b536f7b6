"""Settings > Rates, Settings > API tokens and the PSTN import page."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.factories import TEST_DECK_CSV, graph_row
from usage.models import ApiToken, CallRecord, Rate
from usage.selectors import api_token_authenticate

pytestmark = pytest.mark.django_db


def upload(client, url, content, name="deck.csv", **data):
    return client.post(url, {"file": SimpleUploadedFile(name, content), **data})


def test_rates_upload_browse_search_and_download_round_trip(client_for, make_person, org):
    admin = client_for(make_person("teams_communications_administrator"))
    response = upload(admin, reverse("settings_rates_upload"), TEST_DECK_CSV.encode())
    assert response.status_code == 302
    assert Rate.objects.filter(organization=org).count() == 9
    page = admin.get(reverse("settings_rates"), {"q": "+33951234567"})
    assert b"France - Premium" in page.content and b"France - Mobile" not in page.content
    download = admin.get(reverse("settings_rates_download"))
    lines = download.content.decode().splitlines()
    # The same header and rows come back (ordered by direction, then prefix).
    assert lines[0] == TEST_DECK_CSV.splitlines()[0]
    assert sorted(lines) == sorted(TEST_DECK_CSV.splitlines())


def test_rates_upload_with_a_bad_line_loads_nothing_and_names_the_line(client_for, make_person,
                                                                       org):
    admin = client_for(make_person("teams_communications_administrator"))
    bad = TEST_DECK_CSV + "outbound,33x,Bad,FR,landline,0.1,0,60,60,USD,2026-01-01\n"
    response = upload(admin, reverse("settings_rates_upload"), bad.encode())
    assert response.status_code == 400
    assert b"prefix" in response.content and b"<td class=\"num\">11</td>" in response.content
    assert Rate.objects.filter(organization=org).count() == 0
    skipped = upload(admin, reverse("settings_rates_upload"), bad.encode(), skip_bad_rows="on")
    assert skipped.status_code == 302
    assert Rate.objects.filter(organization=org).count() == 9


def test_rates_page_is_read_only_for_readers(client_for, make_person, org):
    reader = client_for(make_person("global_reader"))
    page = reader.get(reverse("settings_rates"))
    assert page.status_code == 200 and b"Upload a rate deck" not in page.content
    refused = upload(reader, reverse("settings_rates_upload"), TEST_DECK_CSV.encode())
    assert refused.status_code == 403


def test_api_token_shown_once_and_revoked_from_the_page(client_for, make_person, org):
    admin = client_for(make_person("teams_communications_administrator"))
    created = admin.post(reverse("settings_api_tokens"), {"name": "SBC Paris"})
    token = ApiToken.objects.get(organization=org)
    raw = created.context["new_token"]
    assert raw.encode() in created.content
    assert raw.encode() not in admin.get(reverse("settings_api_tokens")).content
    assert api_token_authenticate(raw=raw) == token
    admin.post(reverse("settings_api_token_revoke", args=[token.pk]))
    assert api_token_authenticate(raw=raw) is None


def test_api_token_of_another_org_cannot_be_revoked(client_for, make_person, other_org):
    from credits.platform.services import Actor
    from usage.services import api_token_create

    theirs, _raw = api_token_create(organization=other_org, name="x", actor=Actor.system("t"))
    admin = client_for(make_person("teams_communications_administrator"))
    assert admin.post(reverse("settings_api_token_revoke", args=[theirs.pk])).status_code == 404


def test_api_tokens_page_needs_manage_api_tokens(client_for, make_person):
    assert client_for(make_person("billing_administrator")).get(
        reverse("settings_api_tokens")).status_code == 403


def test_billing_admin_imports_a_graph_file_and_sees_rejections(
        client_for, make_person, org, django_capture_on_commit_callbacks):
    from tests.factories import load_test_deck

    load_test_deck(org)
    admin = client_for(make_person("billing_administrator"))
    body = json.dumps({"value": [graph_row("u1"), graph_row("u2", duration=-5),
                                 graph_row("u3", calleeNumber="+33 9 ** ** ** **")]}).encode()
    # The file is imported by a background job, started on commit (eager in tests).
    with django_capture_on_commit_callbacks(execute=True):
        posted = upload(admin, reverse("reports_pstn_import"), body, name="calls.json")
    assert posted.status_code == 302
    page = admin.get(posted["Location"])
    assert page.status_code == 200
    assert b"Imported 1, duplicates 0, rejected 1." not in page.content  # u3 is stored unrated
    assert page.context["result"].accepted == 2
    assert b"duration" in page.content and b"the priced number is masked" in page.content
    assert CallRecord.objects.filter(organization=org).count() == 2


def test_import_page_refuses_read_only_usage_roles(client_for, make_person):
    reader = client_for(make_person("global_reader"))
    assert reader.get(reverse("reports_pstn_import")).status_code == 403


def test_unreadable_upload_is_an_error_on_the_file_field(client_for, make_person):
    admin = client_for(make_person("billing_administrator"))
    page = upload(admin, reverse("reports_pstn_import"), b"\xff\xfe garbage", name="x.csv")
    assert page.status_code == 400 and page.context["form"].errors["file"]


def test_every_unrated_reason_has_words_in_english_and_french():
    from django.utils import translation

    from usage.rating import UNRATED_REASONS
    from usage.views.imports import UNRATED_LABELS

    assert set(UNRATED_LABELS) == set(UNRATED_REASONS)
    with translation.override("fr"):
        assert all(str(v) != UNRATED_REASONS[k] for k, v in UNRATED_LABELS.items())
