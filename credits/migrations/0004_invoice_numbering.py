"""Invoice numbers: one gapless `YYYY-NNNNNN` series per calendar year, counted in
InvoiceSequence; the buyer's legal name, billing address and tax ID on the organization."""

import re

from django.db import migrations, models

NEW_FORMAT = re.compile(r"^(\d{4})-(\d{6,})$")


def start_series_after_existing(apps, schema_editor):
    """Existing invoices keep their numbers: they were handed to customers. Numbers already
    in the new format set their year's counter to the highest one, so the series goes on
    without a gap or a duplicate. Older numbers (`CC-YYYY-<ledger id>`) were not a gapless
    series and cannot collide with the new format, so their years start the new series at 1."""
    Invoice = apps.get_model("credits", "Invoice")
    InvoiceSequence = apps.get_model("credits", "InvoiceSequence")
    last_by_year = {}
    for number in Invoice.objects.values_list("number", flat=True).iterator():
        match = NEW_FORMAT.match(number)
        if match:
            year, n = int(match[1]), int(match[2])
            last_by_year[year] = max(last_by_year.get(year, 0), n)
    for year, last in last_by_year.items():
        InvoiceSequence.objects.update_or_create(year=year, defaults={"last": last})


class Migration(migrations.Migration):

    dependencies = [
        ('credits', '0003_domain_event_parking'),
    ]

    operations = [
        migrations.CreateModel(
            name='InvoiceSequence',
            fields=[
                ('year', models.PositiveSmallIntegerField(primary_key=True, serialize=False)),
                ('last', models.PositiveIntegerField(default=0)),
            ],
            options={
                'verbose_name': 'invoice sequence',
            },
        ),
        migrations.AddField(
            model_name='organization',
            name='billing_address',
            field=models.TextField(blank=True, verbose_name='billing address'),
        ),
        migrations.AddField(
            model_name='organization',
            name='legal_name',
            field=models.CharField(blank=True, max_length=200, verbose_name='legal name'),
        ),
        migrations.AddField(
            model_name='organization',
            name='tax_id',
            field=models.CharField(blank=True, max_length=64, verbose_name='tax ID'),
        ),
        migrations.AlterField(
            model_name='invoice',
            name='number',
            field=models.CharField(max_length=32, verbose_name='invoice number'),
        ),
        migrations.AddConstraint(
            model_name='invoice',
            constraint=models.UniqueConstraint(fields=('number',), name='invoice_unique_number'),
        ),
        migrations.RunPython(start_series_after_existing, migrations.RunPython.noop),
    ]
