"""The SVG writer's merged curves stay simple as a viewer draws them: a curve that merging makes longer
can meet a spike's other side at a sharper angle, and a coarse flattening (a viewer's straight pieces,
about one per pixel of curve) then shows a crossing that the curves themselves do not have. The
writer cuts such a tip again after merging (lvss.geometry.repair.export_scene)."""
from __future__ import annotations

import math

import numpy as np

from lvss.geometry.repair import contour_area, export_scene, merged_contour
from lvss.svg import parse_path_data, path_data

# a contour of a photograph's structural path (chelsea, 64 paths, fast) as the writer had it before
# merging: merged as before this fix, a viewer's flattening crossed at its first node
CONTOUR = np.array([
    [0.290, 113.400, 0.230, 108.200, 0.160, 102.770],
    [0.880, 97.790, 2.410, 97.980, 3.490, 97.060],
    [4.460, 96.230, 5.440, 95.390, 6.330, 94.630],
    [7.480, 95.180, 9.210, 89.710, 8.330, 85.340],
    [7.620, 81.790, 7.360, 80.460, 7.110, 79.240],
    [7.040, 78.120, 6.180, 78.410, 6.230, 78.140],
    [6.270, 77.900, 6.290, 77.830, 6.300, 77.760],
    [6.290, 77.710, 7.340, 78.450, 8.430, 78.060],
    [9.660, 77.620, 10.880, 77.180, 12.240, 76.700],
    [13.840, 77.190, 13.820, 77.060, 13.830, 76.850],
    [13.840, 76.620, 13.870, 75.930, 13.900, 75.010],
    [13.380, 75.160, 13.750, 74.340, 14.020, 73.550],
    [14.270, 72.830, 15.010, 70.660, 15.520, 69.180],
    [17.900, 69.780, 19.920, 72.830, 18.520, 75.950],
    [24.300, 78.040, 22.460, 80.390, 22.050, 82.700],
    [21.810, 84.090, 21.600, 85.260, 21.510, 85.790],
    [20.770, 85.160, 22.140, 87.500, 23.100, 89.930],
    [25.070, 91.040, 26.550, 93.620, 27.020, 96.760],
    [27.950, 100.120, 29.860, 102.750, 31.970, 105.610],
    [34.370, 108.130, 33.010, 109.050, 33.350, 110.720],
    [34.380, 112.250, 34.970, 114.640, 38.430, 113.770],
    [41.360, 115.290, 41.240, 118.310, 42.230, 118.840],
    [43.590, 119.560, 44.630, 120.110, 45.880, 120.780],
    [47.010, 122.760, 40.680, 120.550, 34.540, 119.590],
    [28.880, 119.250, 25.920, 114.300, 21.660, 111.580],
    [15.380, 107.640, 12.730, 108.160, 12.930, 111.180],
    [13.140, 114.140, 13.300, 116.510, 13.460, 118.840],
    [12.170, 119.860, 12.740, 114.540, 11.350, 110.710],
    [9.500, 105.610, 8.840, 103.770, 8.110, 101.780],
    [7.400, 99.490, 6.860, 102.910, 7.910, 105.900],
    [9.000, 109.030, 10.150, 112.310, 11.340, 115.730],
    [10.820, 119.940, 11.520, 120.500, 11.910, 120.970],
    [12.160, 121.260, 12.470, 121.630, 12.570, 121.740],
    [12.750, 121.470, 10.950, 124.300, 5.320, 122.860],
    [2.630, 125.250, 3.250, 125.280, 1.290, 125.320],
    [0.050, 124.920, 0.390, 121.440, 0.340, 117.490],
]).reshape(-1, 2)


def _viewer_polygon(contour: np.ndarray) -> np.ndarray:
    """The closed path flattened as a viewer does: per cubic, max(16, control polygon length in px)
    straight pieces."""
    n = len(contour) // 3
    pts = []
    for s in range(n):
        c = np.stack([contour[3 * s], contour[3 * s + 1], contour[3 * s + 2], contour[(3 * s + 3) % (3 * n)]])
        m = max(16, math.ceil(float(np.linalg.norm(np.diff(c, axis=0), axis=1).sum())))
        t = np.arange(m)[:, None] / m
        u = 1 - t
        pts.append(u ** 3 * c[0] + 3 * u * u * t * c[1] + 3 * u * t * t * c[2] + t ** 3 * c[3])
    return np.concatenate(pts)


def _proper_crossings(P: np.ndarray) -> int:
    """Pairs of non-neighbouring pieces of the closed polygon whose ends lie strictly on opposite
    sides of each other's lines."""
    a, b = P, np.roll(P, -1, 0)
    n = len(P)

    def side(o, e, q):
        return (e[..., 0] - o[..., 0]) * (q[..., 1] - o[..., 1]) - (e[..., 1] - o[..., 1]) * (q[..., 0] - o[..., 0])

    i, j = np.triu_indices(n, 2)
    keep = ~((i == 0) & (j == n - 1))
    i, j = i[keep], j[keep]
    d1, d2 = side(a[i], b[i], a[j]), side(a[i], b[i], b[j])
    d3, d4 = side(a[j], b[j], a[i]), side(a[j], b[j], b[i])
    return int(((d1 * d2 < 0) & (d3 * d4 < 0)).sum())


def test_merged_curves_show_no_crossing_at_a_spike():
    from lvss.geometry.merge import merge_segments
    from lvss.geometry.repair import _as_written

    plain = _as_written(merge_segments(CONTOUR, 0.02), 2)   # what the writer wrote before
    assert len(plain) < len(CONTOUR) and _proper_crossings(_viewer_polygon(plain)) > 0
    m = merged_contour(CONTOUR, 0.02, 2)
    assert len(m) < len(CONTOUR)                              # still merged ...
    assert _proper_crossings(_viewer_polygon(parse_path_data(path_data(m, 2))[0])) == 0   # ... and simple


def test_the_writer_keeps_the_shape():
    (contours, dec), = export_scene([CONTOUR], 256, 256, precision=2)
    before = abs(contour_area(CONTOUR))
    after = sum(abs(contour_area(c)) for c in contours)
    assert abs(after - before) < 0.5                          # pixels²: a tip's sliver at most
    for c in contours:
        assert _proper_crossings(_viewer_polygon(parse_path_data(path_data(c, dec))[0])) == 0
