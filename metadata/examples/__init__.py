"""Example declarations a newcomer can copy (not part of the bundled ones: the demo does not load them).

`files/` declares one `files` system, SHP01, over the small folder of drops beside it; the README's
"File drops (files)" walks through it. Its entity models are in `shop_models.py`."""
