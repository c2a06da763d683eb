"""The personas of the load test, one a file: browser, buyer, flash-sale crowd, staff restocker."""

from .browser import Browser
from .buyer import Buyer
from .flash_sale import FlashSaleBuyer
from .restocker import Restocker

__all__ = ["Browser", "Buyer", "FlashSaleBuyer", "Restocker"]
