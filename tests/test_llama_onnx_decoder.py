"""ONNX decoders with past/present (optimum's text-generation-with-past) through the llama route:
stories260K's export gives the llama2.c route's integers, tokens and logits; a random grouped-query
export compiles bit-exact to its golden and near its float logits; other layouts are one-line errors.
Fixtures: tests/data/*/README.md (made by scripts/dev/make_optimum_fixture.py)."""
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from helpers import run_host
from tinydeploy.cli import main
from tinydeploy.driver import generate
from tinydeploy.errors import TinydeployError
from tinydeploy.models.llama import load_default
from tinydeploy.models.llama.generate import build_program, load_model
from tinydeploy.models.llama.onnx_decoder import read_decoder
from tinydeploy.targets.rv32 import Rv32Config, Rv32Target

DATA = Path(__file__).parent / "data"
STORIES = DATA / "stories260K_optimum" / "model.onnx"
GQA = DATA / "gqa_random_optimum" / "model.onnx"
ARGS = dict(prompt="Lily had a dog", temperature=0.8, top_p=0.9, seed=5)


@pytest.fixture(scope="module")
def llama2c_host():
    return generate(target="host", steps=16, **ARGS)


def test_stories260K_export_gives_the_checkpoints_integers():
    """The float export re-quantized in Q8_0 groups: the very int8 values and scales of the checkpoint."""
    cfg, w = read_decoder(STORIES)
    cfg0, w0, _ = load_default()
    assert cfg == cfg0 and w.group_size == w0.group_size
    assert w.quantized.keys() == w0.quantized.keys()
    for k, t in w0.quantized.items():
        np.testing.assert_array_equal(w.quantized[k].q, t.q, err_msg=k)
        np.testing.assert_array_equal(w.quantized[k].scales, t.scales, err_msg=k)
    for k in ("rms_att", "rms_ffn", "rms_final", "token_embedding", "wq", "wk", "wcls"):
        np.testing.assert_array_equal(getattr(w, k), getattr(w0, k), err_msg=k)


def test_generate_onnx_equals_llama2c_route_on_host(tmp_path, llama2c_host):
    """`generate --model x.onnx` picks the decoder route by file type: same tokens, text and logits."""
    report = tmp_path / "r.json"
    r = CliRunner().invoke(main, ["generate", "--model", str(STORIES), "--steps", "16", "--report", str(report),
                                  *[a for k, v in ARGS.items() for a in (f"--{k.replace('_', '-')}", str(v))]])
    assert r.exit_code == 0, r.output
    import json
    rep = json.loads(report.read_text())
    assert len(rep["token_ids"]) == 16 and rep["token_ids"] == llama2c_host[1]["token_ids"]
    assert rep["logit_hash"] == llama2c_host[1]["logit_hash"]   # FNV-1a over every sampled-from logits vector
    assert r.stdout == llama2c_host[0]


def test_generate_onnx_on_rv32(llama2c_host):
    text, rep = generate(STORIES, target=Rv32Target(Rv32Config(fpu=False)), steps=3, **ARGS)
    host3 = generate(target="host", steps=3, **ARGS)[1]
    assert rep["token_ids"] == host3["token_ids"] == llama2c_host[1]["token_ids"][:3]
    assert rep["logit_hash"] == host3["logit_hash"]
    assert rep["memory"]["state"] == 163840 and rep["memory"]["SRAM_total"] <= 512 * 1024


@pytest.mark.slow
def test_generate_onnx_on_rv32_long():
    """64 tokens on rv32 with the FPU: the llama2.c route's tokens and logits on the host."""
    rep = generate(STORIES, target=Rv32Target(Rv32Config(fpu=True)), steps=64, prompt="Once upon a time")[1]
    host = generate(target="host", steps=64, prompt="Once upon a time")[1]
    assert rep["token_ids"] == host["token_ids"] and rep["logit_hash"] == host["logit_hash"]


def test_grouped_query_decoder_bit_exact_to_golden_and_near_float(tmp_path):
    """4 heads on 1 kv head, untied classifier: the C logits equal the integer golden; the golden stays
    within 3 % of the largest float logit of the ONNX graph (measured 1.2 %) with the same top-1."""
    import onnxruntime as ort
    model, tok = load_model(GQA)
    cfg = model.cfg
    assert (cfg.n_heads, cfg.n_kv_heads, cfg.shared_classifier) == (4, 1, False)
    assert model.seq_len == 64   # max_position_embeddings of the config.json beside the export
    ids = tok.encode("Once upon a time, there was a little girl", bos=True)
    res = run_host(build_program(model, tok, ids, 6, 0.0, 0.9, 0, tmp_path / "c", rows=4), tmp_path, dump_logits=True)
    assert res.tokens == model.generate(ids, 6)
    np.testing.assert_array_equal(res.logits[0], model.forward_many(ids, 0)[-1])
    li = model.forward_many(ids, 0) / 256   # Q8 logit units
    T = len(ids)
    feed = {"input_ids": np.array([ids]), "attention_mask": np.ones((1, T), np.int64),
            "position_ids": np.arange(T)[None]}
    feed.update({f"past_key_values.{l}.{kv}": np.zeros((1, cfg.n_kv_heads, 0, cfg.head_size), np.float32)
                 for l in range(cfg.n_layers) for kv in ("key", "value")})
    lf = ort.InferenceSession(str(GQA)).run(["logits"], feed)[0][0]
    assert np.abs(li - lf).max() <= 0.03 * np.abs(lf).max()
    assert (li.argmax(1) == lf.argmax(1)).mean() >= 0.9


def test_llama2c_checkpoint_to_onnx_and_back(tmp_path):
    """A grouped-query llama2.c checkpoint through export-llama and back: the same integer model
    (weights, scales, calibration), so the same logits, bit for bit."""
    from helpers import random_llama
    from tinydeploy.models.llama import write_v2
    cfg, w = random_llama(dim=32, hidden_dim=64, n_heads=4, n_kv_heads=2, vocab_size=512, seq_len=64, seed=3)
    write_v2(tmp_path / "m.bin", cfg, w)
    r = CliRunner().invoke(main, ["export-llama", str(tmp_path / "m.bin"), "-o", str(tmp_path / "m.onnx")])
    assert r.exit_code == 0, r.output
    if "past_key_values.0.key" not in {i.name for i in onnx.load(str(tmp_path / "m.onnx")).graph.input}:
        pytest.skip("export-llama does not write the past/present layout yet")
    ck, _ = load_model(tmp_path / "m.bin")
    ox, tok = load_model(tmp_path / "m.onnx", context=cfg.seq_len)
    ids = tok.encode("Once upon a time", bos=True)
    np.testing.assert_array_equal(ox.forward_many(ids, 0), ck.forward_many(ids, 0))


def test_weights_bounded_before_the_float_work(monkeypatch):
    import tinydeploy.models.llama.onnx_decoder as dec
    monkeypatch.setattr(dec, "fold", lambda *a: pytest.fail("folded a decoder that cannot fit"))
    with pytest.raises(TinydeployError, match=r"decoder .*model.onnx needs [\d,]+ bytes \(weights [\d,]+\): more than "
                                              r"the 200,000 bytes of a test"):
        load_model(STORIES, memory=(200_000, "of a test"))


def test_context_from_option_config_or_default(tmp_path):
    assert read_decoder(GQA, context=40)[0].seq_len == 40
    lone = tmp_path / "lone" / "model.onnx"   # no config.json beside it
    lone.parent.mkdir()
    lone.write_bytes(GQA.read_bytes())
    assert read_decoder(lone)[0].seq_len == 512
    for text, needle in [("{not json", "config.json: not a readable JSON object"),
                         ('{"max_position_embeddings": "many"}', "max_position_embeddings is 'many'")]:
        (lone.parent / "config.json").write_text(text)
        with pytest.raises(TinydeployError, match=needle):
            read_decoder(lone)


def _mutated(tmp_path, change) -> Path:
    m = onnx.load(str(STORIES))
    change(m.graph)
    out = tmp_path / "m.onnx"
    onnx.save(m, str(out))
    return out


def test_a_plain_model_is_not_a_decoder(tmp_path):
    """In a process of its own: one line, no traceback."""
    import subprocess
    import sys
    from onnx import TensorProto, helper
    x, y = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in "xy")
    m = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "m", [x], [y]))
    onnx.save(m, str(tmp_path / "relu.onnx"))
    r = subprocess.run([sys.executable, "-m", "tinydeploy.cli", "generate", "--model", str(tmp_path / "relu.onnx")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stdout == "" and len(r.stderr.splitlines()) == 1
    assert "not a decoder in the text-generation-with-past layout (no input 'input_ids'" in r.stderr


def _first(g, op):
    return next(n for n in g.node if n.op_type == op)


@pytest.mark.parametrize("change, needle", [
    (lambda g: setattr(g.input[2], "name", "positions"), "no input 'position_ids'"),
    (lambda g: g.output.pop(1), "no output 'present.0.key'"),
    (lambda g: g.input[6].type.tensor_type.shape.dim[1].__setattr__("dim_value", 7),
     "input 'past_key_values.1.value' must be [batch, 4, past, 8] as 'past_key_values.0.key'"),
    (lambda g: setattr(_first(g, "Sigmoid"), "op_type", "Tanh"), "layer 0, feed-forward: expected silu"),
    (lambda g: setattr(_first(g, "Neg"), "op_type", "Identity"), "output 'logits' (3 cached positions, 2 new) differs by"),
])
def test_other_layouts_are_one_line_errors(tmp_path, change, needle):
    path = _mutated(tmp_path, change)
    with pytest.raises(TinydeployError, match=re.escape(needle)):
        read_decoder(path)
    r = CliRunner().invoke(main, ["generate", "--model", str(path), "--steps", "2"])
    assert r.exit_code == 1 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], r.stderr


# ---------------------------------------------------------------- QDQ: onnxruntime's static quantizer

def _float_feeds(ids, past: dict, P: int, L: int = 5, kvh: int = 4, hs: int = 8) -> dict:
    R = len(ids)
    feeds = {"input_ids": np.array([ids]), "attention_mask": np.ones((1, P + R), np.int64),
             "position_ids": np.arange(P, P + R)[None]}
    feeds.update({f"past_key_values.{l}.{kv}": past.get(f"{l}.{kv}", np.zeros((1, kvh, 0, hs), np.float32))
                  for l in range(L) for kv in ("key", "value")})
    return feeds


def _prefix(ids) -> dict:
    """The float export's caches after the tokens `ids` (onnxruntime)."""
    import onnxruntime as ort
    s = ort.InferenceSession(str(STORIES))
    names = [o.name for o in s.get_outputs()]
    return {n[len("present."):]: v for n, v in zip(names, s.run(None, _float_feeds(ids, {}, 0))) if n != "logits"}


@pytest.fixture(scope="module")
def qdq(tmp_path_factory) -> onnx.ModelProto:
    """The stories260K export through onnxruntime.quantization.quantize_static (QDQ; MatMuls: int8
    weights per tensor, int8 activations calibrated on two prompts)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    _, _, tok = load_default()

    class Prompts(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter(_float_feeds(tok.encode(t, bos=True), {}, 0) for t in
                              ("Once upon a time, there was a little girl named Lily.", "The dog ran to the park."))

        def get_next(self):
            return next(self.feeds, None)
    out = tmp_path_factory.mktemp("qdq") / "qdq.onnx"
    quantize_static(str(STORIES), str(out), Prompts(), quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul"],
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=False)
    return onnx.load(str(out))


def _at_shape(qdq: onnx.ModelProto, P: int, R: int) -> tuple[onnx.ModelProto, dict]:
    """The QDQ decoder with static input shapes (P cached positions, R new rows) and its inputs."""
    _, _, tok = load_default()
    ids = tok.encode("Once upon a time, there was a little girl", bos=True)[:P + R]
    feeds = _float_feeds(ids[P:], _prefix(ids[:P]), P)
    m = onnx.ModelProto.FromString(qdq.SerializeToString())
    for i in m.graph.input:
        i.type.tensor_type.shape.ClearField("dim")
        i.type.tensor_type.shape.dim.extend(onnx.TensorShapeProto.Dimension(dim_value=v) for v in feeds[i.name].shape)
    return m, feeds


@pytest.mark.parametrize("P, R", [(6, 4), (9, 1)])   # prefill rows after a cached past; one decode step
def test_qdq_decoder_matches_onnxruntime(qdq, P, R):
    """At fixed shapes the QDQ decoder's machinery folds and it compiles through the generic QDQ lowering
    (every MatMul an integer kernel); its logits keep the depth rule of docs/tolerance.md against the
    exact reference and onnxruntime (measured: 0 LSB); the caches match as float."""
    from model_check import allowed_lsb, depths, output_scales
    from helpers import compile_model
    from tinydeploy.golden import run_graph
    from tinydeploy.testing import references
    m, feeds = _at_shape(qdq, P, R)
    c = compile_model(m)
    assert sum(n.op == "QMatMul" for n in c.graph.nodes) == 47   # 5 x (7 projections, 2 attention products), classifier, RoPE angles
    ours = run_graph(c.graph, feeds)
    depth, scale = depths(m)["logits"], output_scales(m)["logits"]
    refs = references(m, feeds)
    assert set(refs) == {"exact reference", "onnxruntime"}   # QDQ: onnxruntime's float kernels, exact
    for label, ref in refs.items():
        err = (ours["logits"].astype(np.float64) - ref["logits"]) / scale
        assert np.abs(err).max() <= allowed_lsb(depth) and abs(err.mean()) < 0.1, label
        for name in (o.name for o in m.graph.output if o.name != "logits"):
            np.testing.assert_allclose(ours[name], ref[name], rtol=1e-5, atol=1e-6, err_msg=f"{label} {name}")


@pytest.mark.slow
def test_qdq_decoder_host_c(qdq):
    """The same through the C of the host (gcc -O2 takes ~40 s of CPU on this graph's float islands)."""
    from model_check import check_model
    check_model(*_at_shape(qdq, 6, 4))


def _qdq_steps(path: Path, seq: list[int], C: int, states=None):
    """Per step of ``seq`` (one token each): the golden logits of the QDQ decoder compiled as generate does
    (caches as states of C slots, of dtype ``states`` if given) and onnxruntime's on the same model with a
    growing past."""
    from tinydeploy.compiler import compile_graph
    from tinydeploy.golden import run_graph
    from tinydeploy.testing.quant import ort_session
    dec, _ = load_model(path, context=C)
    g, state, gold = compile_graph(dec.graph()).graph, {}, []
    kinds = {t.dtype for t in g.tensors.values() if t.state}
    assert len(kinds) == 1 and (states is None or kinds == {np.dtype(states)}), kinds
    sess, past, ref = ort_session(onnx.load(str(path))), {}, []
    names = [o.name for o in sess.get_outputs()]
    for p, t in enumerate(seq):
        gold.append(run_graph(g, dec.feeds(t, p), state=state)["logits"].reshape(-1))
        outs = dict(zip(names, sess.run(None, _float_feeds([t], past, p))))
        past = {n[len("present."):]: v for n, v in outs.items() if n != "logits"}
        ref.append(outs["logits"].reshape(-1))
    return np.array(gold), np.array(ref)


def test_generate_qdq_decoder_on_host(qdq, tmp_path, monkeypatch):
    """A QDQ decoder compiles as it is (one static decode step, each past/present pair a state of C slots):
    the C's tokens and logits equal its golden step by step, bit for bit, and the logits keep the depth
    rule of docs/tolerance.md against onnxruntime running the same model with a growing past (measured:
    0 LSB at every step)."""
    from model_check import allowed_lsb, depths, output_scales
    from tinydeploy.models.llama.qdq_decoder import q8_logits
    monkeypatch.setenv("TINYDEPLOY_HOST_CFLAGS", "-O1")   # gcc -O2: +3 s CPU on the ~400 inlined kernel calls
    path = tmp_path / "qdq.onnx"
    onnx.save(qdq, str(path))
    dec, tok = load_model(path, context=24)
    ids = tok.encode("Lily had a dog", bos=True)
    res = run_host(build_program(dec, tok, ids, 6, 0.0, 0.9, 0, tmp_path / "c"), tmp_path, dump_logits=True)
    gold, ort_logits = _qdq_steps(path, ids + res.tokens[:-1], 24)
    P = len(ids)
    np.testing.assert_array_equal(res.logits, [q8_logits(x) for x in gold[P - 1:]])
    assert res.tokens == gold[P - 1:].argmax(1).tolist() and len(res.tokens) == 6
    err = (gold.astype(np.float64) - ort_logits) / output_scales(qdq)["logits"]
    assert np.abs(err).max() <= allowed_lsb(depths(qdq)["logits"]) and abs(err.mean()) < 0.1


def test_qdq_int8_state_is_the_float_state_quantized(qdq, tmp_path, monkeypatch):
    """Moving the cache's quantization onto the new slot changes no value: the golden logits of every step
    equal those of the float32 states (the rewrite turned off), and the states are int8 only with it."""
    import tinydeploy.models.llama.qdq_decoder as qd
    path = tmp_path / "qdq.onnx"
    onnx.save(qdq, str(path))
    _, _, tok = load_default()
    seq = tok.encode("Once upon a time, there was a little girl", bos=True)
    int8, _ = _qdq_steps(path, seq, 16, states=np.int8)
    monkeypatch.setattr(qd, "_int8_state", lambda *a: None)
    float32, _ = _qdq_steps(path, seq, 16, states=np.float32)
    np.testing.assert_array_equal(int8, float32)


@pytest.mark.slow
def test_generate_qdq_decoder_on_rv32(qdq, tmp_path):
    """rv32 with the FPU and 1 MiB of SRAM: the host's tokens and logits; at the default 512 KiB the
    program (its float embedding and float islands) does not fit: one line naming bytes and SRAM."""
    path = tmp_path / "qdq.onnx"
    onnx.save(qdq, str(path))
    rep = generate(path, target=Rv32Target(Rv32Config(fpu=True, sram_bytes=1 << 20)), steps=4, **ARGS)[1]
    host = generate(path, target="host", steps=4, **ARGS)[1]
    assert rep["token_ids"] == host["token_ids"] and rep["logit_hash"] == host["logit_hash"]
    with pytest.raises(TinydeployError, match=r"rv32: program needs [\d,]+ bytes of SRAM but the target has 524,288"):
        generate(path, target=Rv32Target(Rv32Config(fpu=True)), steps=4, **ARGS)


def test_generate_refuses_a_qoperator_decoder(tmp_path):
    """onnxruntime's quantize_dynamic (DynamicQuantizeLinear, MatMulInteger): run-time activation scales."""
    from onnxruntime.quantization import quantize_dynamic
    quantize_dynamic(str(STORIES), str(tmp_path / "dyn.onnx"))
    r = CliRunner().invoke(main, ["generate", "--model", str(tmp_path / "dyn.onnx"), "--steps", "2"])
    assert r.exit_code == 1 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "(DynamicQuantizeLinear): a quantized decoder in QOperator form" in lines[0], r.stderr
