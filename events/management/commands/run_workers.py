from django.core.management.base import BaseCommand, CommandError

from events.consumer import Runner, configured_consumers

from ._runtime import run_until_signalled


class Command(BaseCommand):
    help = "Run the durable consumers (handlers and projections) of one or both apps."

    def add_arguments(self, parser):
        parser.add_argument("--only", metavar="APP", help="only this app's consumers (an app of EVENT_CONSUMERS)")
        parser.add_argument("--batch-size", type=int, default=0, help="messages per fetch and transaction")

    def handle(self, *args, only, batch_size, **options):
        consumers = configured_consumers(only)
        if not consumers:
            apps = sorted({c.app for c in configured_consumers()})
            raise CommandError(f"no consumers configured for {only!r}; --only takes one of: {', '.join(apps)}")
        self.stderr.write(f"consumers: {', '.join(c.name for c in consumers)}")
        run_until_signalled(Runner(consumers, batch_size=batch_size))
