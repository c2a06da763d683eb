from django.core.management.base import BaseCommand, CommandError

from events.consumer import Runner, configured_consumers

from ._runtime import run_until_signalled


class Command(BaseCommand):
    help = "Run the durable consumers (handlers and projections) of one or both apps."

    def add_arguments(self, parser):
        parser.add_argument("--only", choices=["shop", "inventory"], help="only this app's consumers")
        parser.add_argument("--batch-size", type=int, default=0, help="messages per fetch and transaction")

    def handle(self, *args, only, batch_size, **options):
        consumers = configured_consumers(only)
        if not consumers:
            raise CommandError(f"no consumers configured for {only!r}")
        self.stderr.write(f"consumers: {', '.join(c.name for c in consumers)}")
        run_until_signalled(Runner(consumers, batch_size=batch_size))
