from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from demo.catalog import CATEGORIES, demo_products
from demo.images import OUT, image_path
from inventory.services import stock_receive
from shop.models import Category, Product


class Command(BaseCommand):
    help = "Create the demo catalog, its opening stock and the staff user 'admin' (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--products", type=int, default=24, help="number of products (default 24)")
        parser.add_argument("--stock", type=int, default=100, help="opening stock of each new product (default 100)")
        parser.add_argument("--admin-password", default="admin", help="password of the staff user 'admin'")
        parser.add_argument("--if-empty", action="store_true", help="do nothing if the catalog has products")

    @transaction.atomic
    def handle(self, *args, products, stock, admin_password, if_empty, **options):
        if if_empty and Product.objects.exists():
            self.stdout.write("catalog not empty: not seeding")
            return
        categories = {
            slug: Category.objects.get_or_create(slug=slug, defaults={"name": name})[0] for slug, name in CATEGORIES
        }
        created = 0
        for sku, category, name, description, price in demo_products(products):
            _, new = Product.objects.get_or_create(
                sku=sku,
                defaults={
                    "name": name,
                    "description": description,
                    "price": price,
                    "category": categories[category],
                    "image_url": _picture(sku, category),
                },
            )
            if new:
                created += 1
                if stock > 0:
                    stock_receive(sku=sku, quantity=stock, create=True)
        user, new_user = get_user_model().objects.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True, "email": "admin@example.org"}
        )
        if new_user:
            user.set_password(admin_password)
            user.save()
        self.stdout.write(f"seeded {created} new products (stock {stock} each); staff user 'admin'")


def _picture(sku: str, category: str) -> str:
    """Return the product's own picture, or its category's for products past the demo list."""
    return image_path(sku) if (OUT / f"{sku.lower()}.svg").exists() else f"/static/shop/products/{category}.svg"
