"""QAttentionKV: two calls on one layer of a KV-cache state (a prefill of n < T rows, then rows at
the next positions that read the first call's cache rows): host C == golden bit for bit, and within
the int8 cache / Q15 softmax / int8 output rounding of float attention over the same cache."""
import math

import numpy as np
import pytest

from ops_testlib import IrCases
from tinydeploy.ops.attention import kv_store
from tinydeploy.ops.intmath import scale_from_float
from tinydeploy.ops.linear import row_scales
from tinydeploy.ops.softmax import EXP2_Q15

D, S, L = 32, 24, 2  # 4 query heads on 2 KV heads (grouped-query) of HS = 8, or 2 on 1 of 16


def _mantissas(v):
    E = 14 - math.floor(math.log2(v.max()))
    return np.floor(v * 2.0**E + 0.5).astype(np.int64), E


@pytest.mark.parametrize("HS,sharp,extra", [(8, False, None), (8, True, None), (16, False, None),
                                           (8, True, ["-DTD_NO_SIMD"])],
                         ids=["hs8", "hs8-sharp", "hs16", "hs8-sharp-scalar"])
def test_attention_two_calls_over_the_cache(HS, sharp, extra):
    """x86-64 hosts take SSE2 scores (hs % 8 == 0) and values (hs 8, weights < 2^15); sharp:
    position 0's key alone matches every query, so its softmax weight is all of 2^15 (the generic
    values path); TD_NO_SIMD the portable C."""
    KV = 2 * HS
    rng = np.random.default_rng(11)
    b = IrCases("attention")
    kc, vc = b.state("kc", (L, S, KV), np.int8), b.state("vc", (L, S, KV), np.int8)
    sk = rng.uniform(0.02, 0.2, KV)  # cache scales per channel; k, v, q at 2^-8
    sv = rng.uniform(0.02, 0.2, KV)
    (mk, ek), (mv, ev) = _mantissas(sk), _mantissas(sv)
    kq = np.array([scale_from_float(2.0**-8 / s) for s in sk], np.int32)
    vq = np.array([scale_from_float(2.0**-8 / s) for s in sv], np.int32)
    consts = [kc, vc, b.const("kq", kq), b.const("vq", vq), b.const("mk", mk.astype(np.int16)),
              b.const("mv", mv.astype(np.int16)), b.const("exp2", EXP2_Q15.astype(np.int32))]
    attrs = dict(layer=1, head_size=HS, softmax_bits=16, qmax=127,
                 c_score=scale_from_float(2.0**-8 * 2.0**-ek / 32767 / math.sqrt(HS) * math.log2(math.e) * 256),
                 c=scale_from_float(2.0**-15 * 2.0**-ev / 127))
    calls = []
    for pos, n, T in [(0, 5, 6), (5, 3, 4)]:
        q, k, v = (rng.integers(-3000, 3000, (T, w)).astype(np.int16) for w in (D, KV, KV))
        if sharp:
            q[:], k[:] = 30000, -3000
            k[0] = 3000 if pos == 0 else -3000
        ins = [b.input(f"q{pos}", q), b.input(f"k{pos}", k), b.input(f"v{pos}", v),
               b.input(f"pos{pos}", np.array([pos], np.int32)), b.input(f"n{pos}", np.array([n], np.int32))]
        outs = b.node("QAttentionKV", ins + consts, ((T, D), np.int8), ((T, 2), np.int32), **attrs)
        calls.append((outs, q[:n], k[:n], v[:n], pos, n))
    gold, host = b.run(extra=extra)
    cache_k, cache_v = np.zeros((S, KV)), np.zeros((S, KV))
    for (a8, F), q, k, v, pos, n in calls:
        for o in (a8, F):
            np.testing.assert_array_equal(gold[o][:n], host[o][:n], err_msg=o)
        k8, v8 = kv_store(k, v, row_scales(kq), row_scales(vq))
        cache_k[pos:pos + n], cache_v[pos:pos + n] = k8 * sk, v8 * sv
        m, e = row_scales(gold[F][:n])
        got = gold[a8][:n] * (m * 2.0 ** -e.astype(float))[:, None]
        for t in range(n):
            end = pos + t + 1
            for h in range(D // HS):
                kh = slice((h // (D // KV)) * HS, (h // (D // KV) + 1) * HS)
                s = cache_k[:end, kh] @ (q[t, h * HS:(h + 1) * HS] * 2.0**-8) / math.sqrt(HS)
                p = np.exp(s - s.max())
                real = (p / p.sum()) @ cache_v[:end, kh]
                row = np.abs(got[t]).max()
                assert np.abs(got[t, h * HS:(h + 1) * HS] - real).max() <= row * (0.5 / 127 + 0.01)
