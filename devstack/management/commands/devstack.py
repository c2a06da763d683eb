from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from devstack.supervisor import Devstack


class Command(BaseCommand):
    help = (
        "Run the whole system: embedded PostgreSQL and NATS (unless DATABASE_URL / NATS_URL are set), "
        "web, relay and workers; restart what dies; Ctrl-C stops everything."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="storefront port (default 8000)")
        parser.add_argument("--web", type=int, default=2, help="web server worker processes (default 2)")
        parser.add_argument(
            "--live",
            type=int,
            default=2,
            help="ASGI web processes serving websockets (and pages) on --live-port (default 2; 0: none)",
        )
        parser.add_argument(
            "--live-port", type=int, default=0, help="port of the ASGI processes (default --port + 1, or a free one)"
        )
        parser.add_argument("--workers", type=int, default=1, help="consumer worker processes (default 1)")
        parser.add_argument("--nats-cluster", type=int, default=1, choices=[1, 3], help="embedded NATS nodes")
        parser.add_argument("--fresh", action="store_true", help="wipe the embedded data first")
        parser.add_argument("--data", type=Path, default=None, help="embedded data folder (default .data/devstack)")

    def handle(self, *args, port, web, live, live_port, workers, nats_cluster, fresh, data, **options):
        if web < 1 or workers < 1 or live < 0:
            raise CommandError("--web and --workers must be at least 1, --live at least 0")
        stack = Devstack(
            port=port, web=web, live=live, live_port=live_port, workers=workers, nats_cluster=nats_cluster, fresh=fresh
        )
        if data is not None:
            stack.data_dir = data.resolve()
        code = stack.run()
        if code:
            raise CommandError("devstack stopped on an error (see above)")
