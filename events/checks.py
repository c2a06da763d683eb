"""Invariants of the event machinery, checked by ``verify_invariants``."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .models import Unpublished


def check_outbox() -> list[str]:
    """Return a violation when events wait unpublished longer than OUTBOX_UNPUBLISHED_ALERT_SECONDS."""
    limit = timezone.now() - timedelta(seconds=settings.OUTBOX_UNPUBLISHED_ALERT_SECONDS)
    late = Unpublished.objects.filter(queued_at__lt=limit)
    count = late.count()
    if not count:
        return []
    oldest = late.select_related("event").order_by("seq").first().event
    return [f"{count} events unpublished for over {settings.OUTBOX_UNPUBLISHED_ALERT_SECONDS}s (oldest {oldest})"]
