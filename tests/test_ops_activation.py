"""Float activations, Clip/PRelu/IsNaN/IsInf, comparisons and logic vs ONNX Runtime and host C;
integer activations (DequantizeLinear → f → QuantizeLinear) as lookup tables vs ORT."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

import ops_testlib
from helpers import golden_and_host, ort_run
from ops_testlib import Cases

# element types these tests feed and read besides the testlib's own
ops_testlib._ONNX.update({np.dtype(np.bool_): TensorProto.BOOL, np.dtype(np.int16): TensorProto.INT16,
                          np.dtype(np.int64): TensorProto.INT64, np.dtype(np.uint16): TensorProto.UINT16})

# (op, attrs, input range): ranges keep Log/Reciprocal away from their poles
UNARY = [
    ("Relu", {}, None), ("LeakyRelu", {"alpha": 0.1}, None), ("ThresholdedRelu", {"alpha": 0.5}, None),
    ("Sigmoid", {}, None), ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, None), ("HardSwish", {}, None),
    ("Tanh", {}, None), ("Erf", {}, None), ("Exp", {}, None), ("Log", {}, (0.01, 10)), ("Abs", {}, None),
    ("Neg", {}, None), ("Floor", {}, None), ("Ceil", {}, None), ("Round", {}, None),
    ("Reciprocal", {}, (0.1, 10)), ("Softplus", {}, None), ("Softsign", {}, None), ("Elu", {"alpha": 0.7}, None),
    ("Selu", {}, None), ("Celu", {"alpha": 1.3}, None), ("Mish", {}, None), ("Sin", {}, None), ("Cos", {}, None),
    ("Tan", {}, (-1.2, 1.2)), ("Sinh", {}, None), ("Cosh", {}, None), ("Sign", {}, None),
    ("Shrink", {"lambd": 0.3, "bias": 0.1}, None), ("Gelu", {}, None), ("Gelu", {"approximate": "tanh"}, None),
    ("Asin", {}, (-0.99, 0.99)), ("Acos", {}, (-0.99, 0.99)), ("Atan", {}, None), ("Asinh", {}, None),
    ("Acosh", {}, (1.0, 10)), ("Atanh", {}, (-0.9, 0.9)),
]


def _float_cases():
    b = Cases(seed=20, opset=20)
    for op, attrs, rng in UNARY:
        if rng is None:
            v = b.rng.standard_normal((3, 7)).astype(np.float32) * 3
        else:
            v = b.rng.uniform(rng[0], rng[1], (3, 7)).astype(np.float32)
        if op in ("Round", "Floor", "Ceil"):   # exact halves and integers are the interesting cases
            v.reshape(-1)[:10] = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.0, -4.0, 1e9, -0.0]
        b.out(b.op(op, b.raw_input((3, 7), np.float32, values=v), **attrs), label=op)
    b.out(b.op("Sigmoid", b.raw_input((5,), np.float32, values=np.float32([-100, -20, 0, 20, 100]))), label="sig_ext")
    x = b.raw_input((2, 3, 4), np.float32)
    b.out(b.op("PRelu", x, b.fconst(b.rng.uniform(0.05, 0.5, (3, 1)))), label="prelu_bcast")
    b.out(b.op("Clip", x, b.fconst(np.float32(-0.5)), b.fconst(np.float32(0.7))), label="clip")
    b.out(b.op("Clip", x, "", b.fconst(np.float32(0.2))), label="clip_max_only")
    xi = b.raw_input((4, 5), np.int32, low=-1000, high=1000)
    b.out(b.op("Clip", xi, b.c_int(np.int32(-10)), b.c_int(np.int32(300))), np.int32, label="clip_i32")
    return b


def _c_int(self, v):
    return self._const(np.asarray(v), "ci")


Cases.c_int = _c_int


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_float_activations_match_ort_and_golden(cc):
    c, _ = _float_cases().check(cc=cc, rtol=2e-5, atol=2e-6)
    assert {n.op for n in c.graph.nodes} >= {"Sigmoid", "Gelu", "Round", "PRelu", "Clip"}


def test_round_floor_ceil_are_exact_in_c():
    """These need no libm: check special values bit for bit (±0 compare equal)."""
    v = np.float32([0.5, 1.5, 2.5, -0.5, -2.5, 8388607.5, 8388609.0, -8388609.0, 1e30, np.inf, -np.inf,
                    np.nan, 0.49999997, -0.49999997, 1.0000001, -3.7])
    b = Cases(seed=0, opset=17)
    for op in ("Round", "Floor", "Ceil"):
        b.out(b.op(op, b.raw_input(v.shape, np.float32, values=v)), label=op)
    _, gold, host, refs = b.run()
    ref = refs["onnxruntime"]
    for name in b.kinds:
        np.testing.assert_array_equal(host[name], ref[name])
        np.testing.assert_array_equal(gold[name], ref[name])


def test_exp_golden_is_correctly_rounded():
    """Exp's golden rounds exp(x) once to float32, as the C library's expf does: numpy's float32 exp
    is 1 ulp off on some inputs, 0.25 at exp(20) (Deeploy's Kernels/FP32/Exp, 1e-4 absolute)."""
    v = np.linspace(-87, 88, 4099, dtype=np.float32)
    b = Cases(seed=0, opset=17)
    b.out(b.op("Exp", b.raw_input(v.shape, np.float32, values=v)))
    _, gold, host, _ = b.run()
    (name,) = b.kinds
    want = np.exp(v.astype(np.float64)).astype(np.float32)
    assert np.array_equal(gold[name], want), f"{int((gold[name] != want).sum())} values off"
    assert np.array_equal(host[name], want)


def test_isnan_isinf_and_logic():
    v = np.float32([0, np.nan, np.inf, -np.inf, 1.5, -2])
    b = Cases(seed=1, opset=20)
    x = b.raw_input(v.shape, np.float32, values=v)
    b.out(b.op("IsNaN", x), np.bool_, label="isnan")
    b.out(b.op("IsInf", x, detect_negative=0), np.bool_, label="isinf_pos")
    a = b.raw_input((2, 1, 3), np.int16, low=-3, high=3)
    c = b.raw_input((4, 1), np.int16, low=-3, high=3)
    lt = b.op("Less", a, c)
    eq = b.op("Equal", a, c)
    for op in ("And", "Or", "Xor"):
        b.out(b.op(op, lt, eq), np.bool_, label=op)
    b.out(b.op("Not", lt), np.bool_, label="not")
    b.out(b.op("GreaterOrEqual", b.raw_input((3, 4), np.float32), b.raw_input((4,), np.float32)), np.bool_, label="ge")
    b.out(b.op("BitwiseXor", a, c), np.int16, label="bxor")
    b.check()


_ONNX_BOOL = TensorProto.BOOL


def test_bool_outputs_are_bool():
    g = helper.make_graph([helper.make_node("Greater", ["a", "b"], ["y"])], "g",
                          [helper.make_tensor_value_info("a", TensorProto.FLOAT, [4]),
                           helper.make_tensor_value_info("b", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", _ONNX_BOOL, [4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    feeds = {"a": np.float32([1, 2, 3, 4]), "b": np.float32([2.5])}
    _, gold, host = golden_and_host(m, feeds)
    assert host["y"].dtype == np.bool_ and list(host["y"]) == [False, False, True, True]
    np.testing.assert_array_equal(gold["y"], ort_run(m, feeds)["y"])


QACT = [("Sigmoid", {}), ("Tanh", {}), ("Gelu", {}), ("HardSwish", {}), ("LeakyRelu", {"alpha": 0.2}),
        ("Elu", {}), ("Softplus", {}), ("Exp", {}), ("Erf", {}), ("Mish", {}), ("HardSigmoid", {})]


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_quantized_activations_become_lookup_tables(dtype):
    b = Cases(seed=3, opset=20)
    zp = 128 if dtype == np.uint8 else 0
    for op, attrs in QACT:
        x = b.act((4, 64), scale=0.04, zp=zp + 5, dtype=dtype)
        b.q_out(b.op(op, x, **attrs), scale=0.02, zp=zp - 20, dtype=dtype, label=op)
    c, stats = b.check(max_lsb=1)
    ops = {n.op for n in c.graph.nodes}
    assert "QLut" in ops and not ops & {"DequantizeLinear", "QuantizeLinear", "Sigmoid", "Gelu"}
    assert max(s[0] for s in stats.values()) <= 1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-50, 50, width=32), min_size=1, max_size=12),
       st.sampled_from([op for op, _, r in UNARY if r is None]))
def test_unary_golden_matches_ort(values, op):
    """Golden model only (fast): any float input, any op of the table, against ORT."""
    from helpers import compile_model
    from tinydeploy.golden import run_graph
    attrs = dict(next(a for o, a, _ in UNARY if o == op))
    v = np.float32(values)
    g = helper.make_graph([helper.make_node(op, ["x"], ["y"], **attrs)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [len(v)])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [len(v)])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)])
    gold = run_graph(compile_model(m).graph, {"x": v})["y"]
    np.testing.assert_allclose(gold, ort_run(m, {"x": v})["y"], rtol=2e-5, atol=2e-6)


def test_float_kernels_on_rv32_bare_metal(tmp_path):
    """The freestanding build (runtime/baremetal/libm.c instead of <math.h>) against ORT and host."""
    import subprocess
    import sys

    import onnx
    b = Cases(seed=21, opset=20)
    x = b.raw_input((2, 3, 4), np.float32)
    for op in ("Sigmoid", "Gelu", "Sin", "Cos", "Tanh", "Erf", "Softplus", "Round", "Mish", "Elu", "HardSwish",
               "Atan", "Asinh"):
        b.out(b.op(op, x), label=op)
    b.out(b.op("Log", b.op("Abs", x)), label="log")
    b.out(b.op("Pad", b.op("Transpose", x, perm=[2, 0, 1]), b._const(np.int64([0, 1, 1, 0, 1, 2]), "p"),
               mode="reflect"), label="pad")
    b.out(b.op("Where", b.op("Less", x, b.fconst(np.float32(0))), x, b.fconst(np.float32(7))), label="where")
    m = b.model()
    onnx.save(m, tmp_path / "m.onnx")
    np.savez(tmp_path / "in.npz", **b.feeds)
    outs = {}
    for target in ("rv32", "host"):
        r = subprocess.run([sys.executable, "-m", "tinydeploy.cli", "run", str(tmp_path / "m.onnx"), "--target", target,
                            "--inputs", str(tmp_path / "in.npz"), "--outputs", str(tmp_path / f"{target}.npz")],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        outs[target] = np.load(tmp_path / f"{target}.npz")
    ref = ort_run(m, b.feeds)
    for name in ref:
        np.testing.assert_allclose(outs["rv32"][name], ref[name], rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(outs["rv32"][name], outs["host"][name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_portable_inverse_trig_error_bound(tmp_path):
    """The freestanding asin/acos/atan/asinh/acosh/atanh (td_math.h, built from atan, sqrtf, logf)
    on a dense grid, against float64 numpy: stated bound 2e-6 relative + 1e-7 absolute."""
    import subprocess
    from pathlib import Path
    kernels = Path(__file__).resolve().parent.parent / "src" / "tinydeploy" / "runtime" / "kernels"
    grids = {"atan": np.linspace(-50, 50, 20001), "asin": np.linspace(-1, 1, 20001), "acos": np.linspace(-1, 1, 20001),
             "asinh": np.linspace(-50, 50, 20001), "acosh": np.linspace(1, 60, 20001),
             "atanh": np.linspace(-0.999, 0.999, 20001)}
    src = tmp_path / "t.c"
    src.write_text('#include <stdio.h>\n#include <string.h>\n#include "td_math.h"\nint main(void){float v; char f[8];\n'
                   'while (scanf("%7s %f", f, &v) == 2) {float r = 0;\n'
                   + "".join(f'if (!strcmp(f, "{k}")) r = TD_{k.upper()}F(v);\n' for k in grids)
                   + 'printf("%.9g\\n", r);} return 0;}\n')
    exe = tmp_path / "t"
    subprocess.run(["gcc", "-std=c99", "-O2", "-DTD_PORTABLE_MATH", f"-I{kernels}", str(src), "-o", str(exe), "-lm"],
                   check=True)
    lines, ref = [], []
    for k, g in grids.items():
        g = g.astype(np.float32)
        lines += [f"{k:<5} {v!r}" for v in g.tolist()]
        ref.append(getattr(np, "arc" + k[1:] if k.startswith("a") else k)(g.astype(np.float64)))
    out = subprocess.run([str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
    got = np.array(out.stdout.split(), np.float64)
    want = np.concatenate(ref)
    err = np.abs(got - want) / (np.abs(want) * 2e-6 + 1e-7)
    assert err.max() <= 1.0, f"worst {err.max():.2f} of the bound"


def test_clip_opset6_attributes():
    b = Cases(seed=22, opset=6)
    x = b.raw_input((3, 4), np.float32)
    b.out(b.op("Clip", x, min=-0.3, max=0.4), label="clip6")
    b.out(b.op("Clip", x, max=0.1), label="clip6_max")
    c, _ = b.check(rtol=0, atol=0)
    assert [n.op for n in c.graph.nodes] == ["Clip", "Clip"]
