"""Issue 10's quality bar on the shipped integer model (the calibration `generate` uses), teacher-
forced on ≥ 2,048 held-out positions of text the float model sampled (seeds disjoint from calibration)."""
import json

import pytest

from tinydeploy.models import bundled_path, default_checkpoint_path
from tinydeploy.models.llama import FloatLlama, load_default
from tinydeploy.models.llama.generate import _calibration
from tinydeploy.models.llama.intmodel import IntLlama
from tinydeploy.models.llama.quant_study import CAL_SEEDS, EVAL_SEEDS, float_logits, sample_sequences, teacher_forced

REF = json.loads(bundled_path("reference_tokens.json").read_text())["tokens"]


@pytest.fixture(scope="module")
def model():
    cfg, w, _ = load_default()
    return cfg, w, _calibration(cfg, w, default_checkpoint_path())


def test_teacher_forced_quality_meets_the_bar(model):
    cfg, w, cal = model
    assert not set(CAL_SEEDS) & set(EVAL_SEEDS)
    seqs = sample_sequences(cfg, w, EVAL_SEEDS)
    m = teacher_forced(IntLlama(cfg, w, cal), float_logits(FloatLlama(cfg, w), seqs), seqs)
    assert m.positions >= 2048
    assert m.agreement >= 0.96, m
    assert m.gap_agreement >= 0.995, m
    assert abs(m.ppl_ratio - 1) <= 0.02, m


def test_greedy_text_from_bos_matches_reference_first_20(model):
    assert IntLlama(*model).generate([], steps=20) == REF[:20]
