"""One code path for every bulk license change: the `import_people` command, the CSV
upload on the Active users page, and "select people, assign or remove one product".

Two CSV shapes are read, told apart by their header:
- the admin center's "add multiple users" file (DESIGN.md section 8):
  `userPrincipalName,displayName,email,usageLocation,preferredLanguage,roles,licenses`,
  roles and licenses separated by `;`, and an optional `creditsMonthlyLimit` column (the
  person's monthly credits limit: an amount, or blank for no limit; a file without the
  column leaves limits as they are);
- a license action file: `userPrincipalName,sku,action` (action: assign or remove; the
  header may be left out).

Each row runs in its own savepoint: a bad row is rolled back and explained, the good rows
are kept. A cell that cannot be stored as text (a NUL, a lone UTF-16 surrogate: see
credits.platform.text) rejects its row, naming the column, before any of the row is used.
Exit codes (for the command): 0 all rows taken, 1 some rejected, 2 unreadable.
"""

import csv
import io
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from . import products as P
from .models import Organization, Person
from .platform.roles import role_by_name_or_code
from .platform.services import (
    Actor,
    ServiceError,
    person_create,
    person_enable_sign_in,
    person_set_roles,
)
from .platform.text import TEXT_PROBLEM_WORDS, text_problem
from .services.licenses import (
    license_assign,
    license_remove,
    person_set_usage_location,
)
from .services.spend_limits import person_spend_limit_set
from .spend_limits import LimitError, parse_limit

# The people file's optional column of the person's monthly credits limit (normalized).
LIMIT_COLUMN = "creditsmonthlylimit"
MAX_ROWS = 20_000
MAX_BYTES = 5 * 1024 * 1024
# How often (in rows) import_csv reports its progress.
PROGRESS_EVERY = 200

UPN_NAMES = {"userprincipalname", "upn", "user", "username"}
SKU_NAMES = {"sku", "product", "license", "productsku"}
ASSIGN_WORDS = {"assign", "add", "+"}
REMOVE_WORDS = {"remove", "unassign", "delete", "-"}
# The columns of a license action file without a header, as a reason names them.
HEADERLESS_LICENSE_COLUMNS = ["userPrincipalName", "sku", "action"]


@dataclass
class RowResult:
    line: int  # line in the file (1 = header), or position in a selection
    upn: str
    ok: bool
    message: str
    code: str = ""  # why not: unknown_person, no_seat, missing_teams_phone, ...
    sku: str = ""
    action: str = ""


@dataclass
class ImportReport:
    rows: list[RowResult] = field(default_factory=list)
    fatal: str = ""  # the file could not be read at all
    kind: str = ""  # "people" | "licenses"

    @property
    def taken(self) -> int:
        return sum(1 for r in self.rows if r.ok)

    @property
    def rejected(self) -> int:
        return sum(1 for r in self.rows if not r.ok)

    @property
    def exit_code(self) -> int:
        if self.fatal:
            return 2
        return 1 if self.rejected else 0


@dataclass(frozen=True)
class LicenseAction:
    line: int
    upn: str
    sku: str
    action: str  # "assign" | "remove"
    person: Person | None = None  # already resolved (selection on the users page)


class _RowError(Exception):
    def __init__(self, message, code="invalid"):
        super().__init__(message)
        self.message = message
        self.code = code


# --- reading -------------------------------------------------------------------------------


def _decode(data) -> str:
    if isinstance(data, str):
        return data
    if len(data) > MAX_BYTES:
        raise ValueError(_("The file is larger than 5 MB."))
    try:
        # surrogatepass: the bytes of a lone surrogate (ED A0 80 .. ED BF BF, written by a
        # broken exporter) become that surrogate, so its row is rejected naming the column
        # instead of the whole file being read as cp1252.
        return data.decode("utf-8-sig", errors="surrogatepass")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        pass
    raise ValueError(_("The file is not text (UTF-8 CSV expected)."))


def _norm(name: str) -> str:
    return "".join(ch for ch in (name or "").lower() if ch.isalnum())


def _cell_problem(labels: list[str], raw: list[str]) -> str:
    """Why a row cannot be taken because of a cell that cannot be stored as text, naming
    its column; "" when every cell is text. Checked on the cell as written, before any
    trimming or truncation (preferredLanguage keeps 2 characters) could hide it."""
    for label, value in zip(labels, raw, strict=False):
        problem = text_problem(value or "")
        if problem:
            return _("%(field)s: %(reason)s") % {"field": label,
                                                  "reason": TEXT_PROBLEM_WORDS[problem]}
    return ""


def _read(data) -> tuple[str, list[tuple[int, dict, str]]]:
    """(kind, [(line, row, problem)]), `problem` being _cell_problem's answer; raises
    ValueError when the file cannot be read."""
    text = _decode(data)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        rows = [row for row in reader]
    except csv.Error as exc:
        raise ValueError(_("The CSV could not be parsed: %(error)s") % {"error": exc}) from exc
    rows_numbered = [(i + 1, r) for i, r in enumerate(rows) if any(c.strip() for c in r)]
    if not rows_numbered:
        raise ValueError(_("The file is empty."))
    if len(rows_numbered) > MAX_ROWS + 1:
        raise ValueError(_("The file has more than %(n)s rows.") % {"n": MAX_ROWS})
    _first_line, header = rows_numbered[0]
    names = [_norm(h) for h in header]
    labels = [h.strip() for h in header]
    # A header that is not text (a binary file, UTF-16 without a BOM) names no column.
    not_text = ValueError(_("The file is not text (UTF-8 CSV expected)."))
    header_is_text = not any(text_problem(h) for h in header)
    if "displayname" in names and names[0] in UPN_NAMES | {"userprincipalname"}:
        kind, columns, body = "people", names, rows_numbered[1:]
    elif any(n in UPN_NAMES for n in names) and any(n in SKU_NAMES for n in names):
        kind, columns, body = "licenses", names, rows_numbered[1:]
    elif len(header) >= 2 and "@" in header[0]:
        # No header: UPN, SKU[, action]; its first row is checked as a row.
        kind, columns, body = "licenses", ["upn", "sku", "action"], rows_numbered
        labels, header_is_text = HEADERLESS_LICENSE_COLUMNS, True
    elif not header_is_text:
        raise not_text
    else:
        raise ValueError(
            _("The header was not recognized. Use %(people)s or %(licenses)s.")
            % {"people": "userPrincipalName,displayName,email,usageLocation,"
                         "preferredLanguage,roles,licenses",
               "licenses": "userPrincipalName,sku,action"}
        )
    if not header_is_text:
        raise not_text
    out = []
    for line, raw in body:
        row = {}
        for name, value in zip(columns, raw, strict=False):
            if name in UPN_NAMES:
                name = "upn"
            elif name in SKU_NAMES and kind == "licenses":
                name = "sku"
            row.setdefault(name, (value or "").strip())
        out.append((line, row, _cell_problem(labels, raw)))
    return kind, out


# --- applying ------------------------------------------------------------------------------


def _license_error_code(exc: ServiceError) -> str:
    return getattr(exc, "code", "invalid")


def _apply_action(organization, action: LicenseAction, actor, grow_seats) -> RowResult:
    result = RowResult(line=action.line, upn=action.upn, ok=False, message="", sku=action.sku,
                       action=action.action)
    verb = (action.action or "assign").strip().lower()
    try:
        product = P.product(action.sku)
        if product is None:
            raise _RowError(_("Unknown product: %(sku)s") % {"sku": action.sku or "-"},
                            "unknown_product")
        result.sku = product.sku
        if verb in ASSIGN_WORDS:
            verb = "assign"
        elif verb in REMOVE_WORDS:
            verb = "remove"
        else:
            raise _RowError(_("Unknown action: %(action)s (use assign or remove)")
                            % {"action": action.action}, "unknown_action")
        result.action = verb
        person = action.person or organization.people.filter(upn__iexact=action.upn).first()
        if person is None:
            raise _RowError(_("Unknown person: %(upn)s") % {"upn": action.upn or "-"},
                            "unknown_person")
        result.upn = person.upn
        with transaction.atomic():
            if verb == "assign":
                license_assign(person=person, sku=product.sku, actor=actor,
                               grow_seats=grow_seats)
                result.message = _("Assigned %(product)s.") % {"product": product.name}
            else:
                license_remove(person=person, sku=product.sku, actor=actor)
                result.message = _("Removed %(product)s.") % {"product": product.name}
        result.ok = True
    except _RowError as exc:
        result.message, result.code = exc.message, exc.code
    except ServiceError as exc:
        result.message, result.code = exc.message, _license_error_code(exc)
    return result


def bulk_apply(
    *, organization: Organization, actions, actor: Actor, grow_seats: bool = False
) -> ImportReport:
    """Apply license actions one by one; each row is done or explained."""
    report = ImportReport(kind="licenses")
    for action in actions:
        report.rows.append(_apply_action(organization, action, actor, grow_seats))
    return report


def _split(value: str) -> list[str]:
    return [v.strip() for v in (value or "").replace(",", ";").split(";") if v.strip()]


def _person_locked(organization, upn) -> Person | None:
    return organization.people.select_for_update(of=("self",)).filter(upn__iexact=upn).first()


def _apply_person_row(organization, line, row, actor, grow_seats, may_create,
                      may_set_roles=True) -> RowResult:
    upn = (row.get("upn") or "").strip().lower()
    result = RowResult(line=line, upn=upn, ok=False, message="")
    try:
        if not upn or "@" not in upn:
            raise _RowError(_("userPrincipalName is missing or not an address."), "invalid_upn")
        roles = []
        for value in _split(row.get("roles", "")):
            role = role_by_name_or_code(value)
            if role is None:
                raise _RowError(_("Unknown role: %(role)s") % {"role": value}, "unknown_role")
            roles.append(role.code)
        skus = []
        for value in _split(row.get("licenses", "")):
            product = P.product(value)
            if product is None:
                raise _RowError(_("Unknown product: %(sku)s") % {"sku": value},
                                "unknown_product")
            skus.append(product.sku)
        order = {sku: i for i, sku in enumerate(P.SKUS)}
        skus = sorted(set(skus), key=order.__getitem__)  # Teams Phone before plans
        country = (row.get("usagelocation") or "").strip().upper()
        if country and (len(country) != 2 or not country.isalpha()):
            raise _RowError(_("usageLocation must be a two-letter country code."),
                            "invalid_usage_location")
        lang = (row.get("preferredlanguage") or "").strip().lower()[:2]
        if lang and lang not in ("en", "fr"):
            lang = ""
        email = (row.get("email") or "").strip().lower()
        set_limit = LIMIT_COLUMN in row
        if set_limit:
            try:
                limit = parse_limit(row[LIMIT_COLUMN], label="creditsMonthlyLimit")
            except LimitError as exc:
                raise _RowError(exc.message, "invalid_limit") from exc
        with transaction.atomic():
            # Locked: concurrent imports of the same file update one person in turn.
            person = _person_locked(organization, upn)
            if roles and not may_set_roles and (
                    person is None or set(roles) - set(person.role_codes)):
                # Giving admin roles is not a license decision: an uploader who may only
                # assign licenses must not be able to make anyone (or themselves) an admin.
                raise _RowError(_("Roles: only a Global Administrator can give roles."),
                                "roles_not_allowed")
            done = []
            if person is None:
                if not may_create:
                    raise _RowError(_("Unknown person: %(upn)s") % {"upn": upn},
                                    "unknown_person")
                name = (row.get("displayname") or "").strip()
                if not name:
                    raise _RowError(_("displayName is required for a new person."),
                                    "invalid_display_name")
                try:
                    person = person_create(organization=organization, display_name=name,
                                           upn=upn, email=email, usage_location=country,
                                           preferred_language=lang, roles=roles, actor=actor)
                    done = [_("created")]
                except ServiceError as exc:
                    # Created by a concurrent import since the lookup: update it instead.
                    person = _person_locked(organization, upn)
                    if exc.code != "person_exists" or person is None:
                        raise
            if not done:
                done = [_("updated")]
                if country:
                    person = person_set_usage_location(person=person, country=country,
                                                       actor=actor)
                if roles:
                    person_set_roles(person=person,
                                     roles=set(person.role_codes) | set(roles), actor=actor)
            for sku in skus:
                license_assign(person=person, sku=sku, actor=actor, grow_seats=grow_seats)
            if skus:
                done.append(_("licenses: %(skus)s") % {"skus": ", ".join(skus)})
            if set_limit and person.credits_monthly_limit != limit:
                person = person_spend_limit_set(person=person, monthly_limit=limit,
                                                actor=actor)
                done.append(_("monthly credits limit: %(limit)s") % {
                    "limit": limit if limit is not None else _("none")})
            if roles and person.email and person.user_id is None:
                try:
                    with transaction.atomic():
                        person_enable_sign_in(person=person, password=None, actor=actor)
                except IntegrityError as exc:
                    raise _RowError(_("The e-mail address is already used by another "
                                      "sign-in account."), "email_taken") from exc
                done.append(_("can sign in after a password reset"))
        result.upn = person.upn
        result.ok = True
        result.message = "; ".join(str(d) for d in done)
    except _RowError as exc:
        result.message, result.code = exc.message, exc.code
    except ServiceError as exc:
        result.message, result.code = exc.message, _license_error_code(exc)
    except Exception as exc:  # a validation error of the directory (e.g. a bad e-mail)
        from django.core.exceptions import ValidationError

        if not isinstance(exc, ValidationError):
            raise
        result.message = "; ".join(
            f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items()
        ) if hasattr(exc, "message_dict") else " ".join(exc.messages)
        result.code = "invalid"
    return result


def import_csv(
    *,
    organization: Organization,
    data,
    actor: Actor,
    grow_seats: bool = False,
    may_create_people: bool = True,
    may_set_roles: bool = True,
    on_progress=None,
) -> ImportReport:
    """Read a people or license-action CSV (bytes or text) and apply it row by row.
    `grow_seats` buys the seats the file needs (the command's contract);
    `may_create_people` is False for an uploader without manage_people;
    `may_set_roles` is False for an uploader without manage_org;
    `on_progress(report, rows_total)`, if given, is called once the file is read, after
    every PROGRESS_EVERY rows and at the end (the background upload's progress)."""
    try:
        kind, rows = _read(data)
    except ValueError as exc:
        return ImportReport(fatal=str(exc))
    report = ImportReport(kind=kind)
    if on_progress is not None:
        on_progress(report, len(rows))
    for n, (line, row, problem) in enumerate(rows, start=1):
        if on_progress is not None and n > 1 and (n - 1) % PROGRESS_EVERY == 0:
            on_progress(report, len(rows))
        if problem:
            report.rows.append(_text_rejected(kind, line, row, problem))
        elif kind == "licenses":
            action = LicenseAction(line=line, upn=row.get("upn", ""), sku=row.get("sku", ""),
                                   action=row.get("action", "") or "assign")
            report.rows.append(_apply_action(organization, action, actor, grow_seats))
        else:
            report.rows.append(
                _apply_person_row(organization, line, row, actor, grow_seats,
                                  may_create_people, may_set_roles)
            )
    if on_progress is not None:
        on_progress(report, len(rows))
    return report


def check_csv(data) -> tuple[str, int]:
    """(why the file cannot be read, or "", its number of data rows): what the upload page
    knows before deciding to apply the file in the request or in the background."""
    try:
        _kind, rows = _read(data)
    except ValueError as exc:
        return str(exc), 0
    return "", len(rows)


def _text_rejected(kind, line, row, problem) -> RowResult:
    """The result of a row refused by _cell_problem: none of its cells is used, and only
    those that are text are shown back (a NUL or a surrogate breaks the page and the
    command's output)."""
    def shown(key):
        value = row.get(key, "")
        return "" if text_problem(value) else value

    upn = shown("upn")
    if kind == "people":
        upn = upn.lower()
    return RowResult(line=line, upn=upn, ok=False, message=problem, code="invalid_text",
                     sku=shown("sku") if kind == "licenses" else "",
                     action=shown("action") if kind == "licenses" else "")
