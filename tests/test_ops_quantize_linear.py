"""QuantizeLinear / DequantizeLinear on the values ONNX leaves open: NaN and ±inf inputs quantize the
same in golden, C and onnxruntime; bad constant scales are refused at compile time."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from helpers import compile_model, golden_and_host, ort_run
from tinydeploy.errors import TinydeployError

_TP = {np.dtype(np.int8): TensorProto.INT8, np.dtype(np.uint8): TensorProto.UINT8}


def _model(nodes, x_type, y_type, inits, shape=(2, 3, 5)):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", x_type, list(shape))],
                          [helper.make_tensor_value_info("y", y_type, list(shape))],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def _specials(shape, seed=0):
    x = (np.random.default_rng(seed).normal(size=shape) * 100).astype(np.float32)
    x.flat[::4], x.flat[1::7], x.flat[2::9] = np.nan, np.inf, -np.inf
    return x


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("per_axis", [False, True], ids=["tensor", "axis"])
def test_nan_and_inf_quantize_as_onnxruntime(dtype, per_axis):
    s = np.array([0.5, 0.25, 2.0], np.float32) if per_axis else np.float32(0.5)
    z = np.array([3, 7, 250 if dtype == np.uint8 else -5], dtype) if per_axis else np.array(3, dtype)
    m = _model([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=1)], TensorProto.FLOAT,
               _TP[np.dtype(dtype)], {"s": s, "z": z})
    x = _specials((2, 3, 5))
    _, gold, host = golden_and_host(m, {"x": x})
    ref = ort_run(m, {"x": x})["y"]
    assert np.array_equal(gold["y"], ref) and np.array_equal(host["y"], ref)
    lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
    assert (ref[np.isnan(x)] == lo).all() and (ref[x == np.inf] == hi).all() and (ref[x == -np.inf] == lo).all()


@pytest.mark.parametrize("dtype,tp", [(np.int32, TensorProto.INT32), (np.int16, TensorProto.INT16)])
def test_values_past_the_output_type_saturate(dtype, tp):
    """Beyond int32 (and far beyond int16) golden and C both saturate; int32's bounds are no float32."""
    m = _model([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])], TensorProto.FLOAT, tp,
               {"s": np.float32(0.5), "z": np.array(5, dtype)}, shape=(2, 4))
    x = np.array([[3e38, -3e38, 1e10, -1e10], [2.2e9, 1.2e9, -1.2e9, 7.25]], np.float32)
    _, gold, host = golden_and_host(m, {"x": x})
    lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
    want = np.clip(np.rint(x.astype(np.float64) / 0.5) + 5, lo, hi)
    assert np.array_equal(gold["y"], want) and np.array_equal(host["y"], want), (gold["y"], host["y"])


def test_nan_inside_a_lookup_table_region_quantizes_as_onnxruntime():
    """DequantizeLinear → Sqrt → QuantizeLinear becomes a table; Sqrt of a negative value is NaN."""
    nodes = [helper.make_node("DequantizeLinear", ["x", "sx", "zx"], ["f"]), helper.make_node("Sqrt", ["f"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "sy", "zy"], ["y"])]
    m = _model(nodes, TensorProto.INT8, TensorProto.INT8,
               {"sx": np.float32(0.05), "zx": np.int8(0), "sy": np.float32(0.03), "zy": np.int8(-20)}, (256,))
    x = np.arange(-128, 128, dtype=np.int8)
    c, gold, host = golden_and_host(m, {"x": x})
    assert "QLut" in [n.op for n in c.graph.nodes]
    ref = ort_run(m, {"x": x})["y"]
    assert np.array_equal(gold["y"], ref) and np.array_equal(host["y"], ref)
    assert (ref[x < 0] == -128).all()


@pytest.mark.parametrize("op", ["QuantizeLinear", "DequantizeLinear"])
@pytest.mark.parametrize("scale", [0.0, -0.5, np.nan, np.inf, 1e-40], ids=["zero", "negative", "nan", "inf", "subnormal"])
def test_bad_constant_scale_is_refused_naming_the_node(op, scale):
    s = np.array([0.5, scale, 0.25], np.float32)   # per axis: one bad channel is enough
    x_type, y_type = ((TensorProto.FLOAT, TensorProto.INT8) if op == "QuantizeLinear"
                      else (TensorProto.INT8, TensorProto.FLOAT))
    m = _model([helper.make_node(op, ["x", "s", "z"], ["y"], axis=1, name="q7")], x_type, y_type,
               {"s": s, "z": np.zeros(3, np.int8)})
    with pytest.raises(TinydeployError, match=rf"node q7 \({op}\): scale 's' holds .*positive, finite, normal"):
        compile_model(m)
