"""generate and export-llama on tiny synthetic checkpoints: short contexts, large tokenizers, hostile
headers and weights, bad options, a damaged calibration cache. Each ends in a result or one error line."""
import subprocess
import sys
import tracemalloc
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import random_llama, run_host
from tinydeploy.cli import main
from tinydeploy.errors import TinydeployError
from tinydeploy.models.llama import FloatLlama, IntLlama, Tokenizer, calibrate, read_checkpoint
from tinydeploy.models.llama.checkpoint import write_v1, write_v2
from tinydeploy.models.llama.export_onnx import build_model
from tinydeploy.driver import generate
from tinydeploy.models.llama.generate import _calibration, build_program, load_model


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Calibrations go to a per-test folder, never to the user's ~/.cache."""
    monkeypatch.setenv("TINYDEPLOY_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _tiny(path, mutate=None, group_size=32, **config):
    """A Q8_0 checkpoint with the bundled tokenizer's vocabulary (512) and tiny layers."""
    cfg, w = random_llama(**{**dict(dim=16, hidden_dim=32, n_heads=2, n_kv_heads=1, vocab_size=512), **config})
    if mutate:
        mutate(w)
    write_v2(path, cfg, w, group_size=group_size)
    return path


def _one_line_error(args, needle):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exit_code == 1, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.stderr
    assert not caught, [str(w.message) for w in caught]  # no RuntimeWarning on the way
    assert r.stdout == ""


# ---------------------------------------------------------------- issue 14 item 9: small contexts

def test_generate_within_a_small_context(tmp_path):
    """seq_len 8 (calibration used to run 255 positions): calibrate within the context, generate to its end."""
    ck = _tiny(tmp_path / "m.bin", seq_len=8)
    text, rep = generate(ck, "host", prompt="Once upon", steps=8)
    model, tok = load_model(ck)
    ids = tok.encode("Once upon")
    assert rep["token_ids"] == model.generate(ids, 8)
    assert rep["prompt_tokens"] + rep["tokens"] <= 8 + 1  # the last token sampled needs no position
    assert text == tok.decode(ids[1:] + rep["token_ids"]) + "\n"


def test_q80_groups_of_64_run_exactly_and_of_16_are_refused(tmp_path):
    """llama2.c exports Q8_0 in groups of 64 by default; the kernels take 32: split exactly."""
    ck = _tiny(tmp_path / "m.bin", group_size=64)
    model, tok = load_model(ck)
    cfg, w = read_checkpoint(ck)
    ref = IntLlama(cfg, w, _calibration(cfg, w, ck))  # on the groups of 64 as stored
    ids = tok.encode("Once upon")
    res = run_host(build_program(model, tok, ids, 4, 0.0, 0.9, 0, tmp_path / "c", rows=4), tmp_path, dump_logits=True)
    assert res.tokens == ref.generate(ids, 4)
    np.testing.assert_array_equal(res.logits[0], ref.forward_many(ids, 0)[-1])
    _one_line_error(["generate", "--model", _tiny(tmp_path / "g16.bin", group_size=16)], "Q8_0 group size 16")


# ---------------------------------------------------------------- item 4: detokenizer offsets

def _write_tokenizer(path, pieces):
    data = [np.int32(max(map(len, pieces))).tobytes()]
    for i, p in enumerate(pieces):
        data += [np.float32(-i).tobytes(), np.int32(len(p)).tobytes(), p]
    path.write_bytes(b"".join(data))


def test_detokenizer_offsets_beyond_uint16(tmp_path):
    """Pieces totalling more than 65,535 bytes: the program prints the text the host decodes."""
    pieces = ([b"<unk>", b"<s>", b"</s>"] + [b"<0x%02X>" % i for i in range(256)] + [b" "]
              + [b" %03d" % i + b"." * 300 for i in range(251)] + [b"Q"])
    assert len(pieces) == 512 and sum(map(len, pieces[:-1])) > 65535  # "Q" lies beyond uint16 offsets
    _write_tokenizer(tmp_path / "tok512.bin", pieces)
    cfg, w = read_checkpoint(_tiny(tmp_path / "m.bin", seq_len=16))
    tok = Tokenizer.load(tmp_path / "tok512.bin", 512)
    model = IntLlama(cfg, w, calibrate(FloatLlama(cfg, w), [[1, 259, 511, 300, 7, 420]]))
    ids = tok.encode("Q")
    assert ids == [1, 259, 511]
    res = run_host(build_program(model, tok, ids, 6, 0.0, 0.9, 0, tmp_path / "c", rows=4), tmp_path)
    assert res.console == tok.decode(ids[1:] + res.tokens) + "\n"
    assert res.console.startswith("Q")


# ---------------------------------------------------------------- item 8: seq_len bounded by the target

def _peak_bytes(fn):
    tracemalloc.start()
    try:
        with pytest.raises(TinydeployError) as e:
            fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return str(e.value), peak


def test_generate_refuses_a_context_the_target_cannot_hold(tmp_path):
    huge = _tiny(tmp_path / "huge.bin", seq_len=2**31 - 1)
    msg, peak = _peak_bytes(lambda: generate(huge, "host"))
    assert "KV cache 68,719,476,704" in msg and "more than the 67,108,864 bytes generate allows on the host" in msg
    assert peak < 16 << 20  # refused before anything big is allocated
    big = _tiny(tmp_path / "big.bin", seq_len=16384)  # fits the host, not 512 KiB of SRAM
    msg, _ = _peak_bytes(lambda: generate(big, "rv32"))
    assert "KV cache 524,288" in msg and "more than the 524,288 bytes of rv32 SRAM" in msg
    r = CliRunner().invoke(main, ["generate", "--model", str(big), "--context", "100000000", "--steps", "1"])
    assert r.exit_code == 1 and "(--context 100000000) needs" in r.stderr and len(r.stderr.splitlines()) == 1


def test_export_refuses_weights_beyond_the_host_limit():
    """The export's float32 weights are bounded (its sequence lengths are run-time inputs now); the
    weights here are broadcast views, so a refusal before building costs no memory."""
    from tinydeploy.models.llama.checkpoint import LlamaConfig, LlamaWeights
    cfg = LlamaConfig(dim=1024, hidden_dim=4096, n_layers=2, n_heads=8, n_kv_heads=8, vocab_size=512, seq_len=8)
    zeros = lambda *s: np.broadcast_to(np.float32(0), s)  # noqa: E731
    L, d, h = cfg.n_layers, cfg.dim, cfg.hidden_dim
    w = LlamaWeights(zeros(512, d), zeros(L, d), *[zeros(L, d, d)] * 4, zeros(L, d), zeros(L, h, d),
                     zeros(L, d, h), zeros(L, h, d), zeros(d), zeros(512, d))
    msg, peak = _peak_bytes(lambda: build_model(cfg, w))
    need = 4 * (512 * d + (2 * L + 1) * d + L * (4 * d * d + 3 * h * d))
    assert f"export-llama needs {need:,} bytes (weights {need:,})" in msg
    assert "67,108,864 bytes export-llama allows on the host" in msg
    assert peak < 16 << 20


# ---------------------------------------------------------------- item 11: one line, no warnings

@pytest.mark.parametrize("args,needle", [
    (["--temperature", "nan"], "--temperature must be a finite number >= 0"),
    (["--temperature", "-1"], "--temperature must be"),
    (["--top-p", "nan"], "--top-p must be in 0..1"), (["--top-p", "inf"], "--top-p must be in 0..1"),
    (["--top-p", "-0.5"], "--top-p must be in 0..1"), (["--top-p", "1.5"], "--top-p must be in 0..1")])
def test_generate_bad_sampling_options(tmp_path, args, needle):
    _one_line_error(["generate", "--model", _tiny(tmp_path / "m.bin"), *args], needle)


def _set(field, index, value):
    return lambda w: getattr(w, field).__setitem__(index, value)


@pytest.mark.parametrize("mutate,needle", [
    (_set("wq", (0, 0, 0), np.nan), "NaN, infinite or too large values in wq scales"),
    (_set("w2", (1, 2, 3), np.inf), "values in w2 scales"),
    (_set("rms_ffn", (1, 0), np.nan), "values in rms_ffn"),
    (_set("token_embedding", slice(None), 0.0), "token_embedding is all zeros"),
    (_set("w1", 1, 0.0), "w1 of layer 1 is all zeros"),
    (lambda w: [getattr(w, n).fill(0) for n in ("wq", "wk", "wv", "wo", "w1", "w2", "w3")], "wq of layer 0 is all zeros"),
    (_set("rms_final", slice(None), 0.0), "rms_final is all zeros"),
    (lambda w: w.w1.__imul__(1e4), "the integer SiLU takes at most 512"),  # finite, but beyond the integer model
    (lambda w: w.wo.__imul__(1e30), "on the calibration text, the float model's"),  # overflows the float model
])
def test_generate_bad_weights(tmp_path, mutate, needle):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantize_q80 of NaN / Inf while writing the test file
        ck = _tiny(tmp_path / "m.bin", mutate=mutate, seq_len=16)
    _one_line_error(["generate", "--model", ck], needle)


def test_generate_prompt_not_utf8(tmp_path, cache):
    """The shell hands over undecodable bytes (Python sees surrogate escapes)."""
    ck = _tiny(tmp_path / "m.bin")
    r = subprocess.run([sys.executable, "-m", "tinydeploy.cli", "generate", "--model", str(ck),
                        b"--prompt", b"Lily \xff\xfe"], capture_output=True, timeout=300)
    assert r.returncode == 1 and r.stdout == b""
    assert r.stderr.decode().splitlines() == ["error: cannot encode text that is not valid UTF-8 (character 5)"]


# ---------------------------------------------------------------- item 11: the calibration cache

def _npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def test_damaged_calibration_cache_is_rebuilt(tmp_path, cache, monkeypatch):
    ck = _tiny(tmp_path / "m.bin")
    cfg, w = read_checkpoint(ck)
    good = _calibration(cfg, w, ck)
    f, = cache.iterdir()
    assert f.name.startswith("llama-calib-")
    fields = dict(np.load(f))
    damaged = {"garbage": b"not an npz" * 9, "truncated": f.read_bytes()[:200]}
    for name, change in [("nan", dict(x=np.nan)), ("zero", dict(q=np.zeros(cfg.n_layers))),
                         ("shape", dict(k_ch=np.ones(3))), ("missing", dict(g=None))]:
        _npz(tmp_path / name, **{k: v for k, v in {**fields, **change}.items() if v is not None})
        damaged[name] = (tmp_path / name).read_bytes()
    for name, data in damaged.items():
        f.write_bytes(data)
        again = _calibration(cfg, w, ck)
        for k, v in good.__dict__.items():
            np.testing.assert_array_equal(getattr(again, k), v, err_msg=name)
        assert [p.name for p in cache.iterdir()] == [f.name], name
        assert set(np.load(f).files) == set(fields), name  # rewritten whole
    # a write that fails half-way leaves neither a partial cache file nor a temporary one
    f.unlink()

    def fail(fh, **_):
        fh.write(b"partial")
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", fail)
    _calibration(cfg, w, ck)
    assert list(cache.iterdir()) == []


def _upper_tokenizer(src, dst):
    """The llama2.c tokenizer file `src` with every token's text upper-cased (byte tokens <0xAB> kept)."""
    data, out, pos = src.read_bytes(), bytearray(src.read_bytes()[:4]), 4
    while pos < len(data):
        n = int(np.frombuffer(data, "<i4", 1, pos + 4)[0])
        text = data[pos + 8:pos + 8 + n]
        out += data[pos:pos + 8] + (text if text.startswith(b"<0x") else text.upper())
        pos += 8 + n
    dst.write_bytes(bytes(out))
    return dst


def test_generate_tokenizer_option(tmp_path):
    from tinydeploy.models import default_tokenizer_path
    ck = _tiny(tmp_path / "m.bin", seq_len=16)
    args = ["generate", "--model", str(ck), "--steps", "8"]
    base = CliRunner().invoke(main, args)
    assert base.exit_code == 0, base.output
    tok = _upper_tokenizer(default_tokenizer_path(), tmp_path / "upper.bin")
    r = CliRunner().invoke(main, [*args, "--tokenizer", str(tok)])
    assert r.exit_code == 0, r.output
    assert r.stdout != base.stdout and r.stdout.upper() == base.stdout.upper()
    _one_line_error([*args, "--tokenizer", tmp_path / "none.bin"], "tokenizer")
    (tmp_path / "short.bin").write_bytes(b"\x01")
    _one_line_error([*args, "--tokenizer", tmp_path / "short.bin"], "is truncated")
