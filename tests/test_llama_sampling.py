"""Integer RNG and sampler: the frozen specification the C runtime must match."""

import math

import numpy as np
import pytest

from tinydeploy.errors import TinydeployError
from tinydeploy.models.llama.sampling import (EXP2_Q16, SamplerParams, XorShiftRng, logits_to_q8,
                                              sample, weights_q16)


def test_xorshift_golden_values():
    # Frozen: C must produce exactly these.
    r = XorShiftRng(42)
    assert [r.next_u32() for _ in range(4)] == GOLDEN_SEED42
    r0 = XorShiftRng(0)
    assert r0.state == 0x9E3779B97F4A7C15
    assert all(0 <= XorShiftRng(s).next_u32() < 2**32 for s in (1, 2**64 - 1, 123456789))


def test_exp2_table_and_weights():
    assert EXP2_Q16[0] == 65536 and EXP2_Q16[128] == 46341 and EXP2_Q16[255] == 32857
    k = SamplerParams.from_float(1.0).inv_temp_q16
    assert k == 94548
    w = weights_q16(np.array([0, -256, -512, -(2**30)], np.int32) + 1000, k)
    assert w[0] == 65536 and w[3] == 0
    assert abs(int(w[1]) / 65536 - math.exp(-1)) < 2e-3
    assert abs(int(w[2]) / 65536 - math.exp(-2)) < 2e-3


def test_greedy_first_maximum():
    p = SamplerParams.from_float(0.0)
    r = XorShiftRng(1)
    assert sample(np.array([3, 7, 7, 1], np.int32), p, r) == 1
    assert r.state == 1  # greedy draws nothing


def test_distribution_matches_softmax():
    logits = np.array([1.0, 0.5, -0.3, 2.0, -3.0])
    p = SamplerParams.from_float(1.0, top_p=1.0)
    r = XorShiftRng(3)
    counts = np.bincount([sample(logits_to_q8(logits), p, r) for _ in range(20000)], minlength=5)
    expected = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(counts / 20000, expected, atol=0.012)


def test_top_p_excludes_tail():
    logits = logits_to_q8(np.array([0.0, 3.0, 2.9, -1.0, 2.5]))
    p = SamplerParams.from_float(1.0, top_p=0.5)
    r = XorShiftRng(5)
    seen = {sample(logits, p, r) for _ in range(2000)}
    assert seen == {1, 2}  # 0.5 of the mass is reached after tokens 1 and 2


def test_logits_to_q8_rounds_half_up():
    assert logits_to_q8(np.array([0.5 / 256, -0.5 / 256, 1.0])).tolist() == [1, 0, 256]


GOLDEN_SEED42 = [1456360119, 3359763283, 3393612768, 4054632243]  # checked against a C build


@pytest.mark.parametrize("temperature,top_p,option", [
    (math.nan, 0.9, "--temperature"), (math.inf, 0.9, "--temperature"), (-0.5, 0.9, "--temperature"),
    (1.0, math.nan, "--top-p"), (1.0, math.inf, "--top-p"), (1.0, -0.1, "--top-p"), (1.0, 1.5, "--top-p")])
def test_bad_parameters_are_refused(temperature, top_p, option):
    with pytest.raises(TinydeployError, match=option):
        SamplerParams.from_float(temperature, top_p)


def test_tiny_temperature_saturates_k():
    assert SamplerParams.from_float(5e-324).inv_temp_q16 == 2**31 - 1  # 65536 log2(e) / T is inf
    assert SamplerParams.from_float(1e-300, 0.0) == SamplerParams(False, 2**31 - 1, 0)
