"""Models of the billing account, one module per sub-domain:

- tenants: organizations, people, admin roles, sign-in accounts, audit log, domain events;
- billing: the credit account, its immutable ledger, payments, auto-recharge, invoices;
- licenses: products, subscriptions (seats) and license assignments.
"""

from .billing import *  # noqa: F403
from .licenses import *  # noqa: F403
from .tenants import *  # noqa: F403
