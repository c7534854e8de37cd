"""MatMul / Gemm / MatMulInteger: float and integer kernels, golden == host C, vs ONNX Runtime."""
import numpy as np
import pytest

from ops_testlib import Cases, compiler


def _w(rng, shape):
    return rng.integers(-127, 128, shape).astype(np.int8)


def _float_cases():
    b = Cases(seed=1)
    r = b.rng
    for ashape, bshape in [((3, 5), (5, 4)), ((2, 3, 5), (5, 4)), ((2, 1, 3, 5), (4, 5, 6)), ((5,), (5, 4)),
                           ((3, 5), (5,)), ((2, 3, 4), (2, 4, 3)), ((1, 3, 4), (2, 4, 2))]:
        b.out(b.op("MatMul", b.raw_input(ashape, np.float32), b.fconst(r.standard_normal(bshape))))
    # activation x activation, batched
    b.out(b.op("MatMul", b.raw_input((2, 3, 4), np.float32), b.raw_input((2, 4, 5), np.float32)))
    for ta, tb, alpha, beta, cshape in [(0, 0, 1.0, 1.0, (4,)), (1, 0, 0.5, 2.0, (3, 4)), (0, 1, 1.0, 1.0, (3, 1)),
                                        (1, 1, 2.0, -1.0, ()), (0, 1, 1.0, 1.0, None)]:
        a = b.raw_input((5, 3) if ta else (3, 5), np.float32)
        w = b.fconst(r.standard_normal((4, 5) if tb else (5, 4)))
        ins = [a, w] + ([b.fconst(r.standard_normal(cshape))] if cshape is not None else [])
        b.out(b.op("Gemm", *ins, transA=ta, transB=tb, alpha=alpha, beta=beta))
    # fused Relu
    b.out(b.op("Relu", b.op("MatMul", b.raw_input((3, 6), np.float32), b.fconst(r.standard_normal((6, 2))))))
    return b


@pytest.mark.parametrize("cc", ["gcc", "clang", "asan"])
def test_float_matmul_gemm(cc):
    _float_cases().check(**compiler(cc))


def _quant_cases(act_dtype=np.int8):
    b = Cases(seed=2)
    r = b.rng
    zp = (lambda v: v) if act_dtype == np.int8 else (lambda v: v + 128)
    act = lambda shape, s, z: b.act(shape, s, zp(z), act_dtype)  # noqa: E731
    outq = lambda x, s, z, label: b.q_out(x, s, zp(z), act_dtype, label)  # noqa: E731
    # act x const weight, per-tensor and per-channel (axis 1 = N), batched A
    outq(b.op("MatMul", act((4, 16), 0.05, 3), b.weight(_w(r, (16, 8)), 0.02)), 0.3, -5, "mm_pt")
    outq(b.op("MatMul", act((2, 3, 16), 0.05, -7), b.weight(_w(r, (16, 8)), r.uniform(0.005, 0.03, 8).astype(np.float32), np.zeros(8, np.int8), axis=1)), 0.25, 2, "mm_pc")
    outq(b.op("Relu", b.op("MatMul", act((5, 12), 0.04, 0), b.weight(_w(r, (12, 6)), 0.03))), 0.2, -128, "mm_relu")
    # activation x activation (attention scores / context), 4-D batched and broadcast
    outq(b.op("MatMul", act((1, 2, 4, 8), 0.05, 10), act((1, 2, 8, 4), 0.06, -3)), 0.4, 0, "attn")
    outq(b.op("MatMul", act((2, 3, 5), 0.03, 1), act((5, 4), 0.07, -20)), 0.2, 7, "act_bcast")
    # Gemm: transB with int32 bias at scale sa*sw, per-channel; transA; alpha/beta with a float C
    sw = r.uniform(0.01, 0.02, 10).astype(np.float32)
    sa = np.float32(0.05)
    outq(b.op("Gemm", act((3, 16), float(sa), 4), b.weight(_w(r, (10, 16)), sw, np.zeros(10, np.int8), axis=0),
              b.bias(r.integers(-2000, 2000, 10), (sa * sw).astype(np.float32), axis=0), transB=1), 0.3, -3, "gemm_pc")
    outq(b.op("Gemm", act((16, 3), 0.05, -2), b.weight(_w(r, (16, 10)), 0.02), b.fconst(r.standard_normal(10)),
              transA=1, alpha=0.7, beta=1.5), 0.2, 1, "gemm_ta_alpha")
    outq(b.op("Gemm", act((2, 8), 0.1, 0), b.weight(_w(r, (8, 5)), 0.01, 0), b.fconst(r.standard_normal((1, 5)))), 0.05, 0, "gemm_c1n")
    return b


@pytest.mark.parametrize("act", [np.int8, np.uint8], ids=["s8", "u8"])
def test_quantized_matmul_gemm(act):
    c, stats = _quant_cases(act).check(max_lsb=1)
    n_int = sum(n.op == "QMatMul" for n in c.graph.nodes)
    assert n_int == 8, [n.op for n in c.graph.nodes]
    assert not any(n.op in ("MatMul", "Gemm") for n in c.graph.nodes)


def test_quantized_matmul_sanitizers_clang():
    _quant_cases().check(cc="clang", extra=["-fsanitize=address,undefined", "-fno-omit-frame-pointer"])


def test_matmul_integer():
    b = Cases(seed=3)
    r = b.rng
    for ta, tb in [(np.uint8, np.int8), (np.int8, np.int8), (np.uint8, np.uint8)]:
        a = b.raw_input((2, 3, 7), ta)
        w = b._const(r.integers(np.iinfo(tb).min, np.iinfo(tb).max + 1, (7, 5)).astype(tb), "w")
        za, zb = b._const(np.array(ta(11) if ta == np.uint8 else ta(-3))), b._const(np.array(tb(5)))
        b.out(b.op("MatMulInteger", a, w, za, zb), np.int32)
    b.out(b.op("MatMulInteger", b.raw_input((4, 6), np.int8), b.raw_input((6, 3), np.int8)), np.int32)
    b.check()


def test_integer_matmul_wraps_like_onnx():
    """ONNX MatMul of int32 / int64 / uint32 / uint64 (Deeploy's Kernels/Integer/MatMul/Regular is
    int32): host C == golden == onnxruntime, sums wrapping modulo 2^bits."""
    b = Cases(seed=6)
    b.out(b.op("MatMul", b.raw_input((1, 2, 5, 6), np.int32, -128, 127), b.raw_input((1, 2, 6, 3), np.int32, -128, 127)),
          np.int32)
    big = 2**31 - 1   # products and sums past int32: ONNX wraps
    b.out(b.op("MatMul", b.raw_input((3, 4), np.int32, values=np.full((3, 4), big)), b.raw_input((4, 2), np.int32, -9, 9)),
          np.int32)
    b.out(b.op("MatMul", b.raw_input((2, 3, 4), np.int64, -2**40, 2**40), b.raw_input((4, 5), np.int64, -2**30, 2**30)),
          np.int64)
    b.out(b.op("MatMul", b.raw_input((4,), np.uint32), b.raw_input((4, 3), np.uint32)), np.uint32)
    b.out(b.op("MatMul", b.raw_input((2, 4), np.uint64, 0, 2**40), b.raw_input((4,), np.uint64, 0, 2**40)), np.uint64)
    c, _ = b.check()
    assert [n.op for n in c.graph.nodes] == ["MatMul"] * 5


def test_per_channel_zero_points_fall_back_to_float():
    """A weight with differing per-channel zero points is not an int8 QMatMul: float fallback, still right."""
    b = Cases(seed=4)
    r = b.rng
    b.q_out(b.op("MatMul", b.act((3, 8), 0.05, 0), b.weight(_w(r, (8, 4)) // 2, np.full(4, 0.02, np.float32),
                                                            np.array([0, 1, 2, 3], np.int8), axis=1)), 0.1, 0)
    c, _ = b.check()
    assert not any(n.op == "QMatMul" for n in c.graph.nodes)


def test_conv_integer():
    b = Cases(seed=5)
    r = b.rng
    for tx, tw, pads, group in [(np.uint8, np.int8, [1, 1, 1, 1], 1), (np.int8, np.int8, [0, 1, 2, 0], 2),
                                (np.uint8, np.uint8, [0, 0, 0, 0], 1)]:
        x = b.raw_input((1, 4, 6, 5), tx)
        w = b._const(r.integers(np.iinfo(tw).min, np.iinfo(tw).max + 1, (6, 4 // group, 3, 3)).astype(tw), "w")
        zx, zw = b._const(np.array(tx(9) if tx == np.uint8 else tx(-4))), b._const(np.array(tw(3)))
        b.out(b.op("ConvInteger", x, w, zx, zw, pads=pads, group=group, strides=[1, 2]), np.int32)
    b.out(b.op("ConvInteger", b.raw_input((1, 3, 7), np.int8), b._const(r.integers(-9, 9, (2, 3, 3)).astype(np.int8), "w")), np.int32)
    b.check()
