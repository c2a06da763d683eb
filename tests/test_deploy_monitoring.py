"""The Prometheus and Grafana files of docker-compose, checked without Docker.

Docker does not run on the development machines, so the files are checked
statically: they parse, Prometheus scrapes every process of the topology where
it serves its metrics, and every dashboard query names a metric the code exports.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from events import metrics

BASE = Path(__file__).resolve().parent.parent
DEPLOY = BASE / "deploy"
# PromQL words that are not metric names.
PROMQL = {
    "sum",
    "max",
    "min",
    "avg",
    "rate",
    "increase",
    "irate",
    "histogram_quantile",
    "by",
    "without",
    "time",
    "count",
    "le",
    "on",
    "ignoring",
    "and",
    "or",
    "unless",
    "offset",
    "clamp_min",
    "clamp_max",
    "abs",
}


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def exported_names() -> set[str]:
    """Return every sample name the code can export (counters' _total, histograms' _bucket/_sum/_count)."""
    import shop.metrics  # noqa: F401 - its metrics join the registry when imported
    import web.metrics  # noqa: F401

    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    names = set()
    for family in metrics.registry().collect():
        names |= {family.name + suffix for suffix in suffixes[family.type]}
    return names


def metric_names(expr: str) -> set[str]:
    """Return the metric names a PromQL expression reads."""
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\b(by|without)\s*\([^)]*\)", "", expr)  # grouping labels
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return {w for w in words if w not in PROMQL}


def dashboard_queries() -> list[str]:
    exprs = []
    for path in (DEPLOY / "grafana" / "dashboards").glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            exprs += [target["expr"] for target in panel["targets"]]
    return exprs


@pytest.mark.django_db
def test_every_dashboard_query_names_a_metric_the_code_exports():
    exported = exported_names()
    queries = dashboard_queries()
    assert len(queries) >= 20
    for expr in queries:
        names = metric_names(expr)
        assert names, expr
        assert names <= exported, f"{expr}: {names - exported} not exported"


def test_the_issue_figures_are_on_the_dashboard():
    read = set().union(*(metric_names(e) for e in dashboard_queries()))
    wanted = {
        "events_recorded_total",
        "shop_order_latency_seconds_bucket",
        "events_jetstream_pending_messages",
        "events_outbox_depth",
        "events_outbox_oldest_age_seconds",
        "events_dead_letters_total",
        "stock_cache_hits_total",
        "events_relay_lag_seconds_bucket",
        "events_queue_wait_seconds_bucket",
        "shop_order_push_lag_seconds_bucket",
        "websocket_connections",
    }
    assert wanted <= read, wanted - read


def app_services(compose: dict) -> set[str]:
    """Return the long-running services that run the app's code (not the one-off migration, not Locust)."""
    return {
        name
        for name, service in compose.items()
        if service.get("build") == "." and name != "migrate" and not service.get("profiles")
    }


def test_prometheus_scrapes_every_process_where_it_serves_metrics():
    compose = load_yaml(BASE / "docker-compose.yml")["services"]
    jobs = {job["job_name"]: job for job in load_yaml(DEPLOY / "prometheus" / "prometheus.yml")["scrape_configs"]}
    assert set(jobs) == {"web", "live", "relay", "workers"}
    scraped = set()
    for job in jobs.values():
        (sd,) = job["dns_sd_configs"]
        (service,) = sd["names"]
        assert service in compose, service
        scraped.add(service)
        assert job.get("metrics_path", "/metrics") == "/metrics"
        env, command = compose[service]["environment"], " ".join(compose[service]["command"])
        if "granian" in command:  # web (WSGI), live (ASGI): the Django view of config/urls.py, on granian's port
            assert f"--port {sd['port']}" in command, (service, sd["port"])
            # Several granian workers per replica: their samples must meet in one emptied folder.
            assert f"rm -rf {env['PROMETHEUS_MULTIPROC_DIR']} && mkdir {env['PROMETHEUS_MULTIPROC_DIR']}" in command
        else:  # prometheus_client's own server, started by the command when METRICS_PORT is set
            assert int(env["METRICS_PORT"]) == sd["port"]
    assert [jobs[s]["dns_sd_configs"][0]["port"] for s in ("web", "live")] == [8000, 8001]
    assert scraped == app_services(compose), app_services(compose) - scraped
    assert scraped <= set(compose["prometheus"]["depends_on"])
    from django.urls import resolve

    assert resolve("/metrics").func.__name__ == "prometheus"


# The hops of one message, one after the other: each starts where the one before ends.
DISJOINT_HOPS = {
    "events_relay_lag_seconds_bucket",
    "events_queue_wait_seconds_bucket",
    "events_batch_duration_seconds_bucket",
}


def stacked_queries(panel: dict) -> list[str]:
    """Return the queries a panel draws stacked (its default, unless an override of that query says otherwise)."""
    defaults = panel["fieldConfig"]["defaults"].get("custom", {}).get("stacking", {}).get("mode", "none")
    unstacked = {
        override["matcher"]["options"]
        for override in panel["fieldConfig"].get("overrides", [])
        if override["matcher"]["id"] == "byFrameRefID"
        and any(p["id"] == "custom.stacking" and p["value"]["mode"] == "none" for p in override["properties"])
    }
    if defaults == "none":
        return []
    return [target["expr"] for target in panel["targets"] if target["refId"] not in unstacked]


def test_a_stacked_panel_stacks_only_disjoint_hops():
    """Stacking adds the series up: a latency that includes another (apply lag includes relay lag) must not be."""
    stacks = 0
    for path in (DEPLOY / "grafana" / "dashboards").glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            stacked = stacked_queries(panel)
            if not stacked:
                continue
            stacks += 1
            names = [metric_names(expr) for expr in stacked]
            assert all(len(n) == 1 and n <= DISJOINT_HOPS for n in names), (panel["title"], names)
            assert len(set().union(*names)) == len(names), f"{panel['title']}: a hop stacked twice"
    assert stacks >= 1  # the per-hop panel


def test_grafana_is_provisioned_with_the_dashboard_and_its_data_source():
    compose = load_yaml(BASE / "docker-compose.yml")["services"]
    sources = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    providers = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "event-shop.yml")["providers"]
    (source,) = sources
    assert source["url"] == "http://prometheus:9090" and "prometheus" in compose
    mounts = dict(volume.split(":")[:2] for volume in compose["grafana"]["volumes"])
    assert mounts["./deploy/grafana/dashboards"] == providers[0]["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert "./deploy/prometheus/prometheus.yml" in compose["prometheus"]["volumes"][0]
    for path in (DEPLOY / "grafana" / "dashboards").glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            assert panel["datasource"]["uid"] == source["uid"]
            assert all(target["datasource"]["uid"] == source["uid"] for target in panel["targets"])
