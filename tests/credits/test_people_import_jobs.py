"""Large uploads on Users > Add multiple users run in the background: the request returns
with a job at once, the job applies every row, the result page is paged and the results
CSV lists one row per input row."""

import csv
import io
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from credits.models import PeopleImportJob, PeopleImportStatus, Person
from credits.services import people_imports
from credits.services.people_imports import people_imports_sweep

HEADER = "userPrincipalName,displayName,email,usageLocation,preferredLanguage,roles,licenses\n"


def _people_csv(rows: int, valid_every: int) -> tuple[str, set[str], set[int]]:
    """A people file of `rows` rows: every `valid_every`-th creates a person, the others
    name a role that does not exist (refused before any write). Returns the file, the
    UPNs that must exist afterwards and the lines that must be refused."""
    lines, good, bad = [HEADER], set(), set()
    for i in range(rows):
        upn = f"user{i:05d}@x.example"
        if i % valid_every == 0:
            lines.append(f"{upn},User {i},,FR,fr,,\n")
            good.add(upn)
        else:
            lines.append(f"{upn},User {i},,FR,fr,Chief Wizard,\n")
            bad.add(i + 2)  # line 1 is the header
    return "".join(lines), good, bad


def _upload(client, text, name="people.csv"):
    return client.post(reverse("users_import"),
                       {"file": SimpleUploadedFile(name, text.encode(), content_type="text/csv")})


@pytest.mark.django_db
def test_a_20000_row_upload_returns_with_a_job_then_completes_paged_with_a_results_csv(
        admin_client, org, django_capture_on_commit_callbacks):
    text, good, bad = _people_csv(20_000, valid_every=100)
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _upload(admin_client, text)
    elapsed = time.monotonic() - started
    job = PeopleImportJob.objects.get()
    # The request only checked and stored the file.
    assert response.status_code == 302
    assert response["Location"] == reverse("users_import_job", args=[job.pk])
    assert job.status == PeopleImportStatus.QUEUED and job.rows_total == 20_000
    assert not Person.objects.filter(upn__in=good).exists()
    assert elapsed < 10
    running = admin_client.get(response["Location"]).content.decode()
    assert 'hx-trigger="every 2s"' in running and "0 of 20000 rows" in running.replace(
        ",", "").replace("\u202f", "").replace("\xa0", "")

    for callback in callbacks:  # the task, run eagerly (CELERY_TASK_ALWAYS_EAGER)
        callback()
    job.refresh_from_db()
    assert job.status == PeopleImportStatus.DONE, job.error
    assert (job.rows_done, job.taken, job.rejected_count) == (20_000, len(good), len(bad))
    assert set(Person.objects.filter(upn__in=good).values_list("upn", flat=True)) == good
    assert job.data == b""

    page1 = admin_client.get(response["Location"]).content.decode()
    assert "hx-trigger" not in page1
    assert "Page 1 of 400" in page1
    assert page1.count('class="status status--') == 50
    assert "user00000@x.example" in page1 and "user00050@x.example" not in page1
    last = admin_client.get(response["Location"], {"page": 400}).content.decode()
    assert "user19999@x.example" in last and "Unknown role: Chief Wizard" in last
    rejected = admin_client.get(response["Location"], {"show": "rejected"}).content.decode()
    assert "user00000@x.example" not in rejected and "user00001@x.example" in rejected

    download = admin_client.get(reverse("users_import_results_csv", args=[job.pk]))
    assert download.status_code == 200
    assert download["Content-Type"].startswith("text/csv")
    body = download.content.decode("utf-8")
    assert body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body[1:])))
    assert rows[0][:2] == ["Line", "userPrincipalName"]
    assert len(rows) == 1 + 20_000
    assert {int(r[0]) for r in rows[1:]} == set(range(2, 20_002))
    refused = {int(r[0]) for r in rows[1:] if r[4] == "Not done"}
    assert refused == bad
    assert all(r[5] == "unknown_role" and "Chief Wizard" in r[6]
               for r in rows[1:] if r[4] == "Not done")


@pytest.mark.django_db
def test_a_small_upload_is_applied_in_the_request(admin_client, org):
    text, good, _bad = _people_csv(3, valid_every=1)
    response = _upload(admin_client, text)
    assert response.status_code == 200
    html = response.content.decode()
    assert "3 done, 0 not done" in html
    assert set(Person.objects.filter(upn__in=good).values_list("upn", flat=True)) == good
    job = PeopleImportJob.objects.get()
    assert job.status == PeopleImportStatus.DONE
    assert reverse("users_import_results_csv", args=[job.pk]) in html


@pytest.mark.django_db
def test_the_results_csv_is_formula_safe(admin_client, org):
    response = _upload(admin_client, HEADER + "=cmd@x.example,=HYPERLINK(1),,FR,fr,,\n")
    assert response.status_code == 200
    job = PeopleImportJob.objects.get()
    body = admin_client.get(reverse("users_import_results_csv", args=[job.pk])).content.decode()
    assert "'=cmd@x.example" in body
    assert "\n=" not in body and ",=" not in body


@pytest.mark.django_db
def test_an_unreadable_file_makes_no_job(admin_client, org):
    response = _upload(admin_client, "hello,world\n1,2\n")
    assert response.status_code == 200
    assert "header was not recognized" in response.content.decode()
    assert not PeopleImportJob.objects.exists()


@pytest.mark.django_db
def test_another_organizations_job_is_not_found(admin_client, org, other_org):
    job = PeopleImportJob.objects.create(organization=other_org, file_name="x.csv")
    assert admin_client.get(reverse("users_import_job", args=[job.pk])).status_code == 404
    assert admin_client.get(
        reverse("users_import_results_csv", args=[job.pk])).status_code == 404


@pytest.mark.django_db
def test_a_job_the_broker_lost_is_enqueued_again(org, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    job = PeopleImportJob.objects.create(
        organization=org, file_name="p.csv", data=(HEADER + "a@x.example,A,,FR,fr,,\n").encode(),
        rows_total=1, may_create_people=True,
        created_at=timezone.now() - timedelta(minutes=10))
    assert people_imports_sweep() == {"requeued": 1, "failed": 0}
    job.refresh_from_db()
    assert job.status == PeopleImportStatus.DONE
    assert Person.objects.filter(upn="a@x.example").exists()
    assert people_imports.TASK == "credits.tasks.run_people_import"
