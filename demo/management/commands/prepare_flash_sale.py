"""``manage.py prepare_flash_sale SKU [--units N] [--create]``: make a product scarce before a flash sale.

Stock is event-sourced and only ever lowered by orders, so this command
cannot take units away: it receives stock (``inventory.services.stock_receive``,
a ``StockReceived`` event) until ``--units`` are available, and says so when
more already are. ``make loadtest`` runs it on the flash sale's own product
(``LTD-001``, created with ``--create``), which nothing else restocks.
"""

from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from inventory.selectors import stock_get
from inventory.services import stock_receive
from shop.models import Category, Product

# What ``--create`` adds to the catalog: a small lot, sold only in flash sales.
LIMITED = {
    "name": "Panama Geisha, limited lot",
    "description": "A tiny lot of washed Geisha coffee, sold a few bags at a time in flash sales.",
    "price": Decimal("39.00"),
    "image_url": "/static/shop/products/coffee.svg",
}


class Command(BaseCommand):
    help = "Receive stock of a SKU until exactly --units are available (never removes any); --create adds the product."

    def add_arguments(self, parser):
        parser.add_argument("sku", help="the product of the flash sale")
        parser.add_argument("--units", type=int, default=20, help="units available when the sale starts (20)")
        parser.add_argument("--create", action="store_true", help="add the product (a limited lot) if it is missing")

    @transaction.atomic
    def handle(self, *args, sku, units, create, **options):
        if units < 1:
            raise CommandError("--units must be at least 1")
        if create:
            category, _ = Category.objects.get_or_create(slug="coffee", defaults={"name": "Coffee"})
            Product.objects.get_or_create(sku=sku, defaults={**LIMITED, "category": category})
        elif not Product.objects.filter(sku=sku).exists():
            raise CommandError(f"no product {sku!r} in the catalog: name another, or add it with --create")
        item = stock_get(sku=sku)
        available = item.available if item else 0
        if available < units:
            stock_receive(sku=sku, quantity=units - available, create=True)
            self.stdout.write(f"{sku}: received {units - available}, {units} available")
        elif available > units:
            self.stdout.write(
                f"{sku}: {available} available, more than the {units} asked; stock only goes down "
                "through orders, so the sale starts with all of them"
            )
        else:
            self.stdout.write(f"{sku}: {units} available")
