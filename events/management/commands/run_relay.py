from django.core.management.base import BaseCommand

from events.relay import Relay

from ._runtime import run_until_signalled


class Command(BaseCommand):
    help = "Publish committed outbox events to JetStream (safe to run several at once)."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=0, help="events per round (default RELAY_BATCH_SIZE)")
        parser.add_argument("--max-in-flight", type=int, default=0, help="publishes awaiting an ack at once")

    def handle(self, *args, batch_size, max_in_flight, **options):
        run_until_signalled(Relay(batch_size=batch_size, max_in_flight=max_in_flight))
