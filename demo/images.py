"""Product pictures of the demo catalog: small SVGs drawn from each product's name, shipped in the repo.

``python -m demo.images`` writes them to ``shop/static/shop/products/``
(``demo/tests`` checks that the shipped files are what this code draws), so
nothing is downloaded at run time.
"""

# ruff: noqa: E501 - SVG drawing data reads better unbroken

from __future__ import annotations

import hashlib
import sys
from html import escape
from pathlib import Path

from demo.catalog import PRODUCTS, sku_for

OUT = Path(__file__).resolve().parent.parent / "shop" / "static" / "shop" / "products"

# (background, accent, dark) per category, each product shifting the hue a little.
PALETTES = {
    "coffee": [("#f3e6d8", "#8b5a2b", "#3b2314"), ("#efe0cf", "#a0522d", "#4a2c17"), ("#f6ebe0", "#6f4e37", "#2e1d12")],
    "tea": [("#e8f5e4", "#5a8f4e", "#2f5d28"), ("#eef6e0", "#7aa03c", "#3e5a1a"), ("#f4efe0", "#b08a3e", "#5a4318")],
    "brewing": [
        ("#e6eef7", "#486581", "#243b53"),
        ("#e9ecf2", "#627d98", "#102a43"),
        ("#eaf1f1", "#3d7a80", "#1c3d40"),
    ],
    "mugs": [("#fdeee4", "#c2410c", "#7c2d12"), ("#fbeff5", "#be4b86", "#6b1d45"), ("#eef0fb", "#4c5fd5", "#1e2a78")],
}


def _shape(category: str, name: str, accent: str, dark: str) -> str:
    """Return the SVG of the product itself, by category and a keyword of its name."""
    lower = name.lower()
    if category == "coffee":  # a bag with a bean on its label
        return (
            f'<path d="M112 58 h96 l10 30 v102 a8 8 0 0 1 -8 8 h-100 a8 8 0 0 1 -8 -8 v-102 Z" fill="{accent}"/>'
            f'<rect x="112" y="52" width="96" height="12" rx="3" fill="{dark}"/>'
            f'<ellipse cx="160" cy="135" rx="30" ry="38" fill="#fff" opacity=".9"/>'
            f'<ellipse cx="160" cy="135" rx="17" ry="25" fill="{dark}"/>'
            f'<path d="M160 112 q-9 23 0 46" stroke="#fff" stroke-width="3" fill="none"/>'
        )
    if category == "tea":  # a tin with a leaf
        return (
            f'<rect x="110" y="64" width="100" height="132" rx="10" fill="{accent}"/>'
            f'<rect x="104" y="54" width="112" height="20" rx="6" fill="{dark}"/>'
            f'<path d="M135 150 Q160 80 190 110 Q175 160 135 150 Z" fill="#fff" opacity=".9"/>'
            f'<path d="M140 146 Q162 122 184 112" stroke="{dark}" stroke-width="2.5" fill="none"/>'
        )
    if category == "brewing":
        if "kettle" in lower:
            return (
                f'<ellipse cx="160" cy="140" rx="58" ry="50" fill="{accent}"/>'
                f'<path d="M104 130 Q70 110 62 78" stroke="{dark}" stroke-width="8" fill="none" stroke-linecap="round"/>'
                f'<path d="M130 92 Q160 58 190 92" stroke="{dark}" stroke-width="9" fill="none"/>'
            )
        if "grinder" in lower:
            return (
                f'<rect x="128" y="92" width="64" height="104" rx="8" fill="{accent}"/>'
                f'<path d="M160 92 V62 h48" stroke="{dark}" stroke-width="7" fill="none" stroke-linecap="round"/>'
                f'<circle cx="210" cy="62" r="9" fill="{dark}"/>'
            )
        if "press" in lower:
            return (
                f'<rect x="122" y="78" width="76" height="118" rx="6" fill="{accent}" opacity=".85"/>'
                f'<rect x="114" y="70" width="92" height="12" rx="4" fill="{dark}"/>'
                f'<rect x="157" y="48" width="6" height="24" fill="{dark}"/><circle cx="160" cy="46" r="8" fill="{dark}"/>'
                f'<path d="M198 100 h16 v60 h-16" stroke="{dark}" stroke-width="7" fill="none"/>'
            )
        if "scale" in lower:
            return (
                f'<rect x="90" y="120" width="140" height="60" rx="10" fill="{accent}"/>'
                f'<rect x="120" y="136" width="80" height="26" rx="4" fill="#d9f99d"/>'
                f'<text x="160" y="155" font-family="monospace" font-size="16" fill="{dark}" text-anchor="middle">18.0 g</text>'
            )
        if "filter" in lower:
            return "".join(
                f'<path d="M{110 + i * 10} {80 + i * 8} h80 l-22 70 h-36 Z" fill="#fff" stroke="{accent}" '
                f'stroke-width="3"/>'
                for i in range(3)
            )
        return (
            f'<path d="M112 84 h96 l-28 78 h-40 Z" fill="{accent}"/>'
            f'<rect x="100" y="162" width="120" height="10" rx="4" fill="{dark}"/>'
            f'<path d="M150 110 q10 -16 0 -30 M170 110 q10 -16 0 -30" stroke="{dark}" stroke-width="3" fill="none"/>'
        )
    # mugs and cups
    if "espresso" in lower or "cappuccino" in lower:
        return (
            f'<ellipse cx="160" cy="184" rx="70" ry="12" fill="{dark}" opacity=".35"/>'
            f'<path d="M116 112 h88 v30 a44 44 0 0 1 -88 0 Z" fill="{accent}"/>'
            f'<path d="M204 122 q26 4 0 30" stroke="{accent}" stroke-width="8" fill="none"/>'
            f'<ellipse cx="160" cy="112" rx="44" ry="8" fill="{dark}"/>'
        )
    if "bowl" in lower:
        return (
            f'<path d="M100 120 h120 a60 56 0 0 1 -120 0 Z" fill="{accent}"/>'
            f'<ellipse cx="160" cy="120" rx="60" ry="10" fill="{dark}"/>'
        )
    if "tumbler" in lower:
        return (
            f'<path d="M130 70 h60 l-8 126 h-44 Z" fill="{accent}"/>'
            f'<rect x="126" y="60" width="68" height="16" rx="5" fill="{dark}"/>'
        )
    return (
        f'<rect x="114" y="84" width="80" height="104" rx="12" fill="{accent}"/>'
        f'<path d="M194 104 q36 6 0 56" stroke="{accent}" stroke-width="12" fill="none"/>'
        f'<path d="M138 70 q8 -12 0 -24 M160 70 q8 -12 0 -24" stroke="{dark}" stroke-width="3" fill="none" opacity=".6"/>'
    )


def product_svg(category: str, name: str) -> str:
    """Return the picture of one product: its shape on a tinted card, with its name."""
    palette = PALETTES[category]
    background, accent, dark = palette[int(hashlib.sha256(name.encode()).hexdigest(), 16) % len(palette)]
    label = escape(name)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 320 240" role="img" aria-label="{label}">\n'
        f'  <rect width="320" height="240" fill="{background}"/>\n'
        f'  <circle cx="160" cy="124" r="92" fill="#fff" opacity=".45"/>\n'
        f"  {_shape(category, name, accent, dark)}\n"
        f'  <text x="160" y="226" font-family="system-ui, sans-serif" font-size="15" fill="{dark}" '
        f'text-anchor="middle">{label}</text>\n'
        f"</svg>\n"
    )


def image_path(sku: str) -> str:
    """Return the static URL of a product's picture."""
    return f"/static/shop/products/{sku.lower()}.svg"


def pictures() -> dict[str, str]:
    """Return {file name: SVG} for every product of the demo list."""
    return {f"{sku_for(i, c).lower()}.svg": product_svg(c, name) for i, (c, name, _, _) in enumerate(PRODUCTS)}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for filename, svg in pictures().items():
        (OUT / filename).write_text(svg)
    print(f"wrote {len(PRODUCTS)} pictures to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
