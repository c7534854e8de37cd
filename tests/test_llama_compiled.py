"""The integer llama through the compiler (graph -> compile_graph -> C): bit-exact against IntLlama."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import check_report_schema, run_host
from tinydeploy import golden
from tinydeploy.cli import main
from tinydeploy.models import bundled_path
from tinydeploy.models.llama.generate import build_program, load_model
from tinydeploy.models.llama.graph import build_graph

REF = json.loads(bundled_path("reference_tokens.json").read_text())["tokens"]
PROMPT = "Once upon a time, there was a big dog named Max. He liked to run in the park"


@pytest.fixture(scope="module")
def model():
    return load_model()


def _ins(tokens, pos, rows):
    t = np.zeros(rows, np.int32)
    t[:len(tokens)] = tokens
    return {"tokens": t, "pos": np.array([pos], np.int32), "n": np.array([len(tokens)], np.int32)}


def test_graph_prefill_equals_decode_bit_for_bit(model):
    m, tok = model
    ids = tok.encode(PROMPT, bos=True)[:12]
    g_pre, g_dec = build_graph(m, 16), build_graph(m, 1)
    st_pre, st_dec = golden.init_state(g_pre), golden.init_state(g_dec)
    pre = golden.run_graph(g_pre, _ins(ids, 0, 16), state=st_pre)["logits"]
    for p, t in enumerate(ids):
        dec = golden.run_graph(g_dec, _ins([t], p, 1), state=st_dec)["logits"]
    np.testing.assert_array_equal(pre, dec)
    np.testing.assert_array_equal(st_pre["kcache"], st_dec["kcache"])
    np.testing.assert_array_equal(pre[0], m.forward_many(ids, 0)[-1])


@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_host_c_equals_golden_model(model, tmp_path, temperature):
    """Tokens and every sampled-from logits vector over >= 64 decoded tokens, prompt prefilled in
    chunks of 8 rows (the golden model prefills it in one pass)."""
    m, tok = model
    ids = tok.encode(PROMPT, bos=True)
    assert len(ids) > 8
    prog = build_program(m, tok, ids, 70, temperature, 0.9, 7, tmp_path / "c", rows=8)
    res = run_host(prog, tmp_path, dump_logits=True)
    want = m.generate(ids, 70, temperature=temperature, top_p=0.9, seed=7)
    assert res.tokens == want and len(want) >= 64
    ref = load_model()[0]
    logits = [ref.forward_many(ids, 0)[-1]] + [ref.forward(t, len(ids) + i) for i, t in enumerate(want[:-1])]
    np.testing.assert_array_equal(res.logits, np.array(logits))
    assert tok.decode(ids[1:] + want) in res.console


def test_host_c_prefill_in_row_blocks(model, tmp_path):
    """A 32-row prefill runs the layers as one region in blocks of 8 rows (passes/row_blocks.py;
    prompt > 16 tokens: several blocks, the last one partial): same logits as the golden model."""
    m, tok = model
    ids = tok.encode(PROMPT, bos=True)
    assert len(ids) > 16 and len(ids) % 8
    prog = build_program(m, tok, ids, 3, 0.0, 0.9, 7, tmp_path / "c", rows=32)
    res = run_host(prog, tmp_path, dump_logits=True)
    want = m.generate(ids, 3, temperature=0.0, top_p=0.9, seed=7)
    assert res.tokens == want
    logits = [m.forward_many(ids, 0)[-1]] + [m.forward(t, len(ids) + i) for i, t in enumerate(want[:-1])]
    np.testing.assert_array_equal(res.logits, np.array(logits))


def test_cli_generate_greedy_from_bos(tmp_path):
    rep = tmp_path / "r.json"
    r = CliRunner().invoke(main, ["generate", "--steps", "20", "--report", str(rep)])
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("Once upon a time, there was a little girl named Lily.")
    data = json.loads(rep.read_text())
    assert data["token_ids"] == REF[:20] and data["tokens"] == 20 and data["tokens_per_second"] > 0
    check_report_schema(data)  # run's schema, plus the generate fields
    assert "tokens/s" in r.stderr


@pytest.mark.parametrize("args,msg", [(["--steps", "0"], "--steps"), (["--model", "/no/such.bin"], "not found"),
                                      (["--prompt", "a " * 600], "context holds")])
def test_cli_generate_errors(args, msg):
    r = CliRunner().invoke(main, ["generate"] + args)
    assert r.exit_code == 1 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("shared", [True, False])
def test_tiny_model_graph_and_c_equal_int_llama(tmp_path, shared):
    """A tiny random model (dim 16, head size 4, 2 KV heads: other kernel paths than stories260K's), with
    and without a classifier of its own: the graph's golden model and its host C equal IntLlama."""
    from helpers import random_llama
    from tinydeploy.compiler import compile_graph, emit_c
    from tinydeploy.models.llama import FloatLlama, IntLlama, calibrate, read_checkpoint, write_v2
    from tinydeploy.targets.host import runner
    write_v2(tmp_path / "m.bin", *random_llama(shared=shared, seed=3))
    cfg, w = read_checkpoint(tmp_path / "m.bin")
    cal = calibrate(FloatLlama(cfg, w), [[1, 5, 7, 3, 2, 9]])
    ids = [1, 5, 7, 3, 2]
    want = IntLlama(cfg, w, cal).forward_many(ids, 0)[-1]
    g = build_graph(IntLlama(cfg, w, cal), 6)
    np.testing.assert_array_equal(golden.run_graph(g, _ins(ids, 0, 6))["logits"][0], want)
    c = compile_graph(g)
    host = runner.run(emit_c(c, tmp_path / "c"), c.graph, _ins(ids, 0, 6), tmp_path)
    np.testing.assert_array_equal(host["logits"][0], want)
