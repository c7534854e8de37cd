"""float32 reference forward: llama2.c's greedy output and prefill == step-by-step decoding."""

import json

import numpy as np
import pytest

from tinydeploy.errors import TinydeployError
from tinydeploy.models import bundled_path
from tinydeploy.models.llama import BOS_ID, FloatLlama, load_default

REF = json.loads(bundled_path("reference_tokens.json").read_text())["tokens"]


@pytest.fixture(scope="module")
def model():
    cfg, w, _ = load_default()
    return cfg, w


def test_greedy_reproduces_reference_256(model):
    assert FloatLlama(*model).generate([], steps=256, temperature=0.0) == REF


def test_prefill_equals_step_by_step(model):
    seq = [BOS_ID] + REF[:47]
    steps = FloatLlama(*model)
    one = np.stack([steps.forward(t, p) for p, t in enumerate(seq)])
    full = FloatLlama(*model).forward_many(seq, 0)
    np.testing.assert_allclose(full, one, atol=1e-5, rtol=0)
    chunked = FloatLlama(*model)
    parts = [chunked.forward_many(seq[a:b], a) for a, b in [(0, 5), (5, 6), (6, 30), (30, 48)]]
    np.testing.assert_allclose(np.concatenate(parts), one, atol=1e-5, rtol=0)


def test_prompt_continues_reference(model):
    out = FloatLlama(*model).generate([BOS_ID] + REF[:10], steps=20)
    assert out == REF[10:30]


def test_sampling_is_seeded(model):
    a = FloatLlama(*model).generate([], steps=30, temperature=1.0, top_p=0.9, seed=7)
    b = FloatLlama(*model).generate([], steps=30, temperature=1.0, top_p=0.9, seed=7)
    c = FloatLlama(*model).generate([], steps=30, temperature=1.0, top_p=0.9, seed=8)
    assert a == b and a != c and 0 < len(a) <= 30


def test_short_context_and_bad_positions(model):
    m = FloatLlama(*model, seq_len=8)
    assert len(m.generate([], steps=100)) == 8  # positions 0..7 hold BOS + 7 fed-back tokens
    with pytest.raises(TinydeployError, match="outside"):
        m.forward_many([1, 2], 7)
    with pytest.raises(TinydeployError, match="token id"):
        m.forward(512, 0)
