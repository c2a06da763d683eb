from django.apps import AppConfig
from django.urls import register_converter


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Event bus machinery"

    def ready(self) -> None:
        from .base import SkuConverter

        # Before any URLconf is imported (they load lazily, after the apps are ready).
        register_converter(SkuConverter, "sku")
