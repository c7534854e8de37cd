"""Integer llama design: primitives, prefill == decode bit for bit, and quality on a small sample."""

import json
import math

import numpy as np
import pytest

from tinydeploy.models import bundled_path
from tinydeploy.models.llama import FloatLlama, load_default
from tinydeploy.ops.intmath import (bitlen, inv_sqrt_scale, quantize_vec, rshift_round, scale_from_float,
                                    scale_to_float)
from tinydeploy.ops.rope import rope, tables as rope_tables_q14
from tinydeploy.ops.softmax import EXP2_Q15, exp2_neg_q15
from tinydeploy.ops.swiglu import sigmoid_q15
from tinydeploy.models.llama.intmodel import IntLlama, calibrate
from tinydeploy.models.llama.quant_study import float_logits, sample_sequences, teacher_forced

REF = json.loads(bundled_path("reference_tokens.json").read_text())["tokens"]


def test_rshift_round_is_half_up():
    assert rshift_round(np.array([5, -5, 6, -6, 7, -7]), 1).tolist() == [3, -2, 3, -3, 4, -3]
    assert rshift_round(np.array([3, -3]), np.array([0, -2])).tolist() == [3, -12]


def test_bitlen_and_scales():
    v = np.array([0, 1, 2, 3, 255, 256, 2**40, 2**62 - 1])
    assert bitlen(v).tolist() == [int(x).bit_length() for x in v]
    for f in (1e-9, 0.0123, 1.0, 3.5, 12345.678):
        m, e = scale_from_float(f)
        assert 2**14 <= m < 2**15 and abs(scale_to_float((m, e)) / f - 1) < 2**-14


def test_quantize_vec():
    x = np.array([[1000, -500, 3, 0], [0, 0, 0, 0], [-7, 7, 1, -1]])
    q, M = quantize_vec(x)
    assert M.tolist() == [1000, 0, 7]
    assert q[0].tolist() == [127, -63, 0, 0] and q[1].tolist() == [0] * 4
    assert q[2].tolist() == [-127, 127, 18, -18]  # 127/7 = 18.14
    assert np.abs(quantize_vec(np.array([[2**39, -(2**39) + 1]]), 32767)[0]).max() == 32767


def test_inv_sqrt_accuracy():
    T = np.array([1, 2, 3, 168, 10**6, 2**33 + 12345, 2**40 - 1])
    m, e = inv_sqrt_scale(T)
    approx = m * 2.0 ** -e.astype(float)
    np.testing.assert_allclose(approx, 1 / np.sqrt(T.astype(float)), rtol=2**-13)


def test_tables():
    assert EXP2_Q15[0] == 32768
    e8 = np.arange(0, 16 * 256)
    np.testing.assert_allclose(exp2_neg_q15(e8), 32768 * 2.0 ** (-e8 / 256), atol=1.0)
    assert exp2_neg_q15(np.array([16 * 256]))[0] == 0
    h = np.arange(-(2**15), 2**15, 37)  # scale 2^-11: [-16, 16)
    sig = 32768 / (1 + np.exp(-h / 2048))
    assert np.abs(sigmoid_q15(h, 11) - sig).max() <= 2
    cos, sin = rope_tables_q14(8, 512)
    v = np.array([[1000, 0, 0, 1000, 5, 5, 300, -300]] * 2)
    r = rope(v, cos[[0, 100]], sin[[0, 100]], 8)
    assert r[0].tolist() == v[0].tolist()
    ang = 100 * 1.0
    assert abs(r[1, 0] - 1000 * math.cos(ang)) <= 1 and abs(r[1, 1] - 1000 * math.sin(ang)) <= 1


@pytest.fixture(scope="module")
def setup():
    cfg, w, _ = load_default()
    cal = calibrate(FloatLlama(cfg, w), sample_sequences(cfg, w, (100, 101), steps=160))
    return cfg, w, cal


def test_prefill_equals_decode_bit_for_bit(setup):
    seq = [1] + REF[:40]
    full = IntLlama(*setup).forward_many(seq, 0)
    m = IntLlama(*setup)
    steps = np.stack([m.forward(t, p) for p, t in enumerate(seq)])
    m = IntLlama(*setup)
    chunks = np.concatenate([m.forward_many(seq[:17], 0), m.forward_many(seq[17:], 17)])
    assert np.array_equal(full, steps) and np.array_equal(full, chunks)


def test_greedy_first_20_match_reference(setup):
    assert IntLlama(*setup).generate([], steps=20) == REF[:20]


def test_teacher_forced_quality_small_sample(setup):
    cfg, w, _ = setup
    seqs = sample_sequences(cfg, w, (1000, 1001), steps=160)  # disjoint from calibration seeds
    m = teacher_forced(IntLlama(*setup), float_logits(FloatLlama(cfg, w), seqs), seqs)
    assert m.positions >= 250
    assert m.agreement >= 0.94 and m.gap_agreement >= 0.99 and m.ppl_ratio < 1.02
