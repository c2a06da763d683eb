"""The ops page's own data: its history of figures."""

from django.db import models


class Sample(models.Model):
    """The ops page's figures at one second (unix time): every web process may sample it, one row wins."""

    at = models.BigIntegerField(primary_key=True)
    figures = models.JSONField()

    class Meta:
        ordering = ["at"]
