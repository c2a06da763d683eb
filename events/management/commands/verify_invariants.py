from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string


class Command(BaseCommand):
    help = "Check no oversell, stock equal to its events, no stuck orders, no stuck outbox (exit 1 on a violation)."

    def handle(self, *args, **options):
        violations = []
        for path in settings.INVARIANT_CHECKS:
            found = import_string(path)()
            self.stdout.write(f"{path}: {'OK' if not found else f'{len(found)} violations'}")
            violations += found
        for violation in violations[:50]:
            self.stdout.write(f"  {violation}")
        if violations:
            raise CommandError(f"{len(violations)} invariant violations")
        self.stdout.write("all invariants hold")
