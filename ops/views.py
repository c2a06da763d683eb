"""The ops page (staff), its live figures as JSON (failed events too), dead-letter replay, ``GET /metrics``."""

from __future__ import annotations

import math
import uuid

from django.conf import settings
from django.contrib.auth.decorators import user_passes_test
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from accounts.auth import staff_required
from events import metrics
from events.models import DeadLetter
from web.api import ApiError, api_view
from web.ratelimit import rate_limited

from . import history, selectors
from .services import AlreadyReplayed, ReplayUnavailable, dead_letter_replay


def prometheus(request: HttpRequest) -> HttpResponse:
    """Answer Prometheus: every process's metrics (multiprocess mode) and the database's figures."""
    return HttpResponse(generate_latest(metrics.registry()), content_type=CONTENT_TYPE_LATEST)


@user_passes_test(lambda user: user.is_active and user.is_staff)  # else to the staff login page
def page(request: HttpRequest) -> HttpResponse:
    context = {"hops": selectors.HOPS, "history_minutes": settings.OPS_HISTORY_MINUTES}
    return render(request, "ops/page.html", context)


@api_view("GET")
@staff_required
def samples(request: HttpRequest) -> JsonResponse:
    """Answer the history of figures after ``?since=`` (unix seconds; default: all that is kept)."""
    raw = request.GET.get("since", "0")
    try:
        since = float(raw)
    except ValueError:
        since = math.nan
    if not math.isfinite(since) or since < 0:
        raise ApiError(400, "bad_since", "since: unix seconds, a number ≥ 0", {"since": "not a number ≥ 0"})
    return JsonResponse({"samples": history.history(since=since), "window": settings.OPS_HISTORY_MINUTES * 60})


@api_view("GET")
@staff_required
def figures(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            **selectors.figures(),
            "hops": selectors.recent_order_hops(settings.OPS_RECENT_ORDERS),
            "dead_letters": selectors.dead_letters(),
            "failed_events": selectors.failed_events(),
        }
    )


@api_view("POST")
@rate_limited("staff_writes")
@staff_required
def replay(request: HttpRequest, dead_letter_id: uuid.UUID) -> JsonResponse:
    try:
        letter = dead_letter_replay(dead_letter_id=dead_letter_id)
    except DeadLetter.DoesNotExist:
        raise ApiError(404, "not_found", "no such dead letter") from None
    except AlreadyReplayed:
        raise ApiError(409, "already_replayed", "this dead letter was replayed already") from None
    except ReplayUnavailable as exc:
        raise ApiError(503, "nats_unavailable", str(exc)) from None
    return JsonResponse({"id": str(letter.public_id), "replayed_at": letter.replayed_at.isoformat()}, status=202)
