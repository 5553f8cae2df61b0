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


def _flattened(contour: np.ndarray, pieces) -> np.ndarray:
    """The closed path as a polygon: each cubic into ``pieces(control polygon length in px)`` straight
    pieces evenly spaced in t."""
    n = len(contour) // 3
    pts = []
    for s in range(n):
        c = np.stack([contour[3 * s], contour[3 * s + 1], contour[3 * s + 2], contour[(3 * s + 3) % (3 * n)]])
        m = pieces(float(np.linalg.norm(np.diff(c, axis=0), axis=1).sum()))
        t = np.arange(m)[:, None] / m
        u = 1 - t
        pts.append(u ** 3 * c[0] + 3 * u * u * t * c[1] + 3 * u * t * t * c[2] + t ** 3 * c[3])
    return np.concatenate(pts)


def _viewer_polygon(contour: np.ndarray) -> np.ndarray:
    """The closed path flattened as a viewer does: per cubic, max(16, control polygon length in px)
    straight pieces."""
    return _flattened(contour, lambda length: max(16, math.ceil(length)))


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


# a compact-mode path (OpenMoji 1F344, 128 paths) as the writer wrote it before the viewer test: a
# 0.26-px stub with 0.75-px handles, its neighbours passing on both sides of it within a fraction of
# a pixel. Simple as exact curves; a viewer's flattening crosses at the stub
STUB = np.array([
    [180.48, 110.02, 180.10, 109.37, 179.74, 108.72],
    [179.38, 108.68, 176.80, 108.63, 174.12, 108.59],
    [171.43, 108.10, 171.12, 107.74, 170.75, 107.45],
    [170.29, 107.67, 167.79, 106.94, 165.14, 106.89],
    [162.49, 106.69, 162.15, 106.75, 161.80, 106.44],
    [161.42, 106.75, 159.41, 105.50, 160.73, 107.49],
    [159.53, 108.16, 158.61, 107.22, 157.81, 106.36],
    [157.01, 106.00, 157.00, 104.48, 157.00, 102.81],
    [156.29, 99.74, 156.59, 97.30, 155.39, 94.85],
    [153.68, 92.81, 151.54, 92.25, 150.20, 90.85],
    [148.51, 89.25, 145.61, 88.49, 142.64, 86.91],
    [139.50, 85.24, 134.80, 84.60, 129.81, 84.67],
    [123.85, 84.14, 123.59, 84.92, 123.28, 85.28],
    [123.58, 86.31, 122.31, 84.87, 120.62, 84.80],
    [117.85, 84.42, 115.56, 86.16, 113.01, 86.88],
    [110.82, 87.81, 111.21, 88.27, 110.61, 87.86],
    [109.73, 87.62, 110.19, 86.17, 110.31, 84.66],
    [110.86, 83.66, 108.87, 81.12, 108.95, 77.47],
    [108.28, 74.76, 110.32, 73.37, 112.70, 72.12],
    [114.66, 70.39, 115.83, 69.66, 117.17, 69.33],
    [118.64, 68.85, 119.53, 69.57, 120.38, 70.36],
    [122.21, 71.16, 121.63, 72.77, 121.92, 74.03],
    [123.22, 75.29, 122.55, 75.63, 123.06, 75.73],
    [123.03, 75.47, 125.40, 73.23, 127.75, 70.91],
    [130.16, 68.67, 131.16, 68.81, 131.83, 68.83],
    [132.35, 69.03, 135.17, 71.68, 138.87, 72.31],
    [141.84, 74.37, 142.71, 75.24, 143.28, 73.36],
    [144.30, 72.44, 147.55, 72.78, 150.57, 72.99],
    [154.23, 73.06, 156.18, 77.40, 155.36, 82.09],
    [157.19, 85.36, 159.23, 85.14, 160.85, 79.85],
    [163.92, 80.05, 164.56, 78.71, 165.21, 77.77],
    [166.83, 77.64, 165.99, 77.36, 165.77, 76.81],
    [165.55, 76.20, 166.49, 75.33, 167.00, 75.17],
    [166.67, 75.84, 167.07, 77.07, 167.81, 77.91],
    [169.03, 78.90, 169.09, 79.19, 169.40, 80.13],
    [169.84, 81.32, 171.52, 82.38, 172.96, 81.24],
    [172.59, 83.61, 174.22, 86.48, 175.53, 89.75],
    [176.79, 93.36, 178.43, 94.83, 180.25, 96.16],
    [180.69, 98.52, 181.08, 101.82, 183.01, 104.34],
    [182.64, 107.93, 182.18, 108.35, 181.34, 109.17],
]).reshape(-1, 2)


def _exact_crossings(contour: np.ndarray, per_segment: int = 100) -> int:
    return _proper_crossings(_flattened(contour, lambda length: per_segment))


def test_the_viewer_test_sees_what_a_viewer_draws():
    from lvss.geometry.simple import viewer_simple

    assert _exact_crossings(STUB) == 0                         # the curves are simple ...
    assert _proper_crossings(_viewer_polygon(STUB)) > 0        # ... a viewer's pieces are not
    assert not viewer_simple(STUB)


def test_the_writer_draws_the_stub_so_that_viewers_see_a_simple_loop():
    (contours, dec), = export_scene([STUB], 256, 256, precision=2)
    assert len(contours) == 1
    written = parse_path_data(path_data(contours[0], dec))[0]
    assert _proper_crossings(_viewer_polygon(written)) == 0
    assert len(written) <= len(STUB)                            # no redraw into straight pieces
    assert abs(abs(contour_area(written)) - abs(contour_area(STUB))) < 0.5
