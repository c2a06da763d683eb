from django.contrib import admin
from django.urls import include, path

from inventory import api as inventory_api
from ops.views import prometheus
from shop import api as shop_api
from web import converters  # noqa: F401  (registers <sku:…> and <text:…>)
from web.health import healthz, readyz

api_patterns = [
    path("products", shop_api.products, name="products"),
    path("products/<sku:sku>", shop_api.product, name="product"),
    path("orders", shop_api.orders, name="orders"),
    path("orders/<uuid:order_id>", shop_api.order, name="order"),
    path("orders/<uuid:order_id>/cancel", shop_api.order_cancel_view, name="order-cancel"),
    path("inventory/<sku:sku>", inventory_api.stock_detail, name="stock"),
    path("inventory/<sku:sku>/restock", inventory_api.stock_restock, name="restock"),
]

urlpatterns = [
    path("api/", include((api_patterns, "api"))),
    path("healthz", healthz),
    path("readyz", readyz),
    path("metrics", prometheus),
    path("ops/", include("ops.urls")),
    path("admin/", admin.site.urls),
    path("staff/", include("staff.urls")),
    path("", include("shop.urls")),
]
