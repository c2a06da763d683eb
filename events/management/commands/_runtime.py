"""Run a long-lived asyncio service until SIGINT or SIGTERM."""

import asyncio
import signal


def run_until_signalled(service) -> None:
    """Run ``service.run()``; SIGINT/SIGTERM set ``service.stop`` for a clean finish."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, service.stop.set)
        await service.run()

    asyncio.run(main())
