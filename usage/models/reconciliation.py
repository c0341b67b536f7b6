"""Models of Reports > Reconciliation: Microsoft's reported charges beside this system's.

`ReconciliationRollup` keeps per-UTC-day sums by person, destination country and the
currency Microsoft reported, so the page reads a few thousand rows whatever the size of the
call table. `ReconciliationTopCall` keeps, per UTC day, the calls whose difference is
largest (at most `TOP_PER_DAY`): the top of any range of days
is among the tops of its days, so the page's "largest differences" reads at most that many
rows per day. Both are kept current inside the ingestion transaction and rebuilt with the
report's rollups (`rebuild_usage_rollups`).
"""

from django.db import models

from credits.models import Organization

__all__ = ["TOP_PER_DAY", "ReconciliationRollup", "ReconciliationTopCall"]

TOP_PER_DAY = 50  # the page lists the 50 largest differences of a range


class ReconciliationRollup(models.Model):
    """Sums of one UTC day's calls of one person to one destination country, as reported in
    one currency.

    `currency` is the currency of Microsoft's reported charge, "" when Microsoft reported no
    charge (or no currency): only rows in the organization's currency can be compared, the
    others are shown apart. `person_key` and `upn` follow `UsageRollup` (0 and the UPN for
    calls matched to nobody). `destination_country` is the rating's, "" when unknown.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    person_key = models.BigIntegerField(default=0)
    upn = models.CharField(max_length=128, blank=True)
    destination_country = models.CharField(max_length=2, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    calls = models.PositiveIntegerField(default=0)
    # Calls this system could not rate (their rated charge is 0): they explain differences.
    unrated = models.PositiveIntegerField(default=0)
    # Microsoft's Charge, in `currency` (5 places, as reported).
    reported_charge = models.DecimalField(max_digits=20, decimal_places=5, default=0)
    # This system's charge, in the organization's currency.
    rated_charge = models.DecimalField(max_digits=18, decimal_places=2, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "day", "person_key", "upn", "destination_country",
                        "currency"],
                name="reconciliation_rollup_key",
            ),
        ]

    def __str__(self):
        return f"{self.day} {self.person_key} {self.destination_country} {self.currency}"


class ReconciliationTopCall(models.Model):
    """One of a day's calls whose |rated - reported| is largest, reported in the
    organization's currency. The call is found again by its usage id."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    graph_id = models.CharField(max_length=64)
    difference = models.DecimalField(max_digits=20, decimal_places=5)  # rated - reported
    gap = models.DecimalField(max_digits=20, decimal_places=5)  # |difference|

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "graph_id"],
                                    name="reconciliation_top_call_key"),
        ]
        indexes = [
            models.Index(fields=["organization", "day", "-gap"],
                         name="reconciliation_top_day_gap"),
        ]

    def __str__(self):
        return f"{self.day} {self.graph_id} {self.difference}"
