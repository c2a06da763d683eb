"""Staff authentication for the JSON API: ``Authorization: Bearer <token>`` or a staff session."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.middleware.csrf import CsrfViewMiddleware

from web.api import ApiError

from .tokens import token_user


def _csrf_failure(request) -> bool:
    checker = CsrfViewMiddleware(lambda r: None)
    return checker.process_view(request, None, (), {}) is not None


def staff_required(view: Callable) -> Callable:
    """Let only staff through: a valid Bearer token, or a staff session (CSRF-checked on writes)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            user = token_user(header.removeprefix("Bearer ").strip())
            if user is None:
                raise ApiError(401, "unauthenticated", "the token is invalid or its user is inactive")
        else:
            user = request.user
            if not user.is_authenticated:
                raise ApiError(401, "unauthenticated", "send Authorization: Bearer <token> or log in as staff")
            if request.method not in ("GET", "HEAD") and _csrf_failure(request):
                raise ApiError(403, "csrf_failed", "CSRF check failed for a session-authenticated write")
        if not user.is_staff:
            raise ApiError(403, "forbidden", "staff only")
        request.user = user
        return view(request, *args, **kwargs)

    return wrapper
