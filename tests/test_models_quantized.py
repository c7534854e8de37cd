"""The fixed model set (CNN, MLP, transformer block) in every quantization onnxruntime offers:
QDQ and QOperator, int8 and uint8 activations, int8 / uint8 weights, per-tensor and per-channel.
Each: golden == host C bit for bit on integer paths, every output within the depth rule of
docs/tolerance.md from onnxruntime (ORT_DISABLE_ALL), mean signed error well under 1 LSB, and the
graph lowered to integer kernels (float only at the edges)."""
import numpy as np
import pytest

import tinydeploy.testing as T
from model_check import check_model
from tinydeploy.ops import registry
from tinydeploy.passes.float_nodes import float_nodes

registry.load_all()
pytestmark = pytest.mark.skipif(not {"Flatten", "Reshape", "Transpose"} <= set(registry.OPS),
                                reason="needs the data-movement ops (ops/shape.py)")

# integer kernels each model must lower to (float_nodes: none, except in QOperator form the first
# LayerNormalization, which ORT leaves in float, and its QuantizeLinear)
EXPECT = {"cnn": {"QConv": 5, "QAdd": 1, "QAvgPool": 1, "QMatMul": 1},
          "mlp": {"QMatMul": 3, "QAdd": 1, "QLut": 1},
          "transformer_block": {"QMatMul": 8, "QSoftmax": 1, "QLut": 1, "QMul": 3}}

_cache = {}


def _quantized(name, cfg):
    if (name, cfg) not in _cache:
        _cache[(name, cfg)] = T.quantize(T.BUILDERS[name](), fmt=cfg[0], activation=cfg[1], weight=cfg[2],
                                         per_channel=cfg[3])
    return _cache[(name, cfg)]


@pytest.mark.parametrize("cfg", T.QUANT_CONFIGS, ids=[T.config_name(*c) for c in T.QUANT_CONFIGS])
@pytest.mark.parametrize("name", list(T.BUILDERS))
def test_model(name, cfg):
    q = _quantized(name, cfg)
    feeds = T.random_inputs(q, seed=7)[0]
    c, stats = check_model(q, feeds)
    ops = [n.op for n in c.graph.nodes]
    for op, count in EXPECT[name].items():
        assert ops.count(op) == count, (op, ops)
    island = {"LayerNormalization", "QuantizeLinear"} if name == "transformer_block" and cfg[0] == "qoperator" else set()
    assert {d["op"] for d in float_nodes(c.graph)} <= island, float_nodes(c.graph)
    for tensor, depth, mx, mean, n, is_out in stats:
        if is_out:
            assert abs(mean) < 0.1, f"{tensor}: mean signed error {mean:.3f} LSB"


@pytest.mark.parametrize("name,cfg,cc,extra", [
    ("transformer_block", ("qdq", "int8", "int8", True), "clang", ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]),
    ("cnn", ("qoperator", "uint8", "int8", False), "clang", ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]),
    ("mlp", ("qdq", "uint8", "uint8", True), "clang", None),
], ids=["transformer-asan", "cnn-asan", "mlp-clang"])
def test_model_compilers_and_sanitizers(name, cfg, cc, extra):
    q = _quantized(name, cfg)
    check_model(q, T.random_inputs(q, seed=8)[0], cc=cc, extra=extra)


@pytest.mark.parametrize("name,cfg", [("transformer_block", ("qdq", "int8", "int8", True)),
                                      ("cnn", ("qoperator", "uint8", "int8", False))], ids=["transformer", "cnn"])
def test_model_rv32_bit_exact(name, cfg, tmp_path):
    """The same integer kernels, freestanding on the RV32IMC simulator: equal to golden bit for bit."""
    import onnx

    from tinydeploy.driver import run_model
    q = _quantized(name, cfg)
    onnx.save(q, tmp_path / "m.onnx")
    np.savez(tmp_path / "in.npz", **T.random_inputs(q, seed=9)[0])
    gold, _ = run_model(tmp_path / "m.onnx", "golden", tmp_path / "in.npz", {})
    rv, report = run_model(tmp_path / "m.onnx", "rv32", tmp_path / "in.npz", {})
    assert report["cycles"] > 0
    for k in gold:
        assert np.array_equal(gold[k], rv[k]), k
