"""A QDQ-quantized ONNX decoder (onnxruntime's quantize_static on optimum's text-generation-with-past
layout) as one static decode step: the model itself, through the generic QDQ lowering, with its own
scales (no llama-specific integer design).

The step takes 1 new token with C - 1 cached positions (C: the context, at most the positions a run
reaches: the step attends over all C slots, masked or not). Each past/present pair
becomes one persistent state of C slots: its Concat(past, new) -> present is replaced by ShiftIn
(ops/shape.py: present = concat(state[1:], new), then state = present), so after every step the
state holds the newest C positions with the new one last. Attention over the masked set does not
depend on slot order (RoPE is applied before caching, by position_ids), so position p is fed as
input_ids = token, position_ids = p and attention_mask marking the last p + 1 slots valid, which is
what onnxruntime computes with a growing past of p positions (up to float summation order in the
unquantized softmax). The prompt is fed one token per step.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import TinydeployError
from ...ir import Graph, Node, Tensor
from .onnx_decoder import fold, stated_context

_MOVES = ("Reshape", "Transpose", "Unsqueeze", "Squeeze", "Identity", "Expand")   # commute with elementwise ops


@dataclass
class QdqDecoder:
    path: Path
    model: object          # the onnx ModelProto
    layers: int
    kv_heads: int
    head_size: int
    vocab_size: int
    seq_len: int           # C: positions of the cache (build_program trims it to what a run reaches)

    def graph(self) -> Graph:
        """The decode step (1 token, C slots of state per past/present pair), outputs logits only."""
        L, C = self.layers, self.seq_len
        g = fold(self.model, L, self.kv_heads, self.head_size, past=C - 1, rows=1)
        u = g.uses()
        for i in range(L):
            for kv in ("key", "value"):
                past, present = f"past_key_values.{i}.{kv}", f"present.{i}.{kv}"
                cat = u.producer(present)
                if cat is None or cat.op != "Concat" or cat.inputs[0] != past or len(cat.inputs) != 2 \
                        or [n for n in u.consumers(past) if n is not cat]:
                    raise TinydeployError(f"{self.path}: output '{present}' is not Concat('{past}', new) with no "
                                          f"other use of '{past}'; its cache cannot become a state")
                t = g.tensors[present]
                state = g.unique(f"cache.{i}.{kv}")
                g.tensors[state] = Tensor(state, t.shape, t.dtype, state=True)
                g.nodes[g.nodes.index(cat)] = Node("ShiftIn", cat.name, [state, cat.inputs[1]], [present],
                                                   {"axis": 2})
                g.inputs.remove(past)
                del g.tensors[past]
                _int8_state(g, g.uses(), present, state)
        g.outputs = ["logits"]
        return g

    def feeds(self, token: int, pos: int) -> dict[str, np.ndarray]:
        """The step's inputs at position ``pos`` (as the generated main writes them)."""
        C = self.seq_len
        return {"input_ids": np.array([[token]], np.int64), "position_ids": np.array([[pos]], np.int64),
                "attention_mask": (np.arange(C) >= C - 1 - pos).astype(np.int64)[None]}


def _int8_state(g: Graph, u, present: str, state: str) -> None:
    """Where the cache reaches a per-tensor QuantizeLinear only through data movement and products by a
    scalar constant (repeat_kv, the head transpose, the score scaling), those products and the
    quantization move before the ShiftIn, onto the one new slot: the state holds int8 (a quarter of the
    bytes), each position is quantized once instead of at every step, and the values are the same (each
    element goes through the same float operations; data movement commutes with them)."""
    def scalar(name):
        return g.tensors[name].is_const and g.tensors[name].size == 1

    chain, t = [], present
    while len(cs := u.consumers(t)) == 1:
        c = cs[0]
        if c.op == "Mul" and all(scalar(i) for i in c.inputs if i != t) or c.op in _MOVES:
            chain.append(c)
            t = c.outputs[0]
        elif c.op == "QuantizeLinear" and c.inputs[0] == t and all(scalar(i) for i in c.inputs[1:] if i):
            chain.append(c)
            break
        else:
            return
    if not chain or chain[-1].op != "QuantizeLinear":
        return
    shift = u.producer(present)
    x, at = shift.inputs[1], g.nodes.index(shift)
    prev = present
    for e in chain:   # the elementwise steps, applied to the new slot before the shift
        if e.op in _MOVES:
            prev = e.outputs[0]
            continue
        out = g.unique(f"{e.outputs[0]}_new")
        g.tensors[out] = Tensor(out, g.tensors[x].shape, g.tensors[e.outputs[0]].dtype)
        g.nodes.insert(at, Node(e.op, f"{e.name}_new", [x if i == prev else i for i in e.inputs], [out], dict(e.attrs)))
        at, x, prev = at + 1, out, e.outputs[0]
        g.nodes.remove(e)
    shift.inputs[1] = x
    q_out, t = chain[-1].outputs[0], present
    for m in [c for c in chain if c.op in _MOVES]:   # the data movement, now of the quantized cache
        m.inputs[0], t = t, m.outputs[0]
    for name in [present, state] + [c.outputs[0] for c in chain if c.op in _MOVES]:
        g.tensors[name].dtype = g.tensors[x].dtype
        g.stated.pop(name, None)
    for n in g.nodes:   # the quantized tensor's readers read the moved cache
        n.inputs = [t if i == q_out else i for i in n.inputs]
    del g.tensors[q_out]


def q8_logits(x: np.ndarray) -> np.ndarray:
    """Float logits -> int32 in 1/256 units, rounded half away from zero, in float32 as the main does."""
    y = np.asarray(x, np.float32).reshape(-1) * np.float32(256)
    r = np.trunc(y)
    r += (y - r >= np.float32(0.5)).astype(np.float32) - (r - y >= np.float32(0.5)).astype(np.float32)
    return r.astype(np.int32)


def read_qdq_decoder(path: Path, model, layers: int, kv_heads: int, head_size: int,
                     context: int | None) -> QdqDecoder:
    emb = next((n for n in model.graph.node if n.op_type == "Gather" and "input_ids" in n.input), None)
    inits = {t.name: t for t in model.graph.initializer}
    if emb is None or emb.input[0] not in inits or len(inits[emb.input[0]].dims) != 2:
        raise TinydeployError(f"{path}: input 'input_ids': expected a Gather from a constant embedding table")
    return QdqDecoder(path, model, layers, kv_heads, head_size, int(inits[emb.input[0]].dims[0]),
                      context or stated_context(path))
