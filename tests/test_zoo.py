"""The test model set: builders, quantization wrapper and reference runner.

Besides validity, these tests pin the onnxruntime quantizer behaviours that
docs/quantized_patterns.md promises the frontend (Relu folding, softmax output
parameters, forced int8 per-channel conv weights, known QOperator bugs), so an
onnxruntime upgrade that changes them fails here rather than in a kernel test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

pytest.importorskip("onnxruntime")
try:
    import tinydeploy.testing as T
except ImportError:  # checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import tinydeploy.testing as T

ROOT = Path(__file__).resolve().parents[1]
NAMES = sorted(T.BUILDERS)
CFG_IDS = [T.config_name(*c) for c in T.QUANT_CONFIGS]
N_RANDOM = 60


def _quant(model, cfg, **kw):
    fmt, act, wt, pc = cfg
    return T.quantize(model, fmt=fmt, activation=act, weight=wt, per_channel=pc, **kw)


def _inits(model):
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def _ops(model):
    return [n.op_type for n in model.graph.node]


@pytest.fixture(scope="module")
def floats():
    return {n: T.BUILDERS[n]() for n in NAMES}


@pytest.fixture(scope="module")
def randoms():
    return [T.random_model(s) for s in range(N_RANDOM)]


# -- float builders -----------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_builder_is_valid_deterministic_and_runs(name, floats):
    m = floats[name]
    onnx.checker.check_model(m, full_check=True)
    assert [(o.domain, o.version) for o in m.opset_import] == [("", 17)] and m.ir_version == 8
    assert m.SerializeToString() == T.BUILDERS[name]().SerializeToString()
    assert m.SerializeToString() != T.BUILDERS[name](seed=1).SerializeToString()
    out = T.ort_reference(m, T.random_inputs(m)[0])
    for vi in m.graph.output:
        shape = tuple(d.dim_value for d in vi.type.tensor_type.shape.dim)
        assert out[vi.name].shape == shape and np.isfinite(out[vi.name]).all()


def test_cnn_structure(floats):
    m = floats["cnn"]
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    attrs = [{a.name: onnx.helper.get_attribute_value(a) for a in n.attribute} for n in convs]
    assert len(convs) >= 4
    assert any(a["group"] > 1 for a in attrs), "needs a depthwise conv"
    assert any(a["strides"] == [2, 2] for a in attrs), "needs a strided conv"
    assert {"Relu", "Clip", "Add", "GlobalAveragePool", "Flatten", "Gemm"} <= set(_ops(m))


def test_mlp_and_transformer_structure(floats):
    assert {"Flatten", "MatMul", "Add", "Gemm", "Relu", "Sigmoid"} <= set(_ops(floats["mlp"]))
    tb = _ops(floats["transformer_block"])
    assert tb.count("LayerNormalization") == 2 and tb.count("Softmax") == 1
    assert {"Reshape", "Transpose", "Mul", "Erf", "Div"} <= set(tb)
    assert tb.count("MatMul") == 8  # q, k, v, scores, context, out-proj, ffn1, ffn2


# -- quantization ----------------------------------------------------------------


@pytest.mark.parametrize("cfg", T.QUANT_CONFIGS, ids=CFG_IDS)
@pytest.mark.parametrize("name", NAMES)
def test_quantized_builders_run_close_to_float(name, cfg, floats):
    m = floats[name]
    q = _quant(m, cfg)
    onnx.checker.check_model(q)
    feeds = T.random_inputs(m, seed=7)[0]
    ref, out = T.ort_reference(m, feeds), T.reference(q, feeds)
    for k in ref:
        assert out[k].dtype == np.float32 and out[k].shape == ref[k].shape
        # Sanity only (not a compiler tolerance): quantization must not be broken.
        assert np.abs(out[k] - ref[k]).max() <= 0.1 * np.ptp(ref[k])
    domains = {n.domain for n in q.graph.node}
    if cfg[0] == "qdq":
        assert domains == {""}
    else:
        assert not {"Conv", "Gemm"} & set(_ops(q)), "QOperator left a float Conv/Gemm"
    # Weights are symmetric by default: zero point 0 (int8) or 128 (uint8).
    inits = _inits(q)
    for n in q.graph.node:
        w_name, zp_name = (n.input[3], n.input[5]) if n.op_type == "QLinearConv" else (None, None)
        if n.op_type == "DequantizeLinear" and n.input[0] in inits and inits[n.input[0]].ndim == 4:
            w_name, zp_name = n.input[0], n.input[2]
        if w_name:
            want = 0 if inits[w_name].dtype == np.int8 else 128
            assert (inits[zp_name] == want).all()


def test_int8_activations_with_uint8_weights_rejected(floats):
    with pytest.raises(ValueError):
        T.quantize(floats["mlp"], activation="int8", weight="uint8")
    with pytest.raises(ValueError):
        T.quantize(floats["mlp"], fmt="qlinear")


def test_reference_session_is_unoptimised(floats):
    import onnxruntime as ort

    so = T.ort_session(floats["mlp"]).get_session_options()
    assert so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    assert so.intra_op_num_threads == 1


@pytest.mark.parametrize("act", ["int8", "uint8"])
def test_softmax_output_parameters(act, floats):
    m = floats["transformer_block"]
    zp_want = -128 if act == "int8" else 0
    qdq = T.quantize(m, fmt="qdq", activation=act, weight="int8")
    inits = _inits(qdq)
    softmax_out = next(n.output[0] for n in qdq.graph.node if n.op_type == "Softmax")
    qn = next(n for n in qdq.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == softmax_out)
    assert inits[qn.input[1]] == np.float32(1 / 255) and inits[qn.input[2]] == zp_want  # range [0, 1]
    qop = T.quantize(m, fmt="qoperator", activation=act, weight="int8")
    inits = _inits(qop)
    sm = next(n for n in qop.graph.node if n.op_type == "QLinearSoftmax")
    assert inits[sm.input[3]] == np.float32(1 / 256) and inits[sm.input[4]] == zp_want
    assert {a.name: a.i for a in sm.attribute} == {"axis": -1, "opset": 17}


def test_relu_and_clip_folding(floats):
    m = floats["cnn"]
    for fmt in ("qdq", "qoperator"):  # asymmetric activations: folded into the producer's Q
        assert not {"Relu", "Clip"} & set(_ops(T.quantize(m, fmt=fmt, activation="uint8")))
    # symmetric activations keep them: DQ -> Relu -> Q, and float Relu in QOperator
    assert _ops(T.quantize(m, fmt="qdq", symmetric=True)).count("Relu") == 3
    assert _ops(T.quantize(m, fmt="qoperator", symmetric=True)).count("Relu") == 3
    assert "Relu" in _ops(T.quantize(m, fmt="qdq", extra_options={"QDQKeepRemovableActivations": True}))


def test_qoperator_per_channel_conv_weights_are_int8_even_for_uint8(floats):
    q = T.quantize(floats["cnn"], fmt="qoperator", activation="uint8", weight="uint8", per_channel=True)
    inits = _inits(q)
    convs = [n for n in q.graph.node if n.op_type == "QLinearConv"]
    assert convs and all(inits[n.input[3]].dtype == np.int8 for n in convs)
    gemm = next(n for n in q.graph.node if n.op_type == "QGemm")
    assert inits[gemm.input[3]].dtype == np.uint8


def test_qoperator_drops_relu_on_shared_input():
    # Known quantizer bug the frontend must not "fix": the reference is the quantized graph.
    m = T.single_op("Add")  # MatMul -> (Relu) -> Add(mm, relu(mm))
    assert "Relu" in _ops(m)
    qop = T.quantize(m, fmt="qoperator", activation="uint8")
    assert "Relu" not in _ops(qop)
    add = next(n for n in qop.graph.node if n.op_type == "QLinearAdd")
    assert add.input[0] == add.input[3]  # both operands are the MatMul output
    assert "Relu" in _ops(T.quantize(m, fmt="qdq", activation="uint8"))  # QDQ keeps it


def test_qdq_reshape_like_ops_may_requantize():
    # Conv -> Flatten -> Relu: the Relu is folded into Flatten's output Q, so
    # Flatten's input and output quantization parameters differ.
    q = T.quantize(T.random_model(1), fmt="qdq", activation="uint8")
    prod = {o: n for n in q.graph.node for o in n.output}
    flat = next(n for n in q.graph.node if n.op_type == "Flatten")
    dq = prod[flat.input[0]]
    qn = next(n for n in q.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == flat.output[0])
    inits = _inits(q)
    assert inits[dq.input[2]] != inits[qn.input[2]] and inits[qn.input[2]] == 0


# -- random and single-op models --------------------------------------------------


def test_random_models_valid_and_cover_ops(randoms):
    seen, conv_kinds, n_multi_out = set(), set(), 0
    for seed, m in enumerate(randoms):
        onnx.checker.check_model(m, full_check=True)
        out = T.ort_reference(m, T.random_inputs(m)[0])
        assert all(np.isfinite(v).all() for v in out.values()), seed
        seen |= set(_ops(m))
        consumed = {i for n in m.graph.node for i in n.input} | {o.name for o in m.graph.output}
        assert all(o in consumed for n in m.graph.node for o in n.output), f"dead node in seed {seed}"
        n_multi_out += len(m.graph.output) > 1
        for n in m.graph.node:
            if n.op_type == "Conv":
                a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
                conv_kinds |= {k for k, v in (("dw", a["group"] > 1), ("s2", a["strides"] == [2, 2]),
                               ("d2", a["dilations"] == [2, 2]), ("pad", any(a["pads"]))) if v}  # fmt: skip
    assert set(T.SUPPORTED_OPS) <= seen
    assert conv_kinds == {"dw", "s2", "d2", "pad"}
    assert n_multi_out > 0
    for seed in (0, 17, 59):
        assert T.random_model(seed).SerializeToString() == randoms[seed].SerializeToString()


@pytest.mark.parametrize("cfg", T.QUANT_CONFIGS, ids=CFG_IDS)
def test_random_models_quantize_and_run(cfg, randoms):
    for seed, m in enumerate(randoms):
        q = _quant(m, cfg)
        out = T.ort_reference(q, T.random_inputs(m, seed=1)[0])
        assert all(np.isfinite(v).all() for v in out.values()), seed


# What each op becomes in QOperator form when its input is already quantized;
# None = removed (folded into the producer's output range).
QOP_FORM = {
    "Conv": "QLinearConv", "MatMul": "QLinearMatMul", "Gemm": "QGemm", "Add": "QLinearAdd",
    "Mul": "QLinearMul", "Sub": "Sub", "Relu": None, "Clip": None, "LeakyRelu": "QLinearLeakyRelu",
    "Sigmoid": "QLinearSigmoid", "Tanh": "Tanh", "MaxPool": "MaxPool", "AveragePool": "QLinearAveragePool",
    "GlobalAveragePool": "QLinearGlobalAveragePool", "Concat": "QLinearConcat", "Reshape": "Reshape",
    "Flatten": "Flatten", "Transpose": "Transpose", "Softmax": "QLinearSoftmax",
    "LayerNormalization": "LayerNormalization",
}  # fmt: skip
STAYS_FLOAT = {"Sub", "Tanh", "LayerNormalization"}  # in QOperator; in QDQ only Sub and Tanh


@pytest.mark.parametrize("op", T.SUPPORTED_OPS)
def test_single_op_forms(op):
    m = T.single_op(op)
    onnx.checker.check_model(m, full_check=True)
    feeds = T.random_inputs(m)[0]
    qop = T.quantize(m, fmt="qoperator", activation="uint8", per_channel=True)
    form = QOP_FORM[op]
    if form is None:
        assert op not in _ops(qop)
    else:
        node = next(n for n in qop.graph.node[2:] if n.op_type == form)
        if op in STAYS_FLOAT:
            # float islands in QOperator: fed by DequantizeLinear
            assert any(n.op_type == "DequantizeLinear" and n.output[0] in node.input for n in qop.graph.node)
    qdq = T.quantize(m, fmt="qdq", activation="uint8", per_channel=True)
    if op in ("Sub", "Tanh"):
        assert "float" in T.patterns.qdq_patterns(qdq, feeds)[-1]
    for q in (qop, qdq):
        assert all(np.isfinite(v).all() for v in T.ort_reference(q, feeds).values())


def test_make_models_cli(tmp_path):
    script = ROOT / "examples" / "make_models.py"
    r = subprocess.run([sys.executable, str(script), str(tmp_path), "--only", "mlp", "--configs",
                        "qdq.u8i8.pc", "--configs", "qoperator.i8i8.pt"], capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["mlp.float.onnx", "mlp.inputs.npz"] + [
        f"mlp.{c}.{ext}" for c in ("qdq.u8i8.pc", "qoperator.i8i8.pt") for ext in ("onnx", "expected.npz", "txt")
    ])  # fmt: skip
    q = onnx.load(tmp_path / "mlp.qdq.u8i8.pc.onnx")
    feeds = dict(np.load(tmp_path / "mlp.inputs.npz"))
    want = dict(np.load(tmp_path / "mlp.qdq.u8i8.pc.expected.npz"))
    got = T.reference(q, feeds)
    assert want.keys() == got.keys() and all(np.array_equal(want[k], got[k]) for k in want)
    bad = subprocess.run([sys.executable, str(script), str(tmp_path), "--configs", "qdq.s8"], capture_output=True)
    assert bad.returncode != 0
