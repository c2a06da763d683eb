import uuid

from django.db import migrations, models


def fill_public_ids(apps, schema_editor):
    """Give every dead letter kept so far its own UUID (a default would give them all the same one)."""
    DeadLetter = apps.get_model("events", "DeadLetter")
    for letter in DeadLetter.objects.filter(public_id__isnull=True).only("id"):
        letter.public_id = uuid.uuid4()
        letter.save(update_fields=["public_id"])


class Migration(migrations.Migration):
    # A unique field on a table with rows, as https://docs.djangoproject.com/en/5.2/howto/writing-migrations/
    # ("Migrations that add unique fields"): nullable, filled row by row, then unique and required.

    dependencies = [
        ("events", "0002_storedevent_traceparent"),
    ]

    operations = [
        migrations.AddField(
            model_name="deadletter",
            name="public_id",
            field=models.UUIDField(null=True, editable=False),
        ),
        migrations.RunPython(fill_public_ids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="deadletter",
            name="public_id",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
