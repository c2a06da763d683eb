from django.urls import path

from . import views

app_name = "shop"
urlpatterns = [
    path("", views.catalog, name="catalog"),
    path("products/<str:sku>/", views.product, name="product"),
]
