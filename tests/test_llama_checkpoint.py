"""llama2.c checkpoint reader/writers against the bundled Q8_0 file and synthetic models."""

import dataclasses

import numpy as np
import pytest

from tinydeploy.errors import TinydeployError
from tinydeploy.models import default_checkpoint_path
from tinydeploy.models.llama.checkpoint import LlamaWeights, read_checkpoint, write_v0, write_v1, write_v2

from helpers import random_llama as random_model

FIELDS = ["token_embedding", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3",
          "rms_final", "wcls"]


@pytest.fixture(scope="module")
def bundled():
    return read_checkpoint(default_checkpoint_path())


def test_bundled_config_and_shapes(bundled):
    cfg, w = bundled
    assert (cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.vocab_size,
            cfg.seq_len, cfg.shared_classifier) == (64, 172, 5, 8, 4, 512, 512, True)
    assert (cfg.head_size, cfg.kv_dim, cfg.kv_mul) == (8, 32, 2)
    assert w.version == 2 and w.group_size == 32
    assert w.wk.shape == (5, 32, 64) and w.w2.shape == (5, 64, 172) and w.w1.shape == (5, 172, 64)
    assert w.wcls is w.token_embedding
    q = w.quantized
    assert q["w2"].q.shape == (5, 64, 172) and q["w2"].scales.shape == (5, 64 * 172 // 32)
    assert q["token_embedding"].q.dtype == np.int8 and q["token_embedding"].scales.shape == (1024,)
    assert all(np.all(np.abs(t.q.astype(int)).max() == 127) for t in q.values())


def test_w2_groups_straddle_rows(bundled):
    _, w = bundled
    t = w.quantized["w2"]
    flat = t.q[3].reshape(-1).astype(np.float32) * np.repeat(t.scales[3], 32)
    np.testing.assert_array_equal(w.w2[3], flat.reshape(64, 172))
    # row 0 columns 160..171 and row 1 columns 0..19 form group 5 together
    s = t.element_scales()[3]
    assert np.all(s[0, 160:] == t.scales[3, 5]) and np.all(s[1, :20] == t.scales[3, 5])
    assert s[1, 20] == t.scales[3, 6]


@pytest.mark.parametrize("writer", [write_v0, write_v1])
@pytest.mark.parametrize("shared", [True, False])
def test_float_round_trip(tmp_path, writer, shared):
    cfg, w = random_model(shared)
    path = tmp_path / "m.bin"
    writer(path, cfg, w)
    cfg2, w2 = read_checkpoint(path)
    assert cfg2 == cfg
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(w2, f), getattr(w, f), err_msg=f)
    assert (w2.wcls is w2.token_embedding) == shared


@pytest.mark.parametrize("writer", [write_v0, write_v1])
def test_bundled_float_round_trip(tmp_path, bundled, writer):
    cfg, w = bundled
    writer(tmp_path / "m.bin", cfg, w)
    cfg2, w2 = read_checkpoint(tmp_path / "m.bin")
    assert cfg2 == cfg
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(w2, f), getattr(w, f), err_msg=f)


def test_v2_requantization_is_lossless(tmp_path, bundled):
    # Q8_0 of already-Q8_0 values gives back the same int8 values.
    cfg, w = bundled
    write_v2(tmp_path / "q.bin", cfg, w, group_size=32)
    assert (tmp_path / "q.bin").read_bytes().__len__() == default_checkpoint_path().stat().st_size
    _, w2 = read_checkpoint(tmp_path / "q.bin")
    for k, t in w.quantized.items():
        np.testing.assert_array_equal(w2.quantized[k].q, t.q)
        np.testing.assert_allclose(w2.quantized[k].scales, t.scales, rtol=1e-6)


def test_v2_unshared_classifier(tmp_path):
    cfg, w = random_model(shared=False)
    write_v2(tmp_path / "q.bin", cfg, w, group_size=8)
    cfg2, w2 = read_checkpoint(tmp_path / "q.bin")
    assert cfg2 == cfg and "wcls" in w2.quantized
    np.testing.assert_allclose(w2.wcls, w.wcls, atol=np.abs(w.wcls).max() / 127)


def _error(data_or_path, match):
    with pytest.raises(TinydeployError, match=match) as e:
        read_checkpoint(data_or_path)
    assert "\n" not in str(e.value)


def test_errors(tmp_path):
    data = default_checkpoint_path().read_bytes()
    _error(data[:-1], "truncated")
    _error(data[:300], "truncated")
    _error(data[:100], "truncated")
    _error(data[:10], "truncated")
    _error(data + b"\0" * 4, "inconsistent with the header")
    _error(b"\xff" * 400, "bad magic")
    _error(data[:4] + np.int32(3).tobytes() + data[8:], "unsupported version 3")
    bad_dims = bytearray(data)
    bad_dims[12:16] = np.int32(0).tobytes()  # hidden_dim 0
    _error(bytes(bad_dims), "invalid header")
    bad_gs = bytearray(data)
    bad_gs[37:41] = np.int32(24).tobytes()
    _error(bytes(bad_gs), "group")
    _error(tmp_path / "missing.bin", "cannot read")


def test_v0_errors(tmp_path):
    cfg, w = random_model(shared=False)
    write_v0(tmp_path / "m.bin", cfg, w)
    data = (tmp_path / "m.bin").read_bytes()
    _error(data[:-8], "truncated")
    _error(data + b"\0" * 8, "inconsistent with the header")
    # without the classifier the file is too long for a shared-classifier header
    _error(data[:20] + np.int32(cfg.vocab_size).tobytes() + data[24:], "inconsistent")


def test_config_is_frozen(bundled):
    with pytest.raises(dataclasses.FrozenInstanceError):
        bundled[0].dim = 1


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("field,value", [("wq", np.nan), ("rms_att", np.inf), ("token_embedding", -np.inf)])
def test_non_finite_weights_are_refused(tmp_path, field, value):
    cfg, w = random_model(shared=True)
    getattr(w, field)[0, 1] = value
    write_v1(tmp_path / "m.bin", cfg, w)
    _error(tmp_path / "m.bin", f"NaN, infinite or too large values in {field}")


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("scale", [np.nan, np.inf, 1e37])  # 1e37: its weights (up to 127 * scale) overflow float32
def test_bad_q80_scales_are_refused(tmp_path, scale):
    cfg, w = random_model(shared=True)
    write_v2(tmp_path / "m.bin", cfg, w, group_size=8)
    data = bytearray((tmp_path / "m.bin").read_bytes())
    first_scale = 256 + 4 * (2 * cfg.n_layers + 1) * cfg.dim + cfg.vocab_size * cfg.dim  # after the int8 embedding
    data[first_scale:first_scale + 4] = np.float32(scale).tobytes()
    _error(bytes(data), "values in token_embedding scales")
