"""Staff API tokens: issued to an existing user, verified by signature, refused once the user is inactive."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.management import CommandError, call_command

from accounts.tokens import SALT, token_issue, token_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin():
    return get_user_model().objects.create_user("admin", is_staff=True)


def test_a_token_names_its_user(admin):
    assert token_user(token_issue(username="admin")) == admin


def test_each_token_is_new_and_all_stay_valid(admin):
    first, second = token_issue(username="admin"), token_issue(username="admin")

    assert first != second
    assert token_user(first) == token_user(second) == admin


def test_a_token_of_an_inactive_user_is_refused(admin):
    token = token_issue(username="admin")
    admin.is_active = False
    admin.save()

    assert token_user(token) is None


def test_a_token_of_a_deleted_user_is_refused(admin):
    token = token_issue(username="admin")
    admin.delete()

    assert token_user(token) is None


@pytest.mark.parametrize("part", [0, 1, 2], ids=["payload", "timestamp", "signature"])
def test_a_tampered_token_is_refused(admin, part):
    parts = token_issue(username="admin").split(":")
    parts[part] = parts[part][:-1] + ("x" if parts[part][-1] != "x" else "y")

    assert token_user(":".join(parts)) is None


def test_a_token_cannot_be_rewritten_to_name_another_user(admin):
    get_user_model().objects.create_user("ann")
    payload, rest = token_issue(username="ann").split(":", 1)
    forged_payload = signing.b64_encode(b'{"u":"admin","n":"0"}').decode()

    assert token_user(f"{forged_payload}:{rest}") is None
    assert token_user(f"{payload}:{rest}").username == "ann"


@pytest.mark.parametrize(
    "forge",
    [
        lambda: signing.dumps({"u": "admin", "n": "0"}),
        lambda: signing.dumps({"u": "admin", "n": "0"}, salt=SALT, key="another-secret"),
    ],
    ids=["other salt", "other secret"],
)
def test_a_value_signed_for_another_purpose_or_with_another_key_is_refused(admin, forge):
    assert token_user(forge()) is None


@pytest.mark.parametrize("token", ["", "x", "a:b:c", "::", "é:é:é", "x" * 10_000])
def test_garbage_is_refused(admin, token):
    assert token_user(token) is None


def test_no_token_is_issued_for_an_unknown_user(db):
    with pytest.raises(get_user_model().DoesNotExist):
        token_issue(username="nobody")


def test_issue_token_prints_a_token_on_its_last_line(admin):
    out = StringIO()

    call_command("issue_token", "admin", stdout=out)

    assert token_user(out.getvalue().splitlines()[-1]) == admin


def test_issue_token_for_an_unknown_user_says_what_to_do(db):
    with pytest.raises(CommandError, match="no user 'nobody'.*seed_demo"):
        call_command("issue_token", "nobody", stdout=StringIO())
