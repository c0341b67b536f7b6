"""Month-to-date credits spend, kept as counters so that call authorization reads it with
one index lookup instead of summing the ledger (credits.spend_limits).

One row per (organization, UTC calendar month, person_key): person_key 0 is the whole
organization, any other value a person's id. `spent` is the sum of the usage ledger entries
of the month (by the entry's `occurred_at`, when the call ended), in the account currency;
it only grows, and is written in the same transaction, under the same account lock, as the
usage entries themselves (credits.services.ledger.credits_charge_usage_batch).
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from ..platform.models import Organization

ORGANIZATION_KEY = 0


class SpendCounter(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="+")
    month = models.DateField()  # first day of the UTC month
    person_key = models.BigIntegerField(default=ORGANIZATION_KEY)
    spent = models.DecimalField(_("spent"), max_digits=14, decimal_places=2, default=0)

    class Meta:
        verbose_name = _("spend counter")
        constraints = [
            models.UniqueConstraint(fields=["organization", "month", "person_key"],
                                    name="spend_counter_unique"),
        ]

    def __str__(self):
        return f"{self.organization_id} {self.month:%Y-%m} {self.person_key}: {self.spent}"
