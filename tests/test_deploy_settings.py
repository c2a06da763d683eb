"""Production settings: ``manage.py check --deploy`` finds nothing with DEBUG off, and each off-switch works.

The settings are read from the environment, so each case runs the real command in a child process.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys

import pytest
from django.conf import settings

OFF_SWITCHES = {
    "DJANGO_HTTPS": {"W004", "W008", "W012", "W016"},
    "DJANGO_SECURE_HSTS_SECONDS": {"W004"},
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": {"W005"},
    "DJANGO_SECURE_HSTS_PRELOAD": {"W021"},
    "DJANGO_SECURE_SSL_REDIRECT": {"W008"},
    "DJANGO_SESSION_COOKIE_SECURE": {"W012"},
    "DJANGO_CSRF_COOKIE_SECURE": {"W016"},
}


def check_deploy(**extra: str) -> tuple[int, set[str], str]:
    """Run ``check --deploy`` as production would (DEBUG off, a long key, hosts); return code, warnings, output."""
    env = {k: v for k, v in os.environ.items() if k not in OFF_SWITCHES and not k.startswith("DJANGO_")}
    env.update(DJANGO_DEBUG="0", DJANGO_SECRET_KEY=secrets.token_urlsafe(64), DJANGO_ALLOWED_HOSTS="shop.example.com")
    env.update(extra)
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    return done.returncode, set(re.findall(r"security\.(W\d+)", output)), output


def test_check_deploy_finds_nothing_with_the_production_defaults():
    code, warnings, output = check_deploy()

    assert (code, warnings) == (0, set()), output
    assert "System check identified no issues" in output


@pytest.mark.parametrize(("variable", "expected"), OFF_SWITCHES.items(), ids=OFF_SWITCHES)
def test_each_variable_turns_its_hardening_off(variable, expected):
    code, warnings, output = check_deploy(**{variable: "0"})

    assert code == 1 and warnings == expected, output


def test_debug_on_means_plain_http_by_default():
    code, warnings, output = check_deploy(DJANGO_DEBUG="1")

    assert warnings == {"W004", "W008", "W012", "W016", "W018"}, output
