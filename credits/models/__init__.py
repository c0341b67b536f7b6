"""Models of the credits app, one module per sub-domain; Django finds them all here:

- credits.platform.models: organizations, people, admin roles, sign-in accounts, audit log,
  domain events;
- billing: the credit account, its immutable ledger, payments, auto-recharge, invoices;
- licenses: products, subscriptions (seats) and license assignments.
"""

from ..platform.models import (
    AuditEntry,
    BillingAccountType,
    DomainEvent,
    Language,
    Organization,
    Person,
    PersonRole,
    User,
    UserManager,
)
from .billing import (
    AutoRechargeMode,
    CreditAccount,
    Invoice,
    InvoiceSequence,
    LedgerEntry,
    LedgerEntryImmutable,
    LedgerKind,
    PaymentMethod,
    RechargeAttempt,
    RechargeKind,
    RechargeStatus,
    SimulatedGatewayCard,
    SimulatedGatewayCharge,
)
from .licenses import LicenseAssignment, MinutePool, Subscription
from .people_imports import PeopleImportJob, PeopleImportRow, PeopleImportStatus
from .refunds import (
    CreditNote,
    CreditNoteSequence,
    Refund,
    RefundStatus,
    SimulatedGatewayRefund,
)
from .spend import SpendCounter

__all__ = [
    "PeopleImportJob",
    "PeopleImportRow",
    "PeopleImportStatus",
    "AuditEntry",
    "BillingAccountType",
    "DomainEvent",
    "Language",
    "Organization",
    "Person",
    "PersonRole",
    "User",
    "UserManager",
    "AutoRechargeMode",
    "CreditAccount",
    "Invoice",
    "InvoiceSequence",
    "LedgerEntry",
    "LedgerEntryImmutable",
    "LedgerKind",
    "PaymentMethod",
    "RechargeAttempt",
    "RechargeKind",
    "RechargeStatus",
    "SimulatedGatewayCard",
    "SimulatedGatewayCharge",
    "LicenseAssignment",
    "MinutePool",
    "Subscription",
    "CreditNote",
    "CreditNoteSequence",
    "Refund",
    "RefundStatus",
    "SimulatedGatewayRefund",
    "SpendCounter",
]
