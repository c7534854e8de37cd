"""Binary elementwise ops: float kernels with broadcasting, integer QAdd/QSub/QMul/QMax/QMin vs ORT."""
import numpy as np
import pytest

from ops_testlib import Cases, compiler

SHAPES = [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)), ((2, 1, 4), (3, 1)), ((1,), (2, 3)),
          ((2, 1, 2, 1, 2, 3), (1, 3, 1, 2, 1, 3)), ((3, 1, 5), (1, 4, 1))]


def _float_cases():
    b = Cases(seed=10)
    r = b.rng
    for op in ("Add", "Sub", "Mul", "Div", "Max", "Min"):
        for sa, sb in SHAPES[:4] + SHAPES[5:]:
            b.out(b.op(op, b.raw_input(sa, np.float32), b.raw_input(sb, np.float32)), label=op)
    sa, sb = SHAPES[4]
    b.out(b.op("Add", b.raw_input(sa, np.float32), b.fconst(r.standard_normal(sb))), label="rank6")
    b.out(b.op("Pow", b.fconst(r.uniform(0.5, 2, (3, 4))), b.raw_input((2, 3, 4), np.float32)), label="pow")
    b.out(b.op("Pow", b.raw_input((2, 3), np.float32), b.fconst(np.float32(2.0))), label="pow2")
    b.out(b.op("Mod", b.raw_input((2, 5), np.float32), b.fconst(r.uniform(0.5, 2, 5)), fmod=1), label="fmod")
    b.out(b.op("Mod", b.raw_input((2, 5), np.int32, low=-50, high=50), b.raw_input((5,), np.int32, low=1, high=9)), np.int32, label="mod")
    b.out(b.op("Sum", b.raw_input((2, 3), np.float32), b.raw_input((3,), np.float32), b.raw_input((2, 1), np.float32)), label="sum3")
    b.out(b.op("Mean", b.raw_input((2, 3), np.float32), b.raw_input((2, 3), np.float32), b.raw_input((3,), np.float32)), label="mean")
    b.out(b.op("Max", b.raw_input((4,), np.float32)), label="max1")
    x = b.raw_input((3, 4), np.float32)
    b.out(b.op("Sqrt", b.op("Mul", x, x)), label="sqrt")
    b.out(b.op("Add", b.raw_input((2, 3), np.int32, low=-1000, high=1000), b.raw_input((3,), np.int32, low=-9, high=9)), np.int32, label="int32")
    return b


@pytest.mark.parametrize("cc", ["gcc", "clang", "asan"])
def test_float_binary(cc):
    _float_cases().check(**compiler(cc), rtol=2e-6, atol=1e-6)


def _quant_cases(dtype=np.int8):
    b = Cases(seed=11)
    r = b.rng
    u = 128 if dtype == np.uint8 else 0
    act = lambda shape, s, z: b.act(shape, s, z + u, dtype)  # noqa: E731
    out = lambda x, s, z, label: b.q_out(x, s, z + u, dtype, label)  # noqa: E731
    scales = [(0.05, 0.05, 0.08), (0.01, 0.5, 0.4), (0.3, 0.02, 0.07), (0.02, 0.03, 0.011)]
    for op in ("Add", "Sub", "Mul", "Max", "Min"):
        for k, (sa, sb, sy) in enumerate(scales):
            sa2, sb2 = SHAPES[k % 4] if k else ((4, 8, 16), (4, 8, 16))
            if op == "Mul":
                sy = sa * sb * 40
            zs = r.integers(-20, 20, 3)
            out(b.op(op, act(sa2, sa, zs[0]), act(sb2, sb, zs[1])), sy, zs[2], f"{op}{k}")
    # constant operands (the QDQ form of a bias add and of a scalar Mul) and rank 6
    out(b.op("Add", act((4, 8, 32), 0.04, 3), b.weight(r.integers(-128, 128, 32).astype(np.int8), 0.002, 5)), 0.05, -1, "Add_const")
    out(b.op("Mul", act((4, 8, 32), 0.04, 3), b.weight(np.int8(127), 0.002, 0)), 0.003, 0, "Mul_scalar")
    out(b.op("Add", act(SHAPES[4][0], 0.05, 0), act(SHAPES[4][1], 0.07, 2)), 0.1, 0, "Add_rank6")
    out(b.op("Relu", b.op("Add", act((8, 16), 0.05, 0), act((8, 16), 0.07, 2))), 0.05, -128, "Add_relu")
    return b


@pytest.mark.parametrize("dtype", [np.int8, np.uint8], ids=["s8", "u8"])
def test_quantized_binary(dtype):
    c, stats = _quant_cases(dtype).check(max_lsb=1)
    ops = [n.op for n in c.graph.nodes]
    assert not any(o in ("Add", "Sub", "Mul", "Max", "Min") for o in ops), ops
    # the TFLite-style rescaling should be exact rounding nearly everywhere
    total = sum(n for _, _, n in stats.values())
    wrong = sum(abs(m) * n for _, m, n in stats.values())
    assert wrong / total < 0.02


def test_quantized_binary_sanitizers():
    _quant_cases().check(cc="clang", extra=["-fsanitize=address,undefined", "-fno-omit-frame-pointer"])


# ---- property: integer goldens against the exactly rounded real result ----------------------------
from hypothesis import given, settings, strategies as st  # noqa: E402

from tinydeploy.ir import Node  # noqa: E402
from tinydeploy.ops.eltwise import lower_binary  # noqa: E402
from tinydeploy.ops.registry import get  # noqa: E402


class _Q:
    def __init__(self, scale, zp):
        self.scale, self.zero_point, self.per_channel = np.array([scale]), np.array([zp]), False


class _In:
    def __init__(self, name, scale, zp):
        self.name, self.q = name, _Q(scale, zp)


class _Match:
    def __init__(self, op, a, b, y):
        self.node, self.ins, self.out, self.out_q, self.act = Node(op, op, ["a", "b"], ["y"]), [a, b], "y", _Q(*y), None
        self.clamp = (None, None)


class _Graph:
    class _T:
        dtype = np.int8
    tensors = {"a": _T(), "b": _T()}


scale = st.floats(0.001, 1.0)


@settings(max_examples=300, deadline=None)
@given(op=st.sampled_from(["Add", "Sub", "Mul", "Max", "Min"]), sa=scale, sb=scale, sy=scale,
       za=st.integers(-128, 127), zb=st.integers(-128, 127), zy=st.integers(-128, 127), seed=st.integers(0, 2**31))
def test_binary_golden_is_correctly_rounded(op, sa, sb, sy, za, zb, zy, seed):
    """QAdd/QSub/QMul/QMax/QMin: at most 1 LSB from the exactly rounded result, and only at a tie
    (within 1e-3 LSB of one: the 2^-20 input rescaling and the 2^-31 multipliers)."""
    if op == "Mul":
        sy = sa * sb * 64
    nodes = lower_binary(_Match(op, _In("a", sa, za), _In("b", sb, zb), (sy, zy)), _Graph(), op)
    if nodes is None:
        return
    r = np.random.default_rng(seed)
    a, b = (r.integers(-128, 128, 512).astype(np.int8) for _ in range(2))
    y = get(nodes[0]).golden(nodes[0], None, [a, b])[0].astype(np.int64)
    ra, rb = sa * (a - np.float64(za)), sb * (b - np.float64(zb))
    real = {"Add": ra + rb, "Sub": ra - rb, "Mul": ra * rb, "Max": np.maximum(ra, rb), "Min": np.minimum(ra, rb)}[op]
    exact = real / sy + zy
    ref = np.clip(np.rint(exact), -128, 127)
    off = y != ref
    assert np.abs(y - ref).max() <= 1
    assert np.all(np.abs(np.abs(exact[off] - np.floor(exact[off])) - 0.5) < 1e-3), exact[off]


def test_add_sat_rows():
    """QAddSat: int16 rows added in place, saturated (not wrapped) at the bit width; first n rows."""
    from ops_testlib import IrCases
    r = np.random.default_rng(12)
    x, y = (r.integers(-32768, 32768, (5, 24)).astype(np.int16) for _ in range(2))
    b = IrCases("add_sat")
    o16 = b.node("QAddSat", [b.input("x", x), b.input("y", y), b.input("n", np.array([4], np.int32))],
                 ((5, 24), np.int16), bits=16)
    o12 = b.node("QAddSat", [b.input("x2", x // 16), b.input("y2", y // 16), ""], ((5, 24), np.int16), bits=12)
    gold, host = b.run()
    np.testing.assert_array_equal(gold[o16][:4], host[o16][:4])
    np.testing.assert_array_equal(gold[o12], host[o12])
    np.testing.assert_array_equal(gold[o16], np.clip(x.astype(int) + y, -32768, 32767))
    np.testing.assert_array_equal(gold[o12], np.clip(x // 16 + y // 16, -2048, 2047))
