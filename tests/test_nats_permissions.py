"""Each service's NATS user may do what that service does and nothing else, refused by a real nats-server.

The server runs with ``deploy/nats/auth.conf``, as every embedded server and
compose's do. Given a user, when it tries what its service must not do (delete,
purge or create a stream; publish a subject another service owns), then the
server refuses it: the client hears a permissions violation, and nothing
changed. What each service must do is shown allowed beside it, and the whole
suite runs each process as its own user (``tests/pipeline.py``).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import urllib.request

import httpx
import nats
import pytest
from nats.js import api as js_api

from devstack import natsauth
from devstack.embedded import EmbeddedNats
from events import bus
from tests.pipeline import run_async, wait_for
from tests.test_deploy_monitoring import BASE, load_yaml
from tests.test_faults import all_final

SHORT = 1.0  # seconds: a refused request gets no answer, only a -ERR, so it ends by timing out


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    node = EmbeddedNats(tmp_path_factory.mktemp("secured") / "nats", users=natsauth.passwords())
    node.start()
    run_async(setup(node.url_as("admin")))
    yield node
    node.stop()


async def setup(url: str) -> None:
    """Create the streams and one durable as setup_streams does (admin)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await bus.ensure_streams(js)
        await bus.ensure_consumer(js, "SHOP", "inventory", ["shop.order.placed"])
    finally:
        await nc.close()


class As:
    """A connection as one service's user that records what the server refused."""

    def __init__(self, server: EmbeddedNats, service: str):
        self.url = server.url_as(service)
        self.refusals: list[str] = []

    async def __aenter__(self):
        async def on_error(exc: Exception) -> None:
            self.refusals.append(str(exc))

        self.nc = await nats.connect(self.url, error_cb=on_error, allow_reconnect=False)
        self.js = self.nc.jetstream(timeout=SHORT)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.nc.close()

    async def refused(self, operation) -> str:
        """Run ``operation``; assert the server refused it, and return the violation it sent (lower case)."""
        before = len(self.refusals)
        with pytest.raises((nats.errors.TimeoutError, asyncio.TimeoutError)):
            await operation()
        await self.nc.flush()
        new = [r.lower() for r in self.refusals[before:]]
        assert any("permissions violation" in r for r in new), self.refusals
        return new[-1]


async def streams(server: EmbeddedNats) -> dict[str, int]:
    async with As(server, "admin") as admin:
        return {name: (await admin.js.stream_info(name)).state.messages for name in ("SHOP", "INVENTORY")}


def test_the_workers_user_cannot_delete_purge_or_create_a_stream(server):
    async def scenario():
        async with As(server, "workers") as workers:
            deleting = await workers.refused(lambda: workers.js.delete_stream("SHOP"))
            assert '"$js.api.stream.delete.shop"' in deleting
            await workers.refused(lambda: workers.js.purge_stream("INVENTORY"))
            await workers.refused(lambda: workers.js.add_stream(name="EVIL", subjects=["evil.>"]))
            await workers.refused(lambda: workers.js.delete_consumer("SHOP", "inventory"))
            # ... while what a worker does goes through: its durable, a pull, its own events.
            refused = len(workers.refusals)
            await bus.ensure_consumer(workers.js, "SHOP", "inventory", ["shop.order.placed"])
            assert (await workers.js.stream_info("SHOP")).config.name == "SHOP"
            ack = await workers.js.publish("inventory.reservation.reserved", b"{}", timeout=5)
            assert ack.stream == "INVENTORY"
            sub = await workers.js.pull_subscribe_bind("inventory", "SHOP")
            try:
                for msg in await sub.fetch(1, timeout=0.5):
                    await msg.ack()
            except nats.errors.TimeoutError:
                pass  # nothing to fetch
            await workers.nc.flush()
            assert len(workers.refusals) == refused
        assert set(await streams(server)) == {"SHOP", "INVENTORY"}

    run_async(scenario())


def test_the_web_user_cannot_publish_what_another_service_decides_nor_touch_jetstream(server):
    async def scenario():
        before = await streams(server)
        async with As(server, "web") as web:
            confirming = await web.refused(lambda: web.js.publish("shop.order.confirmed", b"{}", timeout=SHORT))
            assert "shop.order.confirmed" in confirming
            await web.refused(lambda: web.js.publish("inventory.reservation.reserved", b"{}", timeout=SHORT))
            await web.refused(lambda: web.js.stream_info("SHOP"))
            await web.refused(lambda: web.js.delete_stream("SHOP"))
            # What a request records, it publishes after commit; it follows stock levels on core NATS.
            assert (await web.js.publish("shop.order.placed", b"{}", timeout=5)).stream == "SHOP"
            assert (await web.js.publish("inventory.stock.A-1", b"{}", timeout=5)).stream == "INVENTORY"
            refused = len(web.refusals)
            await web.nc.subscribe("inventory.stock.>")
            await web.nc.flush()
            assert len(web.refusals) == refused
        after = await streams(server)
        assert after == {"SHOP": before["SHOP"] + 1, "INVENTORY": before["INVENTORY"] + 1}

    run_async(scenario())


def test_the_relay_publishes_every_event_and_reads_consumers_but_cannot_manage_streams(server):
    async def scenario():
        async with As(server, "relay") as relay:
            await relay.refused(lambda: relay.js.add_stream(js_api.StreamConfig(name="SHOP", subjects=["shop.>"])))
            await relay.refused(lambda: relay.js.delete_stream("INVENTORY"))
            await relay.refused(lambda: relay.js.purge_stream("SHOP"))
            assert (await relay.js.publish("shop.order.confirmed", b"{}", timeout=5)).stream == "SHOP"
            assert await bus.missing_streams(relay.js) == []
            assert await bus.consumer_pending(relay.js, "SHOP", "inventory") >= (0, 0)

    run_async(scenario())


def test_the_replay_user_publishes_domain_subjects_only(server):
    async def scenario():
        async with As(server, "ops") as ops:
            assert (await ops.js.publish("inventory.reservation.reserved", b"{}", timeout=5)).stream == "INVENTORY"
            await ops.refused(lambda: ops.js.delete_stream("SHOP"))

    run_async(scenario())


def test_without_a_password_nobody_connects(server):
    async def scenario():
        with pytest.raises(Exception, match="(?i)authorization"):
            await nats.connect(server.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2)

    run_async(scenario())


@pytest.mark.pipeline
def test_each_process_the_suite_starts_connects_as_its_own_user(pipeline, make_product):
    """The suite's own server has users too (``make test``): relay, workers and web each connect as theirs."""
    monitor = os.environ.get("NATS_MONITOR_URL")
    if not natsauth.service_env(dict(os.environ), "relay") or not monitor:
        pytest.skip("NATS_URL names a server without users (external): nothing to show")
    make_product("A", stock=5)
    pipeline.start()
    base = pipeline.web()
    assert httpx.post(f"{base}/api/orders", json={"email": "a@example.org", "lines": [{"sku": "A", "quantity": 1}]})

    def connected_as() -> dict[str, str]:
        with urllib.request.urlopen(f"{monitor}/connz?auth=true&limit=1024", timeout=5) as answer:
            return {c.get("name", ""): c.get("authorized_user") for c in json.load(answer)["connections"]}

    def by_service() -> dict[str, str] | None:
        users = connected_as()
        wanted = {"relay": users.get("relay"), "workers": users.get("workers"), "web": users.get("publisher-web")}
        return wanted if None not in wanted.values() else None

    assert wait_for(by_service, 30, "every service connected") == {"relay": "relay", "workers": "workers", "web": "web"}
    all_final()


def test_compose_runs_the_same_users_and_gives_each_service_its_own():
    """docker-compose.yml's servers include auth.conf, know every user's password, and each service uses its user."""
    conf = natsauth.AUTH_CONF.read_text()
    assert sorted(re.findall(r"\{user: (\w+), password: \$(\w+)", conf)) == sorted(
        (service, natsauth.password_variable(service)) for service in natsauth.SERVICES
    )
    assert "include auth.conf" in (natsauth.AUTH_CONF.parent / "nats.conf").read_text()
    compose = load_yaml(BASE / "docker-compose.yml")["services"]
    passwords = {k: v for k, v in compose["nats-1"]["environment"].items() if k.endswith("_NATS_PASSWORD")}
    assert set(passwords) == {natsauth.password_variable(s) for s in natsauth.SERVICES}
    expected = {"web": "web", "live": "web", "relay": "relay", "workers": "workers", "migrate": "admin"}
    for service, user in expected.items():
        env = compose[service]["environment"]
        for part in env["NATS_URL"].split(","):
            assert part.startswith(f"nats://{user}:{passwords[natsauth.password_variable(user)]}@"), service
    for service in ("web", "live"):
        assert compose[service]["environment"]["NATS_OPS_URL"].startswith(
            f"nats://ops:{passwords['OPS_NATS_PASSWORD']}@"
        )
    assert "setup_streams" in compose["migrate"]["command"][-1]


def test_generated_passwords_are_read_by_nats_server_as_strings():
    """nats-server reads a variable's value as a config value: a leading digit or '-' would make it a number."""
    for _ in range(200):
        for password in natsauth.passwords().values():
            assert password[0].isalpha() and password.isalnum()
