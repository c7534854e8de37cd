"""ONNX decoders with a KV cache (optimum's ``text-generation-with-past`` layout) -> the llama config
and weights the llama2.c route compiles (an importer, not a second compiler).

Layout: inputs ``input_ids``, ``attention_mask``, ``position_ids``, ``past_key_values.{i}.key/.value``
[batch, kv_heads, past, head_size]; outputs ``logits`` and ``present.{i}.key/.value``. The graph's
dynamic-shape machinery (Shape, Gather, Concat, Range, the run-time causal mask, ...) is folded by the
compiler's own passes at one concrete shape (PAST positions cached, ROWS new); the layers are then
found by data flow from the graph's interface: present.{i}.value leads back to the v projection,
present.{i}.key through the rotation to the k projection, their shared input to the RMSNorm before
them, and so on. Each past/present pair becomes the integer model's KV-cache state for layer i; the
sequence lengths become the program's run-time position and row count.

The recognition is then checked by arithmetic: the folded graph and the float llama built from the
weights found (``FloatLlama``) must give the same logits and presents on a few tokens; anything else
(another rotation, mask, norm or activation) is refused in one line. Float weights go to Q8_0
(groups of 32 over each flattened tensor) as the llama2.c checkpoints store them, so a decoder whose
weights lie on that grid (stories260K's export) compiles to the very integers of the llama2.c route.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from ...errors import TinydeployError
from ...frontend.onnx_import import import_model, read_model
from ...golden import run_graph
from ...ir import Graph
from ...passes.complete_types import complete_types
from ...passes.drop_noops import drop_noops
from ...passes.fold_constants import fold_constants
from ...passes.validate_ops import validate_ops
from .budget import check_fits
from .checkpoint import MATRICES, LlamaConfig, LlamaWeights, QuantizedTensor, quantize_q80
from .reference import FloatLlama

PAST, ROWS = 3, 2        # the shape the machinery is folded at to find the layers (distinct, both > 1)
CONTEXT = 512            # positions of the KV cache when neither the caller nor the export says
GROUP = 32               # Q8_0 group of the weights (the llama2.c checkpoints' and the kernels')
TOLERANCE = 1e-3         # recognised float llama vs the folded graph, relative to the largest logit
QUANTIZED = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger")
MOVES = ("Reshape", "Transpose", "Unsqueeze", "Squeeze", "Identity", "Cast")   # data movement, walked through


def _interface(model, path) -> tuple[int, int, int]:
    """(layers, kv heads, head size) from the inputs and outputs, or a one-line error naming the tensor."""
    g = model.graph
    ins = {i.name: i for i in g.input if i.name not in {t.name for t in g.initializer}}
    outs = {o.name for o in g.output}
    L = sum(1 for n in ins if n.startswith("past_key_values.") and n.endswith(".key"))
    want_in = ["input_ids", "attention_mask", "position_ids"] + [
        f"past_key_values.{i}.{kv}" for i in range(L) for kv in ("key", "value")]
    want_out = ["logits"] + [f"present.{i}.{kv}" for i in range(L) for kv in ("key", "value")]
    missing = [("input", n) for n in want_in if n not in ins] + [("output", n) for n in want_out if n not in outs]
    extra = sorted(set(ins) - set(want_in)) + sorted(outs - set(want_out))
    if not L or missing or extra:
        what = (f"no {missing[0][0]} '{missing[0][1]}'" if missing else f"unexpected tensor '{extra[0]}'" if extra
                else "no past_key_values")
        raise TinydeployError(f"{path}: not a decoder in the text-generation-with-past layout ({what}; expected "
                              f"inputs input_ids, attention_mask, position_ids, past_key_values.{{i}}.key/.value, "
                              f"outputs logits, present.{{i}}.key/.value)")
    dims = ins["past_key_values.0.key"].type.tensor_type.shape.dim
    if len(dims) != 4 or not all(d.HasField("dim_value") and d.dim_value > 0 for d in (dims[1], dims[3])):
        raise TinydeployError(f"{path}: input 'past_key_values.0.key' must be [batch, kv_heads, past, head_size] "
                              f"with static kv_heads and head_size")
    for name in want_in[3:]:   # one cache shape for all layers (the C slots and the fold assume it)
        d = ins[name].type.tensor_type.shape.dim
        if len(d) != 4 or (d[1].dim_value, d[3].dim_value) != (dims[1].dim_value, dims[3].dim_value):
            raise TinydeployError(f"{path}: input '{name}' must be [batch, {dims[1].dim_value}, past, "
                                  f"{dims[3].dim_value}] as 'past_key_values.0.key'")
    return L, dims[1].dim_value, dims[3].dim_value


def quantized(model, path) -> bool:
    """Whether the decoder is QDQ-quantized (onnxruntime's quantize_static: it compiles as it is,
    qdq_decoder.py); a QOperator one (quantize_dynamic's DynamicQuantizeLinear, MatMulInteger, QLinear*)
    is a one-line error."""
    nodes = [n for n in model.graph.node if n.op_type in QUANTIZED or n.op_type.startswith("QLinear")]
    other = next((n for n in nodes if n.op_type not in QUANTIZED[:2]), None)
    if other is not None:   # its run-time activation scales have no static program here
        raise TinydeployError(f"{path}: node {other.name or other.op_type} ({other.op_type}): a quantized decoder in "
                              f"QOperator form; generate takes a float decoder or a QDQ one (quantize_static)")
    return bool(nodes)


def read_interface(path, memory: tuple[int, str] | None = None):
    """(onnx model, layers, kv heads, head size) of a decoder file; ``memory`` (bytes, who holds them)
    bounds its weights before any float work (folding, the float check) that takes ~10 bytes per weight."""
    model = read_model(path)
    L, kvh, hs = _interface(model, path)
    if memory:
        weights = sum(np.prod(t.dims, dtype=np.int64) for t in model.graph.initializer if len(t.dims) >= 2)
        check_fits(f"decoder {path}", {"weights": int(weights)}, *memory)
    return model, L, kvh, hs


def fold(model, L: int, kvh: int, hs: int, past: int = PAST, rows: int = ROWS) -> Graph:
    """The decoder as an IR graph at batch 1, ``past`` cached and ``rows`` new positions, its shape
    machinery folded by the compiler's passes (the first five of passes/pipeline.py)."""
    shapes = {"input_ids": (1, rows), "attention_mask": (1, past + rows), "position_ids": (1, rows)}
    shapes.update({f"past_key_values.{i}.{kv}": (1, kvh, past, hs) for i in range(L) for kv in ("key", "value")})
    g = import_model(model, shapes)
    for p in (validate_ops, fold_constants, complete_types, fold_constants, drop_noops):
        g = p(g)
    return g


class _Walker:
    """Data-flow lookups on the folded graph; every failure names the node or tensor it stopped at."""

    def __init__(self, g: Graph, path):
        self.g, self.u, self.path = g, g.uses(), path

    def fail(self, where: str, what: str):
        raise TinydeployError(f"{self.path}: {where}: {what}; not the llama decoder layout this importer recognises")

    def const(self, name: str) -> np.ndarray | None:
        t = self.g.tensors[name]
        return np.asarray(t.data) if t.is_const else None

    def source(self, name: str):
        """The first producer upstream of ``name`` that is not data movement."""
        p = self.u.producer(name)
        while p is not None and p.op in MOVES:
            p = self.u.producer(p.inputs[0])
        return p

    def weight_matmul(self, node, where: str) -> np.ndarray:
        """The weight [in, out] of a MatMul by a constant matrix."""
        if node is None or node.op != "MatMul" or (w := self.const(node.inputs[1])) is None or w.ndim != 2:
            self.fail(where, f"expected a MatMul by a constant matrix, found "
                      f"{'nothing' if node is None else f'{node.op} node {node.name}'}")
        return w.astype(np.float32)

    def projections(self, name: str, count: int, where: str) -> list:
        """The ``count`` MatMuls by constant matrices that ``name`` is computed from (not looking past
        a MatMul: the attention's own products have no constant operand)."""
        seen, todo, found = set(), [name], []
        while todo:
            t = todo.pop()
            p = self.u.producer(t)
            if t in seen or p is None:
                continue
            seen.add(t)
            if p.op == "MatMul":
                found += [p] if self.const(p.inputs[1]) is not None and p not in found else []
                continue
            todo += [i for i in p.inputs if i and not self.g.tensors[i].is_const]
        if len(found) != count:
            self.fail(where, f"computed from {len(found)} weight matrices, expected {count}")
        return found

    def consumers(self, name: str, op: str) -> list:
        """Consumers of ``name`` of type ``op``, looking through data movement."""
        out = []
        for c in self.u.consumers(name):
            out += self.consumers(c.outputs[0], op) if c.op in MOVES else [c] if c.op == op else []
        return out

    def rmsnorm(self, y: str, where: str) -> tuple[str, np.ndarray, float]:
        """(input x, gamma, eps) of the RMSNorm giving ``y`` = gamma * (x * 1 / sqrt(mean(x^2) + eps))."""
        p = self.source(y)
        gamma = [self.const(i) for i in p.inputs] if p is not None and p.op == "Mul" else [None, None]
        k = 0 if gamma[0] is not None else 1
        inner = self.source(p.inputs[1 - k]) if gamma[k] is not None else None
        if inner is None or inner.op != "Mul":
            self.fail(where, f"expected RMSNorm's Mul by a constant weight producing '{y}'")
        squared = lambda i: any(c.op == "Pow" or c.op == "Mul" and c.inputs[0] == c.inputs[1]  # noqa: E731
                                for c in self.u.consumers(i))
        x = next((i for i in inner.inputs if squared(i)), None)
        todo, eps = [i for i in inner.inputs if i != x], None
        while todo and eps is None:   # the epsilon: the scalar added before the square root
            a = self.u.producer(todo.pop())
            if a is not None and a.op == "Add":
                eps = next((float(v.reshape(-1)[0]) for i in a.inputs if (v := self.const(i)) is not None and v.size == 1), None)
            todo += [i for i in a.inputs if not self.g.tensors[i].is_const] if a is not None else []
        if x is None or eps is None:
            self.fail(f"{where} (node {inner.name})", "expected an RMSNorm (x^2, mean, + eps, sqrt)")
        return x, gamma[k].reshape(-1).astype(np.float32), eps

    def residual(self, x: str, where: str):
        """(output, MatMul node) of the Add x + MatMul(., W) that closes the residual branch started at x."""
        for a in self.u.consumers(x):
            if a.op == "Add":
                p = self.source(a.inputs[1] if a.inputs[0] == x else a.inputs[0])
                if p is not None and p.op == "MatMul" and self.const(p.inputs[1]) is not None:
                    return a.outputs[0], p
        self.fail(where, f"no residual Add of tensor '{x}' with a projection")


def to_pairs(w: np.ndarray, heads: int) -> np.ndarray:
    """Rows of a q/k projection from rotate-halves order (Hugging Face) to consecutive pairs (llama2.c)."""
    rows, cols = w.shape
    return w.reshape(heads, 2, rows // heads // 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


def _halves(a: np.ndarray, hs: int) -> np.ndarray:
    """The last axis (head_size) of cached keys from consecutive pairs to halves."""
    return np.concatenate([a[..., 0:hs:2], a[..., 1:hs:2]], axis=-1)


def recognise(g: Graph, path, L: int, kvh: int, hs: int) -> tuple[LlamaConfig, LlamaWeights]:
    """The llama config and float weights of the folded decoder graph."""
    w = _Walker(g, path)
    emb_node = next((c for c in w.u.consumers("input_ids") if c.op == "Gather"), None)
    if emb_node is None or (emb := w.const(emb_node.inputs[0])) is None or emb.ndim != 2:
        w.fail("input 'input_ids'", "expected a Gather from a constant embedding table")
    x, D = emb_node.outputs[0], emb.shape[1]
    if D % hs or (D // hs) % kvh or hs % 2:
        w.fail("input 'past_key_values.0.key'", f"head size {hs} and {kvh} kv heads do not fit the width {D}")
    H = D // hs
    mats, norms, eps = {n: [] for n in MATRICES}, {"att": [], "ffn": []}, set()

    def norm(y, x, where, kind):
        xr, gamma, e = w.rmsnorm(y, where)
        if xr != x:
            w.fail(where, f"the norm reads '{xr}', not the residual stream '{x}'")
        norms[kind].append(gamma), eps.add(e)

    for l in range(L):
        where = f"layer {l}"
        v, = w.projections(f"present.{l}.value", 1, f"output 'present.{l}.value'")
        k, = w.projections(f"present.{l}.key", 1, f"output 'present.{l}.key'")
        if k.inputs[0] != v.inputs[0]:
            w.fail(where, f"the k and v projections read different tensors ('{k.inputs[0]}', '{v.inputs[0]}')")
        norm(k.inputs[0], x, f"{where}, attention norm", "att")
        q = [m for m in w.consumers(k.inputs[0], "MatMul") if m is not k and m is not v and w.const(m.inputs[1]) is not None]
        if len(q) != 1:
            w.fail(where, f"expected one q projection beside k and v, found {len(q)}")
        h, o = w.residual(x, f"{where}, attention output")
        x, down = w.residual(h, f"{where}, feed-forward output")
        ffn = w.projections(down.inputs[0], 2, f"{where}, feed-forward")
        gate = [m for m in ffn if w.consumers(m.outputs[0], "Sigmoid")]
        if len(gate) != 1 or ffn[0].inputs[0] != ffn[1].inputs[0]:
            w.fail(f"{where}, feed-forward", "expected silu(x W1) * (x W3) of one normed input")
        up = ffn[1 - ffn.index(gate[0])]
        norm(up.inputs[0], h, f"{where}, feed-forward norm", "ffn")
        for n, node in [("wq", q[0]), ("wk", k), ("wv", v), ("wo", o), ("w1", gate[0]), ("w3", up), ("w2", down)]:
            mats[n].append(w.weight_matmul(node, f"{where}, {n}").T)
        mats["wq"][-1], mats["wk"][-1] = to_pairs(mats["wq"][-1], H), to_pairs(mats["wk"][-1], kvh)
    cls = w.source("logits")
    wcls = w.weight_matmul(cls, "output 'logits'").T
    xr, gamma_f, e = w.rmsnorm(cls.inputs[0], "final norm")
    if xr != x:
        w.fail("final norm", f"reads '{xr}', not the last layer's output '{x}'")
    if len(eps | {e}) != 1:
        w.fail("norms", f"differing epsilons {sorted(eps | {e})}")
    shared = np.array_equal(wcls, emb)
    cfg = LlamaConfig(D, mats["w1"][0].shape[0], L, H, kvh, emb.shape[0], CONTEXT, shared,
                      norm_eps=float(str(np.float32(e))), rope_theta=_rope_theta(w, hs))  # as configured, not float32
    f32 = lambda a: np.ascontiguousarray(np.stack(a) if isinstance(a, list) else a, np.float32)  # noqa: E731
    m = {n: f32(mats[n]) for n in MATRICES}
    return cfg, LlamaWeights(f32(emb), f32(norms["att"]), m["wq"], m["wk"], m["wv"], m["wo"], f32(norms["ffn"]),
                             m["w1"], m["w2"], m["w3"], f32(gamma_f), f32(emb if shared else wcls), version=1)


def _rope_theta(w: _Walker, hs: int) -> float:
    """The RoPE base from the inverse frequencies the angles are computed with (the constant operand
    of the product feeding Cos): inv_freq[i] = theta^(-2i/hs)."""
    cos = next((n for n in w.g.nodes if n.op == "Cos"), None)
    todo, inv = [cos.inputs[0]] if cos else [], None
    while todo and inv is None:
        p = w.u.producer(todo.pop())
        if p is None:
            continue
        consts = [c for i in p.inputs if (c := w.const(i)) is not None and c.size == hs // 2]
        inv = consts[0].reshape(-1).astype(np.float64) if p.op in ("MatMul", "Mul") and consts else None
        todo += [i for i in p.inputs if not w.g.tensors[i].is_const]
    if inv is None or hs < 4 or not inv[1] > 0:
        w.fail("rotary embedding", "no Cos of positions times constant inverse frequencies")
    return float(f"{inv[1] ** (-hs / 2):.5g}")   # the configured base, not its float32 rounding


def _check(g: Graph, cfg: LlamaConfig, w: LlamaWeights, path, past: int, rows: int) -> None:
    """The folded graph (``past`` cached positions, ``rows`` new) and the recognised float llama agree."""
    fm = FloatLlama(cfg, w, past + rows)
    toks = (np.arange(past + rows) * 7 + 1) % cfg.vocab_size
    fm.forward_many(toks[:past], 0)
    ref = fm.forward_many(toks[past:], past)
    heads = lambda c, l, n: c[l, :n].reshape(n, cfg.n_kv_heads, cfg.head_size).transpose(1, 0, 2)  # noqa: E731
    feed = {"input_ids": toks[None, past:], "attention_mask": np.ones((1, past + rows)),
            "position_ids": np.arange(past, past + rows)[None]}
    want = {"logits": ref}
    for l in range(cfg.n_layers):
        feed[f"past_key_values.{l}.key"] = _halves(heads(fm.key_cache, l, past), cfg.head_size)
        feed[f"past_key_values.{l}.value"] = heads(fm.value_cache, l, past)
        want[f"present.{l}.key"] = _halves(heads(fm.key_cache, l, past + rows), cfg.head_size)
        want[f"present.{l}.value"] = heads(fm.value_cache, l, past + rows)
    feed = {k: np.asarray(v, g.tensors[k].dtype).reshape(g.tensors[k].shape) for k, v in feed.items()}
    with np.errstate(all="ignore"):
        got = run_graph(g, feed)
    for name, ref in want.items():
        err = float(np.max(np.abs(np.asarray(got[name], np.float64).reshape(ref.shape) - ref)))
        if not err <= TOLERANCE * max(float(np.abs(ref).max()), 1.0):
            raise TinydeployError(f"{path}: output '{name}' ({past} cached positions, {rows} new) differs by {err:.3g} "
                                  f"from the llama layers recognised in it (RMSNorm, rotate-half RoPE, causal attention, "
                                  f"SiLU-gated feed-forward); not a layout this importer recognises")


def _q80(cfg: LlamaConfig, w: LlamaWeights, path) -> LlamaWeights:
    """The float weights in Q8_0 groups of GROUP (each layer's tensor flattened), as a version-2
    checkpoint holds them, and their dequantized values as its float weights."""
    names = ["token_embedding", *MATRICES] + ([] if cfg.shared_classifier else ["wcls"])
    quantized, dequantized = {}, {}
    for n in names:
        a = getattr(w, n)
        stack = a if a.ndim == 3 else a[None]   # per-layer matrices are stacked, the tables are one
        if stack[0].size % GROUP:
            raise TinydeployError(f"{path}: {n} has {stack[0].size} values{' per layer' if a.ndim == 3 else ''}, "
                                  f"not a whole number of Q8_0 groups of {GROUP}")
        qs, ss = zip(*(quantize_q80(t, GROUP) for t in stack))
        qt = QuantizedTensor(np.stack(qs), np.stack(ss), GROUP)
        quantized[n] = qt if a.ndim == 3 else QuantizedTensor(qt.q[0], qt.scales[0], GROUP)
        dequantized[n] = quantized[n].dequantize()
    dequantized.setdefault("wcls", dequantized["token_embedding"])
    return replace(w, **dequantized, version=2, group_size=GROUP, quantized=quantized)


def stated_context(path: Path) -> int:
    """The positions an export states: max_position_embeddings of the config.json optimum writes beside
    the model, else CONTEXT."""
    f = Path(path).parent / "config.json"
    if not f.is_file():
        return CONTEXT
    try:
        n = json.loads(f.read_text()).get("max_position_embeddings", CONTEXT)
    except (OSError, ValueError, AttributeError) as e:
        raise TinydeployError(f"{f}: not a readable JSON object ({type(e).__name__}); give the context with --context") from None
    if type(n) is not int or n < 2:
        raise TinydeployError(f"{f}: max_position_embeddings is {n!r}, not an integer >= 2")
    return n


def read_decoder(path: str | Path, context: int | None = None,
                 memory: tuple[int, str] | None = None) -> tuple[LlamaConfig, LlamaWeights]:
    """The llama config (a KV cache of ``context`` positions, default stated_context) and Q8_0 weights
    of a float ONNX decoder; ``memory`` as read_interface."""
    model, L, kvh, hs = read_interface(path, memory)
    if quantized(model, path):
        raise TinydeployError(f"{path}: a QDQ decoder; it compiles as it is (generate), not into the llama "
                              f"route's integer design, which quantizes float decoders itself")
    g = fold(model, L, kvh, hs)
    cfg, w = recognise(g, path, L, kvh, hs)
    _check(g, cfg, w, path, PAST, ROWS)
    _check(fold(read_model(path), L, kvh, hs, PAST + ROWS, 1), cfg, w, path, PAST + ROWS, 1)   # a decode step
    return replace(cfg, seq_len=context or stated_context(path)), _q80(cfg, w, path)
