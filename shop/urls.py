from django.urls import path

from web import converters  # noqa: F401  (registers <sku:…> and <text:…>)

from . import views

app_name = "shop"
urlpatterns = [
    path("", views.catalog, name="catalog"),
    path("products/<sku:sku>/", views.product, name="product"),
    path("cart/", views.cart, name="cart"),
    path("checkout/", views.checkout, name="checkout"),
    path("orders/", views.my_orders, name="my-orders"),
    path("orders/<uuid:order_id>/", views.order, name="order"),
    path("orders/<uuid:order_id>/cancel/", views.order_cancel_page, name="order-cancel"),
]
