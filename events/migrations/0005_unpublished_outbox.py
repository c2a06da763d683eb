"""The outbox moves out of the event log: a narrow table of the unpublished events, filled by a trigger.

The log's rows are never updated again (publishing was an UPDATE of a wide row
with six indexes, and a dead version for VACUUM to clear, per event). The
rows still unpublished, and their failures, move to ``events_outbox`` first.
"""

import django.db.models.functions.datetime
from django.db import migrations, models

ENQUEUE = """
CREATE FUNCTION events_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events_outbox (seq, event_id) SELECT seq, event_id FROM appended;
    RETURN NULL;
END $$;
CREATE TRIGGER events_enqueue AFTER INSERT ON events_storedevent
    REFERENCING NEW TABLE AS appended FOR EACH STATEMENT EXECUTE FUNCTION events_enqueue();
"""
DROP_ENQUEUE = "DROP TRIGGER events_enqueue ON events_storedevent; DROP FUNCTION events_enqueue();"
MOVE_UNPUBLISHED = """
INSERT INTO events_outbox (seq, event_id, queued_at, attempts, error, retry_at)
SELECT seq, event_id, occurred_at, publish_attempts, publish_error, retry_at FROM events_storedevent
WHERE published_at IS NULL ORDER BY seq
"""
MOVE_BACK = """
UPDATE events_storedevent SET publish_attempts = o.attempts, publish_error = o.error, retry_at = o.retry_at
FROM events_outbox o WHERE o.event_id = events_storedevent.event_id
"""
MARK_PUBLISHED = """
UPDATE events_storedevent e SET published_at = now()
WHERE NOT EXISTS (SELECT 1 FROM events_outbox o WHERE o.event_id = e.event_id)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0004_storedevent_publish_failures"),
    ]

    operations = [
        migrations.CreateModel(
            name="Unpublished",
            fields=[
                ("seq", models.BigIntegerField(primary_key=True, serialize=False)),
                (
                    "event",
                    models.OneToOneField(
                        db_column="event_id",
                        db_constraint=False,
                        on_delete=models.deletion.CASCADE,
                        related_name="unpublished",
                        to="events.storedevent",
                        to_field="event_id",
                    ),
                ),
                ("queued_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
                ("attempts", models.PositiveIntegerField(db_default=0, default=0)),
                ("error", models.TextField(blank=True, db_default="", default="")),
                ("retry_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={"db_table": "events_outbox"},
        ),
        migrations.RunSQL(MOVE_UNPUBLISHED, MARK_PUBLISHED),
        migrations.RunSQL(migrations.RunSQL.noop, MOVE_BACK),
        migrations.RunSQL(ENQUEUE, DROP_ENQUEUE),
        migrations.RemoveIndex(model_name="storedevent", name="outbox_unpublished"),
        migrations.RemoveField(model_name="storedevent", name="published_at"),
        migrations.RemoveField(model_name="storedevent", name="publish_attempts"),
        migrations.RemoveField(model_name="storedevent", name="publish_error"),
        migrations.RemoveField(model_name="storedevent", name="retry_at"),
    ]
