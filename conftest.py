"""Fixtures shared by every test: real PostgreSQL (pytest-django's test database) and real NATS.

``make test`` starts both (embedded) and sets DATABASE_URL / NATS_URL, and
DJANGO_HTTPS=0 RATE_LIMITS=0 (the suite's servers speak plain HTTP, and the tests
of rate limits turn them on); pytest alone needs them set by hand.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.conf import settings

from tests.pipeline import Pipeline, reset_streams, run_async


def pytest_configure(config) -> None:
    if settings.SECURE_SSL_REDIRECT or settings.RATE_LIMITS:
        hint = "run it with `make test`, or set DJANGO_HTTPS=0 RATE_LIMITS=0"
        pytest.exit(f"the suite serves plain HTTP without rate limits: {hint}", returncode=2)


@pytest.fixture(scope="session")
def nats_url() -> str:
    if not settings.NATS_URL:
        pytest.exit("NATS_URL is not set: run the suite with `make test`", returncode=2)
    return settings.NATS_URL


@pytest.fixture(autouse=True)
def _no_live_feed_in_the_test_process(settings):
    """Read stock from the projection here: the test database is reset per test, a near cache would outlive it."""
    settings.LIVE_FEED = False


@pytest.fixture
def make_product(db):
    """Create a product in the shop's catalog and its stock in the inventory."""
    from inventory.services import stock_receive
    from shop.models import Category, Product

    def make(sku: str, stock: int = 10, price: str = "10.00") -> Product:
        category, _ = Category.objects.get_or_create(slug="test", defaults={"name": "Test"})
        product = Product.objects.create(sku=sku, name=f"Product {sku}", price=Decimal(price), category=category)
        if stock:
            stock_receive(sku=sku, quantity=stock, create=True)
        return product

    return make


@pytest.fixture
def pipeline(transactional_db, nats_url, tmp_path, request):
    """A clean JetStream, and a relay and a worker process on the test database."""
    run_async(reset_streams(nats_url))
    pipe = Pipeline(tmp=tmp_path, nats_url=nats_url)
    yield pipe
    pipe.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(pipe.logs())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
