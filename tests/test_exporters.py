"""Quantized graphs as real exporters write them (tinydeploy.testing.exporters: tf2onnx from TFLite
int8, torch.onnx.export of PyTorch PTQ / QAT) lower to the same integer kernels: golden == C bit for
bit, within the depth rule of docs/tolerance.md from the reference, and nothing left in float
except what the ONNX graph itself computes in float (the unobserved pool of a QAT export)."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from helpers import ort_run
from model_check import check_model
from ops_testlib import Cases
from tinydeploy.passes.float_nodes import float_nodes
from tinydeploy.testing import exporters as E
from tinydeploy.testing.quant import input_specs


def _feeds(model, seed=7):
    rng = np.random.default_rng(seed)
    return {k: rng.integers(-128, 128, s).astype(dt) if dt == np.int8 else rng.standard_normal(s).astype(dt)
            for k, (s, dt) in input_specs(model).items()}


CASES = {  # builder kwargs -> the integer kernels it must lower to
    "tflite_fc_autoencoder": ({}, {"QMatMul": 10}),
    "tflite_ds_cnn": ({"blocks": 2}, {"QConv": 5, "QAvgPool": 1, "QMatMul": 1, "QSoftmax": 1}),
    "tflite_ds_cnn-relu6-mean-nhwc": ({"relu6": True, "pool": "mean", "nhwc_input": True},
                                      {"QConv": 3, "QReduce": 1, "QMatMul": 1, "QSoftmax": 1}),
    "torch_cnn-ptq": ({"mode": "ptq"}, {"QConv": 3, "QAvgPool": 1, "QMatMul": 1}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_exporter_graph_is_integer_and_exact(case):
    kw, expect = CASES[case]
    model = E.BUILDERS[case.split("-")[0]](**kw)
    c, stats = check_model(model, _feeds(model))
    ops = [n.op for n in c.graph.nodes]
    for op, count in expect.items():
        assert ops.count(op) == count, (op, ops)
    assert float_nodes(c.graph) == [], float_nodes(c.graph)
    assert all(abs(mean) < 0.1 for _, _, _, mean, _, is_out in stats if is_out)


@pytest.mark.parametrize("last_act", ["relu", "hardtanh"])
def test_torch_qat(last_act, tmp_path):
    """QAT: fbgemm's reduce_range Q → Clip(0, 127) → DQ folds into the kernels' clamps, an unobserved
    ReLU (DQ → Relu → Conv) sinks into an integer clamp, the unobserved pool head (GlobalAveragePool →
    Flatten → Gemm) is one QPoolMatMul, the 3-D Linear (Transpose(DQ(W)) → MatMul → Add(bias, ·)) one
    QMatMul. An unobserved Hardtanh whose bound 6 falls between grid values makes the head float in
    the ONNX graph itself: then Clip, pool and Gemm stay float, and are listed. rv32 == golden."""
    from tinydeploy.driver import run_model
    from tinydeploy.testing.reference import reference
    model = E.torch_cnn(mode="qat", last_act=last_act)
    feeds = _feeds(model)
    c, _ = check_model(model, feeds)
    ops = [n.op for n in c.graph.nodes]
    assert ops.count("QConv") == 3 and ops.count("QMatMul") == 1
    island = {d["op"] for d in float_nodes(c.graph)}
    if last_act == "relu":
        assert island == set() and ops.count("QPoolMatMul") == 1
    else:
        assert {"Clip", "GlobalAveragePool", "Gemm"} <= island and not island & {"Conv", "MatMul", "Relu"}
    # the graph output is a Squeeze of a DequantizeLinear: compare it in LSB of that scale
    out = model.graph.output[0].name
    last_dq = [n for n in model.graph.node if n.op_type == "DequantizeLinear"][-1]
    scale = float(next(numpy_helper.to_array(i) for i in model.graph.initializer if i.name == last_dq.input[1]))
    onnx.save(model, tmp_path / "m.onnx")
    np.savez(tmp_path / "in.npz", **feeds)
    gold, _ = run_model(tmp_path / "m.onnx", "golden", tmp_path / "in.npz", {})
    assert np.abs(gold[out] - reference(model, feeds)[out]).max() / scale <= 1 + 1e-6
    if last_act == "relu":
        rv, _ = run_model(tmp_path / "m.onnx", "rv32", tmp_path / "in.npz", {}, integer_only=True)
        assert np.array_equal(gold[out], rv[out])


def test_pooled_linear_head():
    """DQ → GlobalAveragePool → Flatten / Reshape → Gemm / MatMul (+ Add bias) → Q: one QPoolMatMul
    (the 1/(H·W) in its multiplier), per-channel and per-tensor weights, float and int32 biases; a
    head whose int32 sums could overflow stays float (and correct)."""
    b = Cases(seed=9)
    x = b.act((1, 24, 7, 7), scale=0.03, zp=-20)
    w = b.weight(b.rng.integers(-127, 128, (10, 24)).astype(np.int8), b.rng.uniform(0.005, 0.02, 10).astype(np.float32),
                 np.zeros(10, np.int8), axis=0)
    flat = b.op("Flatten", b.op("GlobalAveragePool", x), axis=1)
    b.q_out(b.op("Gemm", flat, w, b.fconst(b.rng.normal(0, 0.3, 10)), transB=1), 0.02, 3, label="gemm")
    w2 = b.weight(b.rng.integers(-127, 128, (24, 6)).astype(np.int8), 0.01)
    r = b.op("Reshape", b.op("GlobalAveragePool", x), b._const(np.array([1, 24], np.int64)))
    bias = b.bias(b.rng.integers(-500, 500, 6), np.float32(0.03) * np.float32(0.01))
    b.q_out(b.op("Relu", b.op("Add", b.op("MatMul", r, w2), bias)), 0.01, -128, label="matmul+bias+relu")
    big = b.act((1, 64, 48, 48), scale=0.05, zp=0)
    w3 = b.weight(b.rng.integers(-127, 128, (64, 4)).astype(np.int8), 0.01)
    b.q_out(b.op("MatMul", b.op("Flatten", b.op("GlobalAveragePool", big)), w3), 0.05, 0, label="too big: float")
    c, _ = b.check(max_lsb=1)
    ops = [n.op for n in c.graph.nodes]
    assert ops.count("QPoolMatMul") == 2 and ops.count("MatMul") == 1, ops


def test_fc_autoencoder_fits_and_is_integer_on_rv32(tmp_path):
    """MLPerf Tiny AD as tf2onnx writes it: all ten layers integer, inside 512 KiB, rv32 == golden."""
    from tinydeploy.driver import run_model
    model = E.tflite_fc_autoencoder()
    onnx.save(model, tmp_path / "ad.onnx")
    np.savez(tmp_path / "in.npz", **_feeds(model))
    gold, _ = run_model(tmp_path / "ad.onnx", "golden", tmp_path / "in.npz", {})
    rv, rep = run_model(tmp_path / "ad.onnx", "rv32", tmp_path / "in.npz", {}, integer_only=True)
    assert all(np.array_equal(gold[k], rv[k]) for k in gold)
    assert rep["float_nodes"] == [] and rep["memory"]["SRAM_total"] <= 512 * 1024
    assert rep["cycles"] / rep["macs"] < 10   # integer kernels; the float layers took ~245 per MAC


# ---- the pieces, one at a time ---------------------------------------------------------------------
def test_bias_add_in_either_operand_order_and_dq_int32_or_float():
    b = Cases(seed=3)
    x = b.act((2, 16), scale=0.05, zp=3)
    w = b.weight(b.rng.integers(-127, 128, (16, 8)).astype(np.int8), 0.02)
    bias_i32 = b.bias(b.rng.integers(-2000, 2000, 8), np.float32(0.05) * np.float32(0.02))
    b.q_out(b.op("Add", b.op("MatMul", x, w), bias_i32), 0.1, -5, label="dq int32 bias after")
    b.q_out(b.op("Relu", b.op("Add", b.fconst(b.rng.normal(size=8)), b.op("MatMul", x, w))), 0.05, -128,
            label="float bias first, relu")
    c, stats = b.check(max_lsb=1)
    assert [n.op for n in c.graph.nodes].count("QMatMul") == 2, [n.op for n in c.graph.nodes]


def test_add_that_is_not_a_per_channel_bias_is_not_folded():
    """A per-row constant ([M, 1]) or a second activation is no bias: those graphs stay correct."""
    b = Cases(seed=4)
    x = b.act((4, 16), scale=0.05, zp=0)
    w = b.weight(b.rng.integers(-127, 128, (16, 8)).astype(np.int8), 0.02)
    b.q_out(b.op("Add", b.op("MatMul", x, w), b.fconst(b.rng.normal(size=(4, 1)))), 0.1, 0, label="per-row")
    b.q_out(b.op("Add", b.op("MatMul", x, w), b.act((4, 8), scale=0.1, zp=1)), 0.1, 0, label="activation")
    c, _ = b.check(max_lsb=1)
    assert "QMatMul" not in [n.op for n in c.graph.nodes]


def test_per_axis_weight_through_transpose_and_relu_before_conv():
    """DQ(W per-axis 0) → Transpose → MatMul lowers with the axis moved; an unobserved Relu between
    DQ and Conv becomes an integer clamp; a Clip bound between two grid values stays float."""
    b = Cases(seed=5)
    x = b.act((1, 16), scale=0.05, zp=-3)
    w = b.weight(b.rng.integers(-127, 128, (8, 16)).astype(np.int8), b.rng.uniform(0.01, 0.03, 8).astype(np.float32),
                 np.zeros(8, np.int8), axis=0)
    b.q_out(b.op("MatMul", x, b.op("Transpose", w, perm=[1, 0])), 0.1, 2, label="transposed per-axis")
    img = b.act((1, 4, 6, 6), scale=0.05, zp=10)
    cw = b.weight(b.rng.integers(-127, 128, (4, 4, 3, 3)).astype(np.int8), 0.02)
    b.q_out(b.op("Conv", b.op("Relu", img), cw, pads=[1, 1, 1, 1]), 0.1, -20, label="relu then conv")
    off = b.op("Clip", img, b.fconst(np.float32(0.0)), b.fconst(np.float32(0.0512)))   # 0.0512 / 0.05: off grid
    b.q_out(b.op("Conv", off, cw, pads=[1, 1, 1, 1]), 0.1, -20, label="off-grid clip then conv")
    c, _ = b.check(max_lsb=1)
    ops = [n.op for n in c.graph.nodes]
    assert ops.count("QMatMul") == 1 and ops.count("QConv") == 1 and ops.count("Conv") == 1, ops


def test_dq_q_requantization_and_identity():
    """DQ → Q is nothing at equal parameters and one QRequant otherwise (TFLite's QUANTIZE op)."""
    b = Cases(seed=6)
    x = b.act((64,), scale=0.05, zp=3)
    b.q_out(x, 0.05, 3, label="same")
    b.q_out(x, 0.0713, -9, label="requant")
    c, _ = b.check(max_lsb=1)
    assert sorted(n.op for n in c.graph.nodes) == ["Identity", "QRequant"]


def test_torch_reduce_range_clip_after_q_folds_into_the_kernel():
    """Q(uint8) → Clip(max 127) → DQ between two Convs (fbgemm QAT's reduce_range fake-quant): the
    clamp of the first QConv becomes uint8 127 (int8 -1), exactly where the Clip binds."""
    b = Cases(seed=8)
    x = b.act((1, 3, 6, 6), scale=0.04, zp=100, dtype=np.uint8)
    w = b.weight(b.rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8), 0.02)
    y = b.fresh("y")
    b.nodes.append(helper.make_node("QuantizeLinear", [b.op("Conv", x, w), b._const(np.float32(0.004)),
                                                      b._const(np.uint8(60))], [y]))
    clipped = b.dq(b.op("Clip", y, "", b._const(np.uint8(127))), 0.004, 60, np.uint8)
    w2 = b.weight(b.rng.integers(-127, 128, (4, 4, 1, 1)).astype(np.int8), 0.02)
    b.q_out(b.op("Conv", clipped, w2), 0.005, 7, np.uint8, label="after the clamp")
    c, _ = b.check(max_lsb=1)
    convs = [n for n in c.graph.nodes if n.op == "QConv"]
    assert len(convs) == 2 and "Clip" not in [n.op for n in c.graph.nodes]
    assert convs[0].attrs["hi"] == 127 - 128   # uint8 127 as int8
