#!/usr/bin/env python
"""Django's command-line utility for this project."""

import os
import sys

from devstack.state import export_to_environ

# Commands that run without a database (the devstack starts one itself).
NO_DATABASE_NEEDED = {
    "help",
    "--help",
    "-h",
    "version",
    "--version",
    "devstack",
    "makemigrations",
    "check",
    "export_event_schema",
}


def main() -> None:
    """Run an administrative task."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    command = sys.argv[1] if len(sys.argv) > 1 else "help"
    # Beside a running devstack, commands use its servers; a second devstack starts its own.
    if command != "devstack":
        export_to_environ()
    from django.conf import settings
    from django.core.management import execute_from_command_line

    if command not in NO_DATABASE_NEEDED and not settings.DATABASE_CONFIGURED:
        sys.exit(
            f"error: `{command}` needs a database: set DATABASE_URL, "
            "or start the devstack in this checkout (`make demo`) and run it beside it"
        )
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
