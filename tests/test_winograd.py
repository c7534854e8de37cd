"""Integer Winograd F(2x2, 3x3): the transform algebra is exact (numpy), the int32 bounds hold, the
compiler picks it only where it applies, and the C kernel equals the direct-conv golden bit for bit
on host and rv32 (odd sizes with edge tiles, several C/K, zero points != 0, per-channel scales)."""
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest

from tinydeploy.ops import winograd
from tinydeploy.ops.kernels import Kernels

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import rv32_kernels as bench  # noqa: E402


def _direct(x, w):
    """[C, H, W] x [K, C, 3, 3] -> [K, H-2, W-2] int64 correlation (no padding)."""
    C, H, W = x.shape
    out = np.zeros((w.shape[0], H - 2, W - 2), np.int64)
    for i in range(3):
        for j in range(3):
            out += np.einsum("kc,chw->khw", w[:, :, i, j], x[:, i:i + H - 2, j:j + W - 2])
    return out


def _winograd(x, w):
    """The kernel's integer algorithm in numpy: returns 4 * direct, tile by tile."""
    u = winograd.transform_weights(w)                          # [K, C, 4, 4]
    C, H, W = x.shape
    y = np.zeros((w.shape[0], H - 2, W - 2), np.int64)
    for ty in range(0, H - 2, 2):
        for tx in range(0, W - 2, 2):
            d = x[:, ty:ty + 4, tx:tx + 4]
            v = np.einsum("ia,cab,jb->cij", winograd.BT, d, winograd.BT)
            assert np.abs(v).max() <= winograd.V_MAX
            m = np.einsum("kcij,cij->kij", u, v)
            y[:, ty:ty + 2, tx:tx + 2] = np.einsum("ri,kij,sj->krs", winograd.AT, m, winograd.AT)
    return y


@pytest.mark.parametrize("c,k,hw,seed", [(3, 4, 6, 0), (16, 8, 10, 1), (64, 4, 4, 2)])
def test_integer_transform_is_exact_and_bounded(c, k, hw, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (c, hw, hw))
    w = rng.integers(-128, 128, (k, c, 3, 3))
    x[:, 0, :], w[0] = -128, -128                              # extremes included
    y4 = _winograd(x, w)
    assert np.array_equal(y4, 4 * _direct(x, w))
    assert np.all(np.abs(y4).max(axis=(1, 2)) <= winograd.output_bound(winograd.transform_weights(w)))


def test_bound_rejects_overflow():
    worst = np.full((4, 1024, 3, 3), -128)
    assert winograd.output_bound(winograd.transform_weights(worst)).max() > 2**31 - 1
    assert winograd.output_bound(winograd.transform_weights(worst[:, :512])).max() <= 2**31 - 1


def _conv(c, k, h, w, pad, stride=1, relu=False, seed=0):
    from tinydeploy.testing.graph import GraphBuilder
    g = GraphBuilder("conv", seed)
    x = g.input("x", (1, c, h, w))
    y = g.op("Conv", x, g.weight((k, c, 3, 3), fan_in=9 * c), g.bias(k), kernel_shape=[3, 3],
             pads=[pad] * 4, strides=[stride, stride])
    g.output(g.op("Relu", y) if relu else y)
    return g.build()


def _uses_winograd(q, kernels=None) -> bool:
    from tinydeploy.compiler import compile_graph, emit_c
    from tinydeploy.frontend.onnx_import import import_model
    c = compile_graph(import_model(onnx.ModelProto.FromString(q.SerializeToString())), kernels=kernels)
    with tempfile.TemporaryDirectory() as tmp:
        proj = emit_c(c, Path(tmp) / "c")
        return "td_wino_conv(" in proj.sources[0].read_text()


@pytest.mark.parametrize("c,k,h,w,pad,relu", [(5, 8, 7, 9, 0, False), (8, 12, 9, 6, 1, True),
                                              (16, 4, 5, 5, 1, False)])
def test_winograd_equals_direct_golden_host_and_rv32(c, k, h, w, pad, relu):
    q, inputs = bench.quantized(_conv(c, k, h, w, pad, relu=relu))
    assert _uses_winograd(q)
    zps = [int(onnx.numpy_helper.to_array(t).reshape(-1)[0]) for t in q.graph.initializer
           if "zero_point" in t.name and onnx.numpy_helper.to_array(t).dtype == np.int8]
    assert any(z != 0 for z in zps)                            # activation zero points != 0
    bench.measure(q, inputs)                                   # asserts rv32 == host == golden


def test_compiler_choice(monkeypatch):
    q, _ = bench.quantized(_conv(8, 8, 8, 8, 1))
    assert _uses_winograd(q)
    assert not _uses_winograd(bench.quantized(_conv(8, 8, 9, 9, 1, stride=2))[0])   # stride 2
    assert not _uses_winograd(bench.quantized(_conv(8, 6, 8, 8, 1))[0])             # K % 4 != 0
    assert not winograd.worthwhile(C=1, K=4, OH=1, OW=1, k=Kernels())
    # the target's kernel description decides: Winograd off, or a direct kernel it cannot beat
    assert not _uses_winograd(q, Kernels(winograd=False))
    assert not _uses_winograd(q, Kernels(direct_fast_per_mac=0.5))
    monkeypatch.setenv("TD_WINOGRAD", "0")   # the debug override
    assert not _uses_winograd(q)
    assert os.environ["TD_WINOGRAD"] == "0"
