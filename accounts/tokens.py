"""Staff API tokens: signed, stateless, revoked by deactivating the user or rotating the secret."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core import signing

SALT = "accounts.api-token"


def token_issue(*, username: str) -> str:
    """Return a new API token for an existing user."""
    user = get_user_model().objects.get(username=username)
    return signing.dumps({"u": user.get_username(), "n": secrets.token_hex(8)}, salt=SALT)


def token_user(token: str):
    """Return the active user a token was issued to, or None."""
    try:
        data = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return None
    return get_user_model().objects.filter(username=data.get("u"), is_active=True).first()
