"""The demo's product pictures: shipped in the repo, exactly what demo/images.py draws, well-formed SVG."""

from xml.etree import ElementTree

from demo.images import OUT, pictures


def test_the_shipped_pictures_are_what_the_code_draws():
    for filename, svg in pictures().items():
        assert (OUT / filename).read_text() == svg, f"run `python -m demo.images` to redraw {filename}"


def test_every_picture_is_well_formed_svg_with_a_label():
    for svg in pictures().values():
        root = ElementTree.fromstring(svg)
        assert root.tag.endswith("svg") and root.get("aria-label")
