"""Staff forms, validated server-side."""

from django import forms
from django.conf import settings

from web.text import StorableTextForm


class RestockForm(StorableTextForm):
    """Units received for one SKU."""

    quantity = forms.IntegerField(min_value=1)

    def clean_quantity(self) -> int:
        quantity = self.cleaned_data["quantity"]
        if quantity > settings.RESTOCK_MAX_QUANTITY:
            raise forms.ValidationError(f"Ensure this value is less than or equal to {settings.RESTOCK_MAX_QUANTITY}.")
        return quantity


class EventFilterForm(StorableTextForm):
    """Which events the explorer lists."""

    type = forms.CharField(required=False, max_length=100)
    correlation = forms.CharField(required=False, max_length=100)
    page = forms.IntegerField(required=False, min_value=1, max_value=10_000)
