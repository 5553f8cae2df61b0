"""Path geometry that editors care about: simple loops, no hairs, clean contours at export.

- :mod:`.simple`: crossing tests of closed cubic paths (batched, torch), areas and widths;
- :mod:`.guard`: keeps paths simple while they are optimised (steps that would fold a path are
  shortened);
- :mod:`.repair`: at export, any path's filled area as non-overlapping simple contours inside the
  canvas (skia-pathops), tiny specks dropped; hair detection.
"""
from .simple import area_and_perimeter, crossing_counts, flatten_closed, mean_width

__all__ = ["area_and_perimeter", "crossing_counts", "flatten_closed", "mean_width"]
