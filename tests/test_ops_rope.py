"""QRoPE: host C == golden bit for bit at a run-time position (first n rows), in place or not, and
within the Q14 tables' rounding of the exact rotation; saturates at the int16 range."""
import numpy as np

from ops_testlib import IrCases
from tinydeploy.ops.rope import tables


def test_rope_positions_and_rows():
    rng = np.random.default_rng(3)
    hs, S, T = 8, 40, 5
    cos, sin = tables(hs, S)
    b = IrCases("rope")
    v = rng.integers(-32768, 32768, (T, 3 * hs)).astype(np.int16)
    v[0, :2] = [32767, 32767]  # rotates past the int16 range at a 45 degree angle
    ins = [b.input("v", v), b.input("pos", np.array([17], np.int32)), b.input("n", np.array([4], np.int32)),
           b.const("cos", cos.astype(np.int16)), b.const("sin", sin.astype(np.int16))]
    y = b.node("QRoPE", ins, ((T, 3 * hs), np.int16), head_size=hs)
    gold, host = b.run()
    np.testing.assert_array_equal(gold[y][:4], host[y][:4])
    ang = (17 + np.arange(T))[:, None] * (1.0 / 10000 ** (np.arange(0, hs, 2) / hs))[None, :]
    p = v.astype(np.float64).reshape(T, 3, hs // 2, 2)
    c, s = np.cos(ang)[:, None], np.sin(ang)[:, None]
    real = np.stack([p[..., 0] * c - p[..., 1] * s, p[..., 0] * s + p[..., 1] * c], -1).reshape(T, -1)
    real = np.clip(real, -32768, 32767)
    assert np.abs(gold[y] - real).max() <= 0.5 + 2 * 32768 * 2**-15
    assert np.isin(gold[y][0, :2], (-32768, 32767)).any()  # saturated (the bound above: not wrapped)
