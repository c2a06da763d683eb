from django.urls import path

from . import views

app_name = "ops"
urlpatterns = [
    path("", views.page, name="page"),
    path("figures", views.figures, name="figures"),
    path("history", views.samples, name="history"),
    path("dead-letters/<uuid:dead_letter_id>/replay", views.replay, name="replay"),
]
