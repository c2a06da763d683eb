import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from web.openapi import document

DEFAULT = Path(settings.BASE_DIR) / "docs" / "openapi.json"


class Command(BaseCommand):
    help = "Write the HTTP API's contract (OpenAPI 3.1) generated from the URLconf and the views' operations."

    def add_arguments(self, parser):
        parser.add_argument("--output", type=Path, default=DEFAULT, help=f"default {DEFAULT}")
        parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from the code")

    def handle(self, *args, output, check, **options):
        text = json.dumps(document(), indent=2) + "\n"
        if check:
            if not output.exists() or output.read_text() != text:
                raise CommandError(f"{output} is out of date: run `python manage.py export_openapi`")
            self.stdout.write(f"{output} is up to date")
            return
        output.write_text(text)
        self.stdout.write(f"wrote {output}")
