from django.core.management.base import BaseCommand, CommandError

from events.projections import configured_projections


class Command(BaseCommand):
    help = "Rebuild every read model from the event log; with --check, only report differences."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="compare, change nothing; exit 1 on a difference")
        parser.add_argument("--only", help="one projection by name")

    def handle(self, *args, check, only, **options):
        projections = [p for p in configured_projections() if only in (None, p.name)]
        if not projections:
            raise CommandError(f"no projection named {only!r}")
        problems = []
        for projection in projections:
            if check:
                found = projection.differences()
                problems += found
                self.stdout.write(f"{projection.name}: {'OK' if not found else f'{len(found)} differences'}")
            else:
                self.stdout.write(f"{projection.name}: rebuilt {projection.rebuild()} rows")
        for problem in problems:
            self.stdout.write(f"  {problem}")
        if problems:
            raise CommandError(f"{len(problems)} differences between read models and the event log")
