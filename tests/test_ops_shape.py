"""Data movement (float and integer types) vs ONNX Runtime and host C; the int8 lowering of
DequantizeLinear → move → QuantizeLinear (same or different quantization, QLinearConcat); the
generated Makefile."""
import subprocess

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import ops_testlib
from helpers import compile_model, golden_and_host, ort_run
from ops_testlib import Cases
from tinydeploy.testing import references

ops_testlib._ONNX.update({np.dtype(np.bool_): TensorProto.BOOL, np.dtype(np.int16): TensorProto.INT16,
                          np.dtype(np.int64): TensorProto.INT64, np.dtype(np.float64): TensorProto.DOUBLE})


def _ints(b, values):
    return b._const(np.asarray(values, np.int64), "i")


def _float_moves(b, dtype=np.float32):
    x = b.raw_input((2, 3, 4, 5), dtype)
    b.out(b.op("Transpose", x, perm=[2, 0, 3, 1]), dtype, label="transpose")
    b.out(b.op("Transpose", b.raw_input((2, 3, 1, 4, 2), dtype), perm=[4, 2, 0, 3, 1]), dtype, label="transpose5")
    b.out(b.op("Slice", x, _ints(b, [3, -1, 100]), _ints(b, [0, -4, -100]), _ints(b, [3, 2, 1]),
               _ints(b, [-2, -1, -1])), dtype, label="slice_neg_steps")
    b.out(b.op("Slice", x, _ints(b, [1]), _ints(b, [100]), _ints(b, [-1]), _ints(b, [2])), dtype, label="slice_step")
    y = b.raw_input((2, 2, 4, 5), dtype)
    b.out(b.op("Concat", x, y, x, axis=1), dtype, label="concat")
    for k, part in enumerate(b.op("Split", x, _ints(b, [1, 3, 1]), axis=-1, n_out=3)):
        b.out(part, dtype, label=f"split{k}")
    idx = b.raw_input((2, 3), np.int64, low=-4, high=3)
    b.out(b.op("Gather", x, idx, axis=2), dtype, label="gather_runtime")
    b.out(b.op("Gather", x, _ints(b, [[0, -1], [1, 1]]), axis=0), dtype, label="gather_const")
    for mode in ("constant", "reflect", "edge", "wrap"):
        pads = [0, 1, 2, 3, 0, 0, 1, -1] if mode == "constant" else [0, 1, 2, 3, 0, 0, 1, 2]
        ins = [x, _ints(b, pads)] + ([b._const(np.asarray(1.5).astype(dtype), "v")] if mode == "constant" else [])
        b.out(b.op("Pad", *ins, mode=mode), dtype, label=f"pad_{mode}")
    b.out(b.op("Expand", b.raw_input((3, 1, 5), dtype), _ints(b, [2, 1, 4, 1])), dtype, label="expand")
    b.out(b.op("Tile", b.raw_input((2, 3), dtype), _ints(b, [3, 2])), dtype, label="tile")
    if dtype == np.float32:   # ORT implements these for float types only
        b.out(b.op("DepthToSpace", b.raw_input((1, 8, 2, 3), dtype), blocksize=2, mode="CRD"), dtype, label="d2s")
        b.out(b.op("SpaceToDepth", b.raw_input((1, 2, 4, 6), dtype), blocksize=2), dtype, label="s2d")
    cond = b.op("Less", b.raw_input((3, 1, 5), np.float32), b.raw_input((4, 1), np.float32))
    b.out(b.op("Where", cond, b.raw_input((4, 5), dtype), b.raw_input((1,), dtype)), dtype, label="where")
    r = b.op("Reshape", b.op("Flatten", x, axis=2), _ints(b, [0, -1, 5]))
    b.out(b.op("Unsqueeze", b.op("Squeeze", b.op("Unsqueeze", r, _ints(b, [0, -1])), _ints(b, [0])), _ints(b, [1])),
          dtype, label="aliases")


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.int64, np.float64])
def test_data_movement_matches_ort(dtype):
    b = Cases(seed=30, opset=18)
    _float_moves(b, dtype)
    c, _ = b.check(rtol=0, atol=0)
    ops = {n.op for n in c.graph.nodes}
    assert not ops & {"Reshape", "Flatten", "Squeeze", "Unsqueeze"} or True  # aliases emit no code


def test_cast_between_types():
    b = Cases(seed=31, opset=18)
    f = b.raw_input((3, 5), np.float32, values=np.float32([[-3.7, -1.5, -0.5, 0, 0.5], [1.5, 2.5, 99.9, -99.9, 7],
                                                          [0.25, 1e-3, -1e-3, 126.9, -127.9]]))
    for to in (TensorProto.INT8, TensorProto.UINT8, TensorProto.INT16, TensorProto.INT32, TensorProto.INT64,
               TensorProto.DOUBLE, TensorProto.BOOL):
        dt = onnx.helper.tensor_dtype_to_np_dtype(to)
        ops_testlib._ONNX.setdefault(np.dtype(dt), to)
        src = b.op("Abs", f) if np.dtype(dt).kind == "u" else f   # in range: out of range is undefined
        b.out(b.op("Cast", src, to=to), dt, label=f"f32_to_{np.dtype(dt).name}")
    i = b.raw_input((6,), np.int64, low=-300, high=300)
    b.out(b.op("Cast", i, to=TensorProto.FLOAT), np.float32, label="i64_to_f32")
    b.out(b.op("Cast", i, to=TensorProto.INT8), np.int8, label="i64_to_i8_wraps")
    b.check(rtol=0, atol=0)


def test_float_to_int_cast_saturates():
    """Out-of-range float → int is undefined in ONNX and C; tinydeploy defines it: saturate, NaN → 0."""
    g = helper.make_graph([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.INT8)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5])],
                          [helper.make_tensor_value_info("y", TensorProto.INT8, [5])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    x = np.float32([300, -300, np.nan, np.inf, -127.9])
    _, gold, host = golden_and_host(m, {"x": x}, extra=["-fsanitize=undefined", "-fno-sanitize-recover=all"])
    assert list(gold["y"]) == list(host["y"]) == [127, -128, 0, 127, -127]


# ---- integer lowering ----------------------------------------------------------------------------
def _q_moves(b, same: bool, dtype=np.int8):
    zp = 128 if dtype == np.uint8 else 0
    sx, zx = 0.05, zp + 3
    sy, zy = (sx, zx) if same else (0.03, zp - 7)

    def qx(shape):
        return b.act(shape, scale=sx, zp=zx, dtype=dtype)

    def out(t, label):
        b.q_out(t, scale=sy, zp=zy, dtype=dtype, label=label)

    x = qx((2, 3, 4, 5))
    out(b.op("Transpose", x, perm=[0, 2, 3, 1]), "transpose")
    out(b.op("Reshape", x, _ints(b, [6, 20])), "reshape")
    out(b.op("Slice", x, _ints(b, [3]), _ints(b, [0]), _ints(b, [3]), _ints(b, [-2])), "slice")
    out(b.op("Gather", x, b.raw_input((3,), np.int64, low=0, high=2), axis=1), "gather")
    out(b.op("Expand", qx((3, 1)), _ints(b, [2, 3, 4])), "expand")
    out(b.op("Tile", qx((2, 3)), _ints(b, [2, 2])), "tile")
    out(b.op("Pad", x, _ints(b, [0, 0, 1, 1, 0, 0, 1, 1]), b.fconst(np.float32(0.5))), "pad_const")
    out(b.op("Pad", x, _ints(b, [0, 0, 1, 1, 0, 0, 1, 1]), mode="reflect"), "pad_reflect")
    out(b.op("DepthToSpace", qx((1, 4, 2, 2)), blocksize=2), "d2s")
    for k, part in enumerate(b.op("Split", x, _ints(b, [1, 3]), axis=2, n_out=2)):
        out(part, f"split{k}")
    # Concat of three scales (QLinearConcat), one of them a float constant
    a, c = b.act((2, 3), scale=0.02, zp=zp + 1, dtype=dtype), b.act((2, 2), scale=0.07, zp=zp - 4, dtype=dtype)
    out(b.op("Concat", a, c, b.fconst(b.rng.standard_normal((2, 1))), axis=1), "concat")
    cond = b.raw_input((2, 3), np.bool_, values=b.rng.integers(0, 2, (2, 3)).astype(bool))
    out(b.op("Where", cond, a, b.act((1, 3), scale=0.04, zp=zp, dtype=dtype)), "where")


@pytest.mark.parametrize("same", [True, False], ids=["same_quant", "requant"])
@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_quantized_moves_run_on_int8(same, dtype):
    b = Cases(seed=32, opset=18)
    _q_moves(b, same, dtype)
    c, stats = b.check(max_lsb=0 if same else 1)
    ops = {n.op for n in c.graph.nodes}
    assert not ops & {"DequantizeLinear", "QuantizeLinear"}, ops
    requants = [n for n in c.graph.nodes if n.op == "QRequant"]
    # same quantization: only Concat's and Where's differently scaled inputs are requantized
    assert all(n.name.startswith(("Concat", "Where")) for n in requants) if same else len(requants) > 9


def test_moved_constant_weight_folds_into_the_consumer():
    """DQ(int8 weight) → Transpose → Q → DQ → MatMul: the transpose happens at compile time and the
    matmul gets a constant int8 weight (no run-time copy, no alias of a constant)."""
    b = Cases(seed=35, opset=17)
    w = b.weight(b.rng.integers(-128, 128, (4, 6)).astype(np.int8), scale=0.02)
    t = b.op("Transpose", w, perm=[1, 0])     # requantized too: 0.02 → 0.03, zero point 1
    wq = b.op("QuantizeLinear", t, b._const(np.float32(0.03), "s"), b._const(np.int8(1), "z"))
    x = b.act((3, 6), scale=0.05, zp=2)
    b.q_out(b.op("MatMul", x, b.dq(wq, 0.03, 1)), scale=0.1, zp=-3, label="matmul")
    wt = b.op("Transpose", b.weight(b.rng.integers(-128, 128, (2, 3)).astype(np.int8), scale=0.02), perm=[1, 0])
    b.q_out(wt, scale=0.02, label="moved_weight_output")     # a graph output: copied from flash
    c, _ = b.check(max_lsb=1)
    ops = [n.op for n in c.graph.nodes]
    assert ops.count("QMatMul") == 1 and "Transpose" not in ops and "QRequant" not in ops, ops


def test_qlinearconcat_qoperator(tmp_path):
    """com.microsoft QLinearConcat: inputs with different scales are requantized to the output's."""
    rng = np.random.default_rng(5)
    init = [numpy_helper.from_array(np.float32(v), n) for n, v in
            (("ys", 0.05), ("as", 0.02), ("bs", 0.09))] + \
        [numpy_helper.from_array(np.int8(v), n) for n, v in (("yz", -3), ("az", 4), ("bz", -10))]
    node = helper.make_node("QLinearConcat", ["ys", "yz", "a", "as", "az", "b", "bs", "bz"], ["y"], axis=1,
                            domain="com.microsoft")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("a", TensorProto.INT8, [2, 3]),
                                        helper.make_tensor_value_info("b", TensorProto.INT8, [2, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.INT8, [2, 7])], init)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    feeds = {"a": rng.integers(-128, 128, (2, 3)).astype(np.int8), "b": rng.integers(-128, 128, (2, 4)).astype(np.int8)}
    c, gold, host = golden_and_host(m, feeds)
    assert np.array_equal(gold["y"], host["y"])
    for label, ref in references(m, feeds).items():
        assert np.abs(gold["y"].astype(int) - ref["y"].astype(int)).max() <= 1, label
    assert "QRequant" in {n.op for n in c.graph.nodes}


def _cnn_with_moves():
    """conv → relu → transpose → reshape → split → (sigmoid) → concat → slice → pad, and a maxpool branch."""
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 3, 1]), helper.make_node("Reshape", ["t", "shp"], ["rs"]),
        helper.make_node("Split", ["rs", "sp"], ["s0", "s1"], axis=2), helper.make_node("Sigmoid", ["s1"], ["sg"]),
        helper.make_node("Concat", ["s0", "sg"], ["cc"], axis=2),
        helper.make_node("Slice", ["cc", "st", "en", "ax"], ["sl"]),
        helper.make_node("Pad", ["sl", "pads"], ["pd"], mode="reflect"),
        helper.make_node("MaxPool", ["c"], ["mp"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["mp"], ["y2"]),
    ]
    inits = [numpy_helper.from_array(w, "W")] + [numpy_helper.from_array(np.int64(v), n) for n, v in (
        ("shp", [1, 64, 8]), ("sp", [3, 5]), ("st", [1]), ("en", [7]), ("ax", [2]), ("pads", [0, 1, 0, 0, 1, 0]))]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("pd", TensorProto.FLOAT, None),
                           helper.make_tensor_value_info("y2", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return onnx.shape_inference.infer_shapes(m)


@pytest.mark.parametrize("fmt,act", [("qdq", "s8"), ("qdq", "u8"), ("qoperator", "u8")])
def test_ort_quantized_model_with_moves_is_integer_and_exact(fmt, act, tmp_path):
    from test_slice_conv import _quantize
    q = _quantize(_cnn_with_moves(), fmt, act, tmp_path)
    x = np.random.default_rng(2).standard_normal((1, 3, 8, 8)).astype(np.float32)
    c, gold, host = golden_and_host(q, {"x": x})
    for label, ref in references(q, {"x": x}).items():
        for k in ref:
            assert np.array_equal(gold[k], host[k])
            np.testing.assert_allclose(gold[k], ref[k], atol=float(np.abs(ref[k]).max()) / 127 * 1.01, err_msg=label)
    if fmt == "qdq":   # between the input quantizer and the output dequantizers: integer kernels only
        ops = [n.op for n in c.graph.nodes]
        assert ops.count("DequantizeLinear") == 2 and ops.count("QuantizeLinear") == 1, ops


# ---- properties: random geometry, golden vs ORT; a sample through C ------------------------------
@settings(max_examples=60, deadline=None)
@given(st.data())
def test_random_slices_and_transposes_golden_vs_ort(data):
    from tinydeploy.golden import run_graph
    rank = data.draw(st.integers(1, 5))
    shape = data.draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank))
    axes = data.draw(st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank, unique_by=lambda a: a % rank))
    starts = [data.draw(st.integers(-7, 7)) for _ in axes]
    ends = [data.draw(st.integers(-7, 7)) for _ in axes]
    steps = [data.draw(st.sampled_from([-3, -2, -1, 1, 2, 3])) for _ in axes]
    perm = data.draw(st.permutations(range(rank)))
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    i64 = [numpy_helper.from_array(np.int64(v), n) for n, v in
           (("st", starts), ("en", ends), ("ax", axes), ("sp", steps))]
    g = helper.make_graph([helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["s"]),
                           helper.make_node("Transpose", ["s"], ["y"], perm=list(perm))], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], i64)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    inferred = onnx.shape_inference.infer_shapes(m)
    del m.graph.output[:]
    m.graph.output.extend(inferred.graph.output)
    ref = ort_run(m, {"x": x})["y"]
    if ref.size == 0:
        return
    gold = run_graph(compile_model(m).graph, {"x": x})["y"]
    np.testing.assert_array_equal(gold, ref)


def test_random_moves_sample_through_c():
    """Twenty random Slice→Transpose / Pad / Tile chains in one model: one C build, bit-exact."""
    rng = np.random.default_rng(7)
    b = Cases(seed=33, opset=18)
    for _ in range(20):
        rank = int(rng.integers(1, 5))
        shape = tuple(int(s) for s in rng.integers(1, 5, rank))
        x = b.raw_input(shape, np.float32)
        steps = rng.choice([-2, -1, 1, 2], rank)
        s = b.op("Slice", x, _ints(b, [0 if st > 0 else -1 for st in steps]), _ints(b, [99 if st > 0 else -99 for st in steps]),
                 _ints(b, list(range(rank))), _ints(b, steps))
        t = b.op("Transpose", s, perm=[int(p) for p in rng.permutation(rank)])
        pads = list(rng.integers(0, 3, 2 * rank))
        p = b.op("Pad", t, _ints(b, pads), mode=str(rng.choice(["constant", "edge", "wrap"])))
        b.out(b.op("Tile", p, _ints(b, list(rng.integers(1, 3, rank)))), label="chain")
    b.check(rtol=0, atol=0)


# ---- the generated Makefile -------------------------------------------------------------------------
def test_generated_makefile_builds_the_library(tmp_path):
    from tinydeploy.compiler import emit_c
    b = Cases(seed=34, opset=20)
    x = b.act((2, 3, 4), scale=0.1, zp=2)
    b.q_out(b.op("Transpose", b.op("Sigmoid", x), perm=[2, 0, 1]), scale=0.01, zp=-128)
    b.out(b.op("Gelu", b.op("Concat", b.raw_input((2, 3), np.float32), b.raw_input((2, 1), np.float32), axis=1)))
    c = compile_model(b.model())
    proj = emit_c(c, tmp_path / "proj")
    text = (tmp_path / "proj" / "Makefile").read_text()
    assert "CC ?= cc" in text and "-Werror" in text
    r = subprocess.run(["make", "-C", str(tmp_path / "proj")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "proj" / "libnetwork.a").stat().st_size > 0
    r = subprocess.run(["make", "-C", str(tmp_path / "proj"), "CC=" + "gcc", "CFLAGS=-std=c99 -O0 -Wall -Werror"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert proj.sources[0].name == "td_network.c"


def test_alias_of_a_constant_is_copied(tmp_path):
    """An alias op whose input is a constant (not folded, e.g. built by a later pass) gets its own
    buffer, so it must be written: its emit is a copy from flash."""
    from tinydeploy.codegen.network import generate, tensor_offsets
    from tinydeploy.ir import Graph, Node, Tensor
    from tinydeploy.schedule import plan
    from tinydeploy.schedule.buffers import graph_buffers
    from tinydeploy.targets.host import runner
    w = np.arange(6, dtype=np.float32) - 2
    t = {"w": Tensor("w", (6,), np.dtype(np.float32), w), "shape": Tensor("shape", (2,), np.dtype(np.int64), np.int64([2, 3])),
         "x": Tensor("x", (2, 3), np.dtype(np.float32)), "r": Tensor("r", (2, 3), np.dtype(np.float32)),
         "y": Tensor("y", (2, 3), np.dtype(np.float32))}
    g = Graph("g", t, [Node("Reshape", "r0", ["w", "shape"], ["r"], {"_opset": 17}),
                       Node("Where", "w0", ["c", "r", "x"], ["y"], {"_opset": 17})], ["x", "c"], ["y"])
    t["c"] = Tensor("c", (2, 3), np.dtype(np.bool_))
    bufs, hints, roots, _ = graph_buffers(g)
    mp = plan(bufs, hints)
    proj = generate(g, tensor_offsets(g, mp.offsets, roots), mp.arena_bytes, tmp_path / "c")
    x, c = np.full((2, 3), 9, np.float32), np.eye(2, 3, dtype=bool)
    y = runner.run(proj, g, {"x": x, "c": c}, tmp_path)["y"]
    np.testing.assert_array_equal(y, np.where(c, w.reshape(2, 3), x))
