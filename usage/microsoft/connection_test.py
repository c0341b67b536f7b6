"""Settings > Microsoft connection > Test connection: sign in and read the last hour's call
records. The outcome is kept as facts (a code, the calls read, Microsoft's own words), not
as a sentence: the page says it in its reader's language, whoever ran the test in whichever
language.
"""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from credits.models import Organization
from credits.platform.services import Actor, audit_record

from ..models import MicrosoftConnection
from . import pull
from .errors import ConnectorError, describe

OK = "ok"


@dataclass
class TestResult:
    ok: bool
    message: str
    code: str = ""


def test_sentence(facts: dict) -> str:
    """The test's outcome in the active language."""
    code = facts.get("code") or ""
    if code == OK:
        return gettext(
            "Signed in to Microsoft and read the call records (%(n)s calls in the last hour): "
            "the app has CallRecords.Read.All with admin consent.") % {"n": facts.get("calls", 0)}
    return describe(code, facts.get("detail") or "")


def last_test_sentence(connection: MicrosoftConnection) -> str:
    """The page's words for the connection's last test. A test recorded before its facts
    were kept (or the demo's) has only its sentence: the reader's translation of it when it
    is one of ours, else as it was written."""
    if connection.last_test_facts:
        return test_sentence(connection.last_test_facts)
    message = connection.last_test_message or ""
    return gettext(message) if message else ""


def microsoft_connection_test(*, organization: Organization, actor: Actor,
                              now=None) -> TestResult:
    """Sign in and make one small call; the outcome kept on the connection as facts."""
    now = now or timezone.now()
    connection = MicrosoftConnection.objects.filter(organization=organization).first()
    if connection is None:
        return TestResult(False, describe("no_connection"), "no_connection")
    try:
        calls = pull.CLIENT_FACTORY(connection, max_retries=1).check(now)
    except ConnectorError as exc:
        facts = {"code": exc.code, "detail": exc.detail}
    else:
        facts = {"code": OK, "calls": calls}
    ok = facts["code"] == OK
    message = test_sentence(facts)
    # Written after Graph answered: no transaction is open while it is asked.
    with transaction.atomic():
        MicrosoftConnection.objects.filter(pk=connection.pk).update(
            last_test_at=now, last_test_ok=ok, last_test_facts=facts,
            last_test_message=message[:2000])
        audit_record(organization=organization, actor=actor, action="microsoft.test",
                     target=connection, changes={"ok": ok, "code": "" if ok else facts["code"]})
    return TestResult(ok, message, "" if ok else facts["code"])
