"""The exact reference (tinydeploy.testing.reference) is exact, and the onnxruntime probe predicts
where ORT is not: uint8 × int8 integer ops with saturating int16 pair sums (x86 without VNNI)."""
from fractions import Fraction

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinydeploy.testing as T
from tinydeploy.testing.reference import mixed_sign_products

_TP = {np.dtype(np.int8): TensorProto.INT8, np.dtype(np.uint8): TensorProto.UINT8}


def _model(node, inputs, output, inits):
    g = helper.make_graph([node], "g", inputs, [output], [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def _qlinear_conv(act, wt, seed, extreme=False):
    """QLinearConv 1×8×5×5 → 6 channels 3×3, per-channel weight scales, int32 bias."""
    r = np.random.default_rng(seed)
    ai, wi = np.iinfo(act), np.iinfo(wt)
    x = (np.full((1, 8, 5, 5), ai.max) if extreme else r.integers(ai.min, ai.max + 1, (1, 8, 5, 5))).astype(act)
    w = (np.full((6, 8, 3, 3), wi.max) if extreme else r.integers(wi.min, wi.max + 1, (6, 8, 3, 3))).astype(wt)
    xz, wz = (act(0), wt(0)) if extreme else (act(ai.min + 130), wt(wi.min + 128))
    inits = {"xs": np.float32(r.uniform(0.01, 0.05)), "xz": np.asarray(xz), "w": w,
             "ws": r.uniform(0.002, 0.02, 6).astype(np.float32), "wz": np.full(6, wz, wt),
             "ys": np.float32(r.uniform(2.5, 15) if extreme else r.uniform(0.1, 0.4)),
             "yz": np.asarray(act(ai.min + 128)),
             "b": r.integers(-5000, 5000, 6).astype(np.int32)}
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"],
                            pads=[1, 1, 1, 1])
    m = _model(node, [helper.make_tensor_value_info("x", _TP[np.dtype(act)], list(x.shape))],
               helper.make_tensor_value_info("y", _TP[np.dtype(act)], [1, 6, 5, 5]), inits)
    return m, {"x": x}, inits


def _exact_qlinear_conv(x, inits):
    """Integer accumulation, then (acc · xs · ws / ys) rounded half to even in rational arithmetic."""
    xp = np.pad(x.astype(np.int64) - int(inits["xz"]), ((0, 0), (0, 0), (1, 1), (1, 1)))
    w = inits["w"].astype(np.int64) - inits["wz"].astype(np.int64)[:, None, None, None]
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))      # 1, 8, 5, 5, 3, 3
    acc = np.einsum("nchwij,kcij->nkhw", win, w) + inits["b"][None, :, None, None].astype(np.int64)
    lo, hi = np.iinfo(inits["yz"].dtype).min, np.iinfo(inits["yz"].dtype).max
    out = np.empty(acc.shape, np.int64)
    xs, ys = Fraction(float(inits["xs"])), Fraction(float(inits["ys"]))
    for idx, a in np.ndenumerate(acc):
        v = Fraction(int(a)) * xs * Fraction(float(inits["ws"][idx[1]])) / ys
        out[idx] = min(max(round(v) + int(inits["yz"]), lo), hi)   # round(Fraction): half to even
    return out


def test_matmul_integer_u8s8_is_exact():
    """The probe's case: uint8 255 × int8 127 over K = 64 is 2,072,640 on every CPU."""
    node = helper.make_node("MatMulInteger", ["a", "b"], ["y"])
    m = _model(node, [helper.make_tensor_value_info("a", TensorProto.UINT8, [4, 64])],
               helper.make_tensor_value_info("y", TensorProto.INT32, [4, 4]), {"b": np.full((64, 4), 127, np.int8)})
    y = T.reference(m, {"a": np.full((4, 64), 255, np.uint8)})["y"]
    assert y.dtype == np.int32 and (y == 2_072_640).all()


@pytest.mark.parametrize("act,wt,extreme", [(np.uint8, np.int8, False), (np.uint8, np.int8, True),
                                            (np.int8, np.int8, False), (np.uint8, np.uint8, False)])
def test_qlinear_conv_equals_rational_arithmetic(act, wt, extreme):
    """QOperator → QDQ → float64 gives the correctly rounded result of the integer semantics."""
    m, feeds, inits = _qlinear_conv(act, wt, seed=3, extreme=extreme)
    want = _exact_qlinear_conv(feeds["x"], inits)
    got = T.reference(m, feeds)["y"]
    assert got.dtype == act and np.array_equal(got.astype(np.int64), want)
    assert len(np.unique(want)) > (1 if extreme else 20)     # not a saturated constant


def test_mixed_sign_products_found():
    assert mixed_sign_products(_qlinear_conv(np.uint8, np.int8, 0)[0]) == ["y"]
    assert mixed_sign_products(_qlinear_conv(np.int8, np.int8, 0)[0]) == []
    assert mixed_sign_products(_qlinear_conv(np.uint8, np.uint8, 0)[0]) == []


def test_probe_predicts_onnxruntime():
    """Where the probe says exact, ORT equals the reference on a u8×s8 conv whose pair sums exceed
    int16; where it says saturating, ORT differs (and references() leaves ORT out)."""
    m, feeds, _ = _qlinear_conv(np.uint8, np.int8, seed=1, extreme=True)
    same = np.array_equal(T.ort_reference(m, feeds)["y"], T.reference(m, feeds)["y"])
    assert same == T.ort_u8s8_exact()
    assert ("onnxruntime" in T.references(m, feeds)) == same
    s8 = _qlinear_conv(np.int8, np.int8, seed=1)[0]
    assert list(T.references(s8, feeds | {"x": feeds["x"].view(np.int8)})) == ["exact reference", "onnxruntime"]
