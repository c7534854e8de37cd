"""LayerNormalization / RMSNormalization: float vs ORT; integer QLayerNorm (integer mean/variance,
binary-search rsqrt) bit-exact with golden, within 1 LSB of ORT, mean signed error ~0."""
import numpy as np
import pytest

from ops_testlib import Cases, compiler


def _float_cases():
    b = Cases(seed=40)
    r = b.rng
    for shape, axis, gshape, bias in [((2, 3, 16), -1, (16,), True), ((2, 3, 4, 5), -2, (4, 5), True),
                                      ((4, 64), 1, (64,), False), ((3, 8), -1, (1,), True)]:
        ins = [b.raw_input(shape, np.float32), b.fconst(1 + 0.2 * r.standard_normal(gshape))]
        if bias:
            ins.append(b.fconst(0.3 * r.standard_normal(gshape)))
        b.out(b.op("LayerNormalization", *ins, axis=axis, epsilon=1e-5), label=f"ln{shape}")
    return b


@pytest.mark.parametrize("cc", ["gcc", "clang", "asan"])
def test_float_layernorm(cc):
    _float_cases().check(**compiler(cc), rtol=1e-4, atol=1e-5)


def test_float_rmsnorm_opset23():
    b = Cases(seed=41, opset=23)
    for shape, axis in [((2, 3, 16), -1), ((2, 4, 6), -2)]:
        g = b.fconst(1 + 0.2 * b.rng.standard_normal(shape[axis:]))
        b.out(b.op("RMSNormalization", b.raw_input(shape, np.float32), g, axis=axis, epsilon=1e-5), label=f"rms{shape}")
    b.check(rtol=1e-4, atol=1e-5)


def _rows_with_constant(shape, rng, dtype):
    info = np.iinfo(dtype)
    v = rng.integers(info.min, info.max + 1, shape).astype(dtype)
    v.reshape(-1, shape[-1])[0] = v.reshape(-1)[0]          # one constant row: variance 0
    v.reshape(-1, shape[-1])[1, :] = np.arange(shape[-1]) % 2 + v.reshape(-1)[0] // 2   # tiny variance
    return v


def _quant_cases(dtype=np.int8, opset=17):
    b = Cases(seed=42, opset=opset)
    r = b.rng
    u = 128 if dtype == np.uint8 else 0
    configs = [((4, 8, 32), 0.05, 3, 1e-5, 0.03, 2), ((2, 6, 64), 0.2, -10, 1e-5, 0.02, -5),
               ((3, 16), 0.01, 0, 1e-2, 0.04, 0), ((2, 5, 128), 0.1, 7, 1e-6, 0.05, 10)]
    for shape, sx, zx, eps, sy, zy in configs:
        D = shape[-1]
        x = b.dq(b.raw_input(shape, dtype, values=_rows_with_constant(shape, r, dtype)), sx, zx + u, dtype)
        gq = r.integers(60, 128, D).astype(np.int8)
        sg = np.float32(1.3 / 127)
        gamma = b.weight(gq, sg)
        beta = b.bias(r.integers(-3000, 3000, D), np.float32(sx * sg))
        b.q_out(b.op("LayerNormalization", x, gamma, beta, axis=-1, epsilon=eps), sy, zy + u, dtype, f"ln{shape}")
        if opset >= 23:
            b.q_out(b.op("RMSNormalization", x, gamma, axis=-1, epsilon=eps), sy, zy + u, dtype, f"rms{shape}")
    # float gamma / beta constants (the QOperator form keeps LayerNormalization float between DQ and Q)
    x = b.act((4, 48), 0.08, -20 + u, dtype)
    b.q_out(b.op("LayerNormalization", x, b.fconst(1 + 0.3 * r.standard_normal(48)), b.fconst(0.2 * r.standard_normal(48))),
            0.03, 0 + u, dtype, "ln_float_params")
    return b


@pytest.mark.parametrize("dtype", [np.int8, np.uint8], ids=["s8", "u8"])
def test_quantized_layernorm(dtype):
    c, stats = _quant_cases(dtype).check(max_lsb=1, mean_lsb=0.05)
    assert all(n.op not in ("LayerNormalization", "RMSNormalization") for n in c.graph.nodes)


def test_quantized_rmsnorm_opset23():
    c, stats = _quant_cases(np.int8, opset=23).check(max_lsb=1, mean_lsb=0.05)
    assert sum(n.op == "QLayerNorm" for n in c.graph.nodes) == 9


def test_quantized_norm_sanitizers():
    _quant_cases(np.int8, opset=23).check(cc="clang", extra=["-fsanitize=address,undefined", "-fno-omit-frame-pointer"])


# ---- property: the integer golden against exact (float64) normalisation, no ORT needed -----------
from hypothesis import given, settings, strategies as st  # noqa: E402

from tinydeploy.ir import Node  # noqa: E402
from tinydeploy.ops.norm import norm_params, qlayernorm  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(D=st.integers(1, 600), sx=st.floats(0.002, 1.0), zx=st.integers(-128, 127), sy=st.floats(0.005, 0.2),
       zy=st.integers(-50, 50), eps=st.sampled_from([1e-6, 1e-5, 1e-3, 0.1]), rms=st.booleans(),
       seed=st.integers(0, 2**31))
def test_qlayernorm_golden_is_correctly_rounded(D, sx, zx, sy, zy, eps, rms, seed):
    """Off by at most 1 LSB from the exactly rounded LayerNorm / RMSNorm, only within 0.02 LSB of a tie."""
    r = np.random.default_rng(seed)
    x = r.integers(-128, 128, (4, D)).astype(np.int8)
    x[0] = x[0, 0]                                     # a constant row
    gamma, beta = 1 + 0.5 * r.standard_normal(D), (None if rms else 0.3 * r.standard_normal(D))
    p = norm_params(D, eps, sx, sy, zy, gamma, beta)
    if p is None:
        return
    node = Node("QLayerNorm", "n", ["x"], ["y"], dict(axis=-1, rms=int(rms), zx=zx, E16=p[0], Mg=p[1], Bq=p[2],
                                                     Sg=p[3], lo=-128, hi=127))
    y = qlayernorm(node, None, [x])[0].astype(np.int64)
    v = (x.astype(np.float64) - zx) * sx
    c = v if rms else v - v.mean(axis=1, keepdims=True)
    n = c / np.sqrt((c * c).mean(axis=1, keepdims=True) + eps)
    exact = (n * gamma + (0 if beta is None else beta)) / sy + zy
    ref = np.clip(np.rint(exact), -128, 127)
    off = y != ref
    assert np.abs(y - ref).max() <= 1
    assert np.all(np.abs(np.abs(exact[off] - np.floor(exact[off])) - 0.5) < 0.02), exact[off]


def test_rmsnorm_dyn_rows():
    """QRMSNormDyn (int16 rows -> int8 + run-time row scale): host C == golden on the first n rows
    (a zero row and full-range rows included); z8 * F is x * gamma / rms(x) within the int8 rounding
    of the row and the 2^-13 error of the integer 1/sqrt."""
    from ops_testlib import IrCases
    from tinydeploy.ops.intmath import scale_from_float
    from tinydeploy.ops.linear import row_scales
    r = np.random.default_rng(44)
    T, D, eps = 6, 64, 40
    x = r.integers(-32768, 32768, (T, D)).astype(np.int16)
    x[1] = 0
    x[2] = r.integers(-3, 4, D)
    G = r.integers(8000, 32767, D).astype(np.int16)  # gamma = G * 2^-14
    b = IrCases("rmsnorm")
    z8, F = b.node("QRMSNormDyn", [b.input("x", x), b.input("n", np.array([5], np.int32)), b.const("G", G)],
                   ((T, D), np.int8), ((T, 2), np.int32), epsn=eps, c=scale_from_float(np.sqrt(D) * 2.0**-14 / 127),
                   qmax=127)
    gold, host = b.run()
    for o in (z8, F):
        np.testing.assert_array_equal(gold[o][:5], host[o][:5])
    m, e = row_scales(gold[F])
    got = gold[z8] * (m * 2.0 ** -e.astype(float))[:, None]
    xf = x.astype(np.float64)
    real = xf * G * 2.0**-14 / np.sqrt(((xf * xf).sum(axis=1, keepdims=True) + eps) / D)
    row = np.abs(real).max(axis=1, keepdims=True)
    assert (np.abs(got - real) <= row * (0.5 / 127 + 2**-12)).all()
    assert not gold[z8][1].any()
