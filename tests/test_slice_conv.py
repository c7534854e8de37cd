"""The thin vertical slice: a quantized conv through every stage, against the exact reference (and
ONNX Runtime where it is exact)."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from helpers import golden_and_host
from tinydeploy.testing import references


def _conv_relu_model():
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32)
    b = (rng.standard_normal(8) * 0.1).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])],
        "conv_relu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 8])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def _quantize(model, fmt, act, tmp_path):
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    rng = np.random.default_rng(1)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)} for _ in range(8)])

        def get_next(self):
            return next(self.it, None)

    onnx.save(model, tmp_path / "f.onnx")
    quantize_static(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), Reader(),
                    quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                    activation_type=QuantType.QInt8 if act == "s8" else QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=True)
    return onnx.load(tmp_path / "q.onnx")


@pytest.mark.parametrize("fmt", ["qdq", "qoperator"])
@pytest.mark.parametrize("act", ["s8", "u8"])
def test_quantized_conv_matches_references_and_golden(fmt, act, tmp_path):
    q = _quantize(_conv_relu_model(), fmt, act, tmp_path)
    x = np.random.default_rng(2).standard_normal((1, 3, 8, 8)).astype(np.float32)
    c, gold, host = golden_and_host(q, {"x": x})
    assert any(n.op == "QConv" for n in c.graph.nodes), "the conv must lower to the integer kernel"
    assert np.array_equal(gold["y"], host["y"]), "host C must equal the golden model bit for bit"
    for label, ref in references(q, {"x": x}).items():
        scale = float(np.max(np.abs(ref["y"]))) / 127 or 1.0
        assert np.max(np.abs(gold["y"] - ref["y"])) <= scale * 1.01 + 1e-6, label
    assert c.plan.arena_bytes >= c.plan.lower_bound
