"""Run a long-lived asyncio service until SIGINT or SIGTERM."""

import asyncio
import signal

from django.conf import settings

from events import heap, metrics


def run_until_signalled(service) -> None:
    """Run ``service.run()``; SIGINT/SIGTERM set ``service.stop`` for a clean finish."""

    metrics.serve(settings.METRICS_PORT)
    heap.freeze_startup()  # events/heap.py

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, service.stop.set)
        await service.run()

    asyncio.run(main())
