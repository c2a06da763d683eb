"""Storefront forms: every value a shopper sends is validated here, server-side."""

from __future__ import annotations

from django import forms

from web.text import StorableTextForm, validate_email_address

# settings.ORDER_MAX_QUANTITY, which the API enforces too; the cart refuses more than an order may hold.
MAX_QUANTITY = 1000


class AddToCartForm(StorableTextForm):
    """How many units of one product go into the cart."""

    quantity = forms.IntegerField(min_value=1, max_value=MAX_QUANTITY, initial=1)


class CartLineForm(StorableTextForm):
    """A cart line's new quantity; 0 removes it."""

    quantity = forms.IntegerField(min_value=0, max_value=MAX_QUANTITY)


class CheckoutForm(StorableTextForm):
    """Who orders; what is ordered comes from the cart, and prices from the catalog."""

    email = forms.EmailField(
        max_length=254,
        validators=[validate_email_address],
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    # One per rendered form: sent again (a double click, a reload), it places the same order once.
    token = forms.UUIDField(widget=forms.HiddenInput)
