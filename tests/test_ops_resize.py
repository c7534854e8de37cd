"""Resize / Upsample vs ONNX Runtime and host C: nearest (any type, int8 in QDQ graphs), linear and
cubic with the common coordinate transformations, sizes with axes."""
import numpy as np
import pytest

from ops_testlib import Cases

CASES = [
    dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
    dict(mode="nearest", coordinate_transformation_mode="half_pixel", nearest_mode="round_prefer_ceil"),
    dict(mode="nearest"),
    dict(mode="linear"),
    dict(mode="linear", coordinate_transformation_mode="align_corners"),
    dict(mode="linear", coordinate_transformation_mode="pytorch_half_pixel"),
    dict(mode="linear", coordinate_transformation_mode="asymmetric"),
    dict(mode="cubic"),
    dict(mode="cubic", cubic_coeff_a=-0.5, exclude_outside=1),
]


def _c(b, v, dtype):
    return b._const(np.asarray(v, dtype), "c")


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_resize_matches_ort(cc):
    b = Cases(seed=50, opset=19)
    x = b.raw_input((1, 2, 5, 6), np.float32)
    for k, attrs in enumerate(CASES):
        scales = [1, 1, 1.6, 0.5] if k % 2 else [1, 1, 2.0, 1.5]
        b.out(b.op("Resize", x, "", _c(b, scales, np.float32), **attrs), label=f"scales{k}")
    b.out(b.op("Resize", x, "", "", _c(b, [7, 3], np.int64), mode="linear", axes=[3, 2]), label="sizes_axes")
    b.check(cc=cc, rtol=1e-5, atol=1e-5)


def test_quantized_nearest_upsample_runs_on_int8():
    b = Cases(seed=51, opset=19)
    x = b.act((1, 3, 4, 4), scale=0.05, zp=3)
    b.q_out(b.op("Resize", x, "", _c(b, [1, 1, 2, 2], np.float32), mode="nearest"), scale=0.05, zp=3, label="up")
    c, stats = b.check(max_lsb=0)
    assert [n.op for n in c.graph.nodes] == ["Resize"]
