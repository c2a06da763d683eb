import asyncio

from django.core.management.base import BaseCommand

from events import bus
from events.consumer import configured_consumers


class Command(BaseCommand):
    help = "Create or update the JetStream streams and durable consumers (idempotent)."

    def handle(self, *args, **options):
        async def setup():
            nc = await bus.connect("setup_streams", wait=False, allow_reconnect=False)
            try:
                js = nc.jetstream()
                streams = await bus.ensure_streams(js)
                consumers = configured_consumers()
                for c in consumers:
                    await bus.ensure_consumer(js, c.stream, c.name, c.subjects)
                return streams, [c.name for c in consumers]
            finally:
                await nc.close()

        streams, consumers = asyncio.run(setup())
        self.stdout.write(f"streams: {', '.join(streams)}; consumers: {', '.join(consumers)}")
