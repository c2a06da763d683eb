"""The demo catalog: a small shop that looks like one."""

from __future__ import annotations

from decimal import Decimal

CATEGORIES = [
    ("coffee", "Coffee"),
    ("tea", "Tea"),
    ("brewing", "Brewing gear"),
    ("mugs", "Mugs & cups"),
]

# (category, name, description, price)
PRODUCTS = [
    ("coffee", "Ethiopia Yirgacheffe", "Washed, floral and bright: jasmine, bergamot, lemon.", "14.50"),
    ("coffee", "Colombia Huila", "Caramel sweetness with red apple and cocoa.", "12.90"),
    ("coffee", "Kenya Nyeri AA", "Blackcurrant, grapefruit, a syrupy body.", "16.00"),
    ("coffee", "Brazil Cerrado", "Nutty, chocolatey, low acidity: an everyday espresso.", "10.50"),
    ("coffee", "Guatemala Antigua", "Brown sugar, orange and a hint of spice.", "13.20"),
    ("coffee", "Decaf Peru", "Swiss-water decaf with milk chocolate notes.", "12.00"),
    ("tea", "Darjeeling First Flush", "Light and muscatel, picked in spring.", "11.00"),
    ("tea", "Sencha Uji", "Grassy, sweet Japanese green tea.", "9.80"),
    ("tea", "Assam Breakfast", "Malty and strong; takes milk well.", "7.50"),
    ("tea", "Jasmine Pearls", "Green tea rolled and scented with jasmine.", "13.40"),
    ("tea", "Rooibos Vanilla", "Caffeine-free, smooth and sweet.", "6.90"),
    ("tea", "Oolong Tie Guan Yin", "Orchid aromas, many infusions.", "15.30"),
    ("brewing", "Pour-over Dripper", "Ceramic cone dripper for one or two cups.", "24.00"),
    ("brewing", "Gooseneck Kettle", "1 litre, precise pour, stovetop.", "39.00"),
    ("brewing", "Hand Grinder", "Conical steel burrs, 30 clicks of adjustment.", "59.00"),
    ("brewing", "French Press", "800 ml, double-walled steel.", "34.50"),
    ("brewing", "Paper Filters (100)", "Unbleached, fits the pour-over dripper.", "5.50"),
    ("brewing", "Digital Scale", "0.1 g resolution with a built-in timer.", "27.00"),
    ("mugs", "Stoneware Mug", "350 ml, speckled glaze, dishwasher safe.", "16.00"),
    ("mugs", "Espresso Cups (pair)", "Thick porcelain, 80 ml.", "19.00"),
    ("mugs", "Glass Tea Cup", "Double-walled borosilicate, 250 ml.", "12.50"),
    ("mugs", "Travel Tumbler", "Vacuum insulated, leak-proof lid.", "28.00"),
    ("mugs", "Cappuccino Cup", "180 ml with saucer, matte white.", "14.00"),
    ("mugs", "Tasting Bowl", "Cupping bowl, 200 ml.", "9.00"),
]


def sku_for(index: int, category: str) -> str:
    """Return a stable SKU such as ``COF-001``."""
    return f"{category[:3].upper()}-{index + 1:03d}"


def demo_products(count: int) -> list[tuple[str, str, str, str, Decimal]]:
    """Return ``count`` products as (sku, category, name, description, price), cycling the list."""
    rows = []
    for i in range(count):
        category, name, description, price = PRODUCTS[i % len(PRODUCTS)]
        if i >= len(PRODUCTS):
            name = f"{name} #{i // len(PRODUCTS) + 1}"
        rows.append((sku_for(i, category), category, name, description, Decimal(price)))
    return rows
