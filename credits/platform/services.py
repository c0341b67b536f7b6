"""Writes of the platform: who acts (Actor), the error services raise (ServiceError), the
audit record, and organizations and people (create, roles, sign-in, language)."""

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from .client_ip import client_ip
from .models import AuditEntry, Organization, Person, PersonRole, User
from .roles import ROLES_BY_CODE


@dataclass(frozen=True)
class Actor:
    """Who is making a change, for the audit log: a person at an address, or the system."""

    person: Person | None
    label: str
    ip: str | None = None

    @classmethod
    def from_request(cls, request) -> "Actor":
        person = getattr(request, "person", None)
        label = person.upn if person else str(getattr(request, "user", "") or "anonymous")
        # Behind the proxies counted by TRUSTED_PROXY_COUNT, the address they forward.
        return cls(person=person, label=label, ip=client_ip(request))

    @classmethod
    def system(cls, label: str) -> "Actor":
        return cls(person=None, label=label)

    @classmethod
    def coerce(cls, actor) -> "Actor":
        """An Actor as it is; anything else (a label, None) as the system acting."""
        return actor if isinstance(actor, cls) else cls.system(str(actor or "system"))


def audit_record(
    *,
    organization: Organization,
    actor: Actor,
    action: str,
    target=None,
    changes: dict | None = None,
) -> AuditEntry:
    return AuditEntry.objects.create(
        organization=organization,
        actor=actor.person,
        actor_label=actor.label[:200],
        ip_address=actor.ip,
        action=action,
        target_type=target._meta.model_name if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_label=str(target)[:200] if target is not None else "",
        changes=changes or {},
    )


class ServiceError(Exception):
    """A rule refused the change; `field` names the input at fault when there is one."""

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


@transaction.atomic
def organization_create(
    *,
    name: str,
    slug: str,
    country: str,
    currency: str,
    billing_region: str | None = None,
    billing_account_type: str = "direct",
    actor: Actor | None = None,
) -> Organization:
    if Organization.objects.filter(slug=slug).exists():
        raise ServiceError(_("An organization with this slug already exists."), field="slug")
    org = Organization(
        name=name,
        slug=slug,
        country=country.upper(),
        currency=currency.upper(),
        billing_region=(billing_region or country).upper(),
        billing_account_type=billing_account_type,
    )
    org.full_clean()
    org.save()
    audit_record(
        organization=org,
        actor=actor or Actor.system("create_org"),
        action="organization.create",
        target=org,
        changes={"name": name, "country": org.country, "currency": org.currency},
    )
    return org


def _validate_roles(roles) -> list[str]:
    codes = []
    for code in roles:
        if code not in ROLES_BY_CODE:
            raise ServiceError(_("Unknown role: %(role)s") % {"role": code}, field="roles")
        codes.append(code)
    return sorted(set(codes))


@transaction.atomic
def person_create(
    *,
    organization: Organization,
    display_name: str,
    upn: str,
    email: str = "",
    usage_location: str = "",
    preferred_language: str = "",
    roles: list[str] | tuple[str, ...] = (),
    actor: Actor,
) -> Person:
    """Add a person to the directory. A user name already taken (case aside), also by a
    concurrent transaction, raises ServiceError with code "person_exists"."""
    codes = _validate_roles(roles)
    taken = ServiceError(_("A person with this user name already exists."), field="upn",
                         code="person_exists")
    if organization.people.filter(upn__iexact=upn).exists():
        raise taken
    person = Person(
        organization=organization,
        display_name=display_name,
        upn=upn.lower(),
        email=email.lower(),
        usage_location=usage_location.upper(),
        preferred_language=preferred_language,
    )
    # The unique user name is left to the database: a check here could not see a person
    # that a concurrent import is creating, the constraint does.
    person.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            person.save()
    except IntegrityError:
        if organization.people.filter(upn__iexact=upn).exists():
            raise taken from None
        raise
    PersonRole.objects.bulk_create([PersonRole(person=person, role=c) for c in codes])
    audit_record(
        organization=organization,
        actor=actor,
        action="person.create",
        target=person,
        changes={"upn": person.upn, "roles": codes},
    )
    return person


@transaction.atomic
def person_set_roles(*, person: Person, roles, actor: Actor) -> Person:
    codes = _validate_roles(roles)
    # Locked, so that concurrent changes of one person's roles (two imports giving the same
    # role) read each other's result instead of inserting the same role twice.
    Person.objects.select_for_update(of=("self",), no_key=True).only("pk").get(pk=person.pk)
    before = sorted(person.roles.values_list("role", flat=True))
    if before == codes:
        return person
    person.roles.exclude(role__in=codes).delete()
    PersonRole.objects.bulk_create(
        [PersonRole(person=person, role=c) for c in codes if c not in before]
    )
    person._role_codes = codes
    audit_record(
        organization=person.organization,
        actor=actor,
        action="person.roles",
        target=person,
        changes={"roles": {"from": before, "to": codes}},
    )
    return person


@transaction.atomic
def person_set_language(*, person: Person, language: str, actor: Actor) -> Person:
    before = person.preferred_language
    if before == language:
        return person
    person.preferred_language = language
    person.full_clean()
    person.save(update_fields=["preferred_language"])
    audit_record(
        organization=person.organization,
        actor=actor,
        action="person.language",
        target=person,
        changes={"preferred_language": {"from": before, "to": language}},
    )
    return person


@transaction.atomic
def person_enable_sign_in(*, person: Person, password: str | None, actor: Actor) -> User:
    """Give a person with an e-mail a sign-in account (they set a password by reset)."""
    if not person.email:
        raise ServiceError(_("The person has no e-mail address."), field="email")
    # Locked and read again: a concurrent call may have linked an account meanwhile.
    # get_or_create copes with an account created concurrently (its insert fails, the
    # account is read back), and the one-to-one link refuses an account taken by another
    # person with an IntegrityError for the caller to explain.
    locked = Person.objects.select_for_update(of=("self",), no_key=True).get(pk=person.pk)
    user = locked.user
    if user is not None:
        person.user = user
    else:
        user, _created = User.objects.get_or_create(email=person.email.lower())
        person.user = user
        person.save(update_fields=["user"])
    if password:
        user.set_password(password)
        user.save(update_fields=["password"])
    elif not user.has_usable_password():
        user.set_unusable_password()
        user.save(update_fields=["password"])
    audit_record(
        organization=person.organization,
        actor=actor,
        action="person.sign_in_enabled",
        target=person,
    )
    return user
