"""Path geometry that editors care about: simple loops, no hairs, clean contours at export.

- :mod:`.simple`: crossing tests of closed cubic paths (batched, torch), areas and widths;
- :mod:`.guard`: keeps paths simple while they are optimised (steps that would fold a path are
  shortened);
- :mod:`.repair`: at export, any path's filled area as non-overlapping simple contours inside the
  canvas (skia-pathops), tiny specks dropped; hair detection;
- :mod:`.kinks`: small loops and spike tips cut out where they sit (the export's first resort);
- :mod:`.merge`: runs of segments that one cubic follows within a fraction of a pixel merged;
- :mod:`.hidden`: where outlines lie under opaque shapes, so that the merge may stray further there;
- :mod:`.bridges`: zero-width bridges to holes taken out at export (a hole as a contour of its own).
"""
from .simple import area_and_perimeter, crossing_counts, flatten_closed, mean_width

__all__ = ["area_and_perimeter", "crossing_counts", "flatten_closed", "mean_width"]
