from django.contrib.auth import views as auth_views
from django.urls import path

from web import converters  # noqa: F401  (registers <sku:…> and <text:…>)

from . import views

app_name = "staff"
urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="staff/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.inventory, name="inventory"),
    path("stock/<sku:sku>/restock/", views.restock, name="restock"),
    path("events/", views.events, name="events"),
    path("events/chain/<text:correlation_id>/", views.chain, name="chain"),
]
