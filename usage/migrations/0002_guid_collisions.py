from django.db import migrations


def report_collisions(apps, schema_editor):
    pass  # filled in by the GUID normalization work


class Migration(migrations.Migration):
    dependencies = [("usage", "0001_initial")]

    operations = [migrations.RunPython(report_collisions, migrations.RunPython.noop)]
