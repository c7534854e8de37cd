"""`--dialect deeploy`: Deeploy's files read as their exporters meant them (docs/deeploy_dialect.md).
Plain ONNX stays strict; with the option:

- an ONNX op newer than the file's opset (LayerNormalization, 17, at opset 12; HardSwish, 14, at 10;
  Gelu, 20, at 19) is that op as first defined;
- a Pad at opset >= 11 carrying opset 2's attributes `pads` and `value` is opset 2's Pad;
- a graph input with a size-0 dimension read only by Concats (an empty KV cache) is dropped.

Such a node moves to the dialect's private domain, where ONNX's checker and inference pass over it
(our own shape inference types it), with an `_opset` attribute: the opset the IR op reads it at.
"""
from __future__ import annotations

import functools

import onnx
from onnx import helper

from .dialect import PRIVATE

DIALECTS = ("onnx", "deeploy")   # --dialect's choices


@functools.cache
def _introduced() -> dict[str, int]:
    """ONNX op -> the opset that introduced it."""
    first: dict[str, int] = {}
    for s in onnx.defs.get_all_schemas_with_history():
        if s.domain in ("", "ai.onnx"):
            first[s.name] = min(first.get(s.name, s.since_version), s.since_version)
    return first


def read_leniently(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrites the model in place (see the module docstring); returns it."""
    version = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    moved = False
    for n in model.graph.node:
        if n.domain not in ("", "ai.onnx"):
            continue
        first = _introduced().get(n.op_type)
        if first is not None and first > version:
            opset = first
        elif n.op_type == "Pad" and version >= 11 and any(a.name == "pads" for a in n.attribute):
            opset = 2
        else:
            continue
        n.domain, moved = PRIVATE, True
        n.attribute.append(helper.make_attribute("_opset", opset))
    if moved and not any(o.domain == PRIVATE for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(PRIVATE, 1))
    _drop_empty_concat_inputs(model.graph)
    return model


def _drop_empty_concat_inputs(g: onnx.GraphProto) -> None:
    """A graph input with a size-0 dimension read only by Concats (the empty KV cache of Deeploy's
    prefill graphs, which its harness does not feed) is no input: a Concat of nothing and x is x."""
    readers: dict[str, set] = {}
    for n in g.node:
        for i in n.input:
            readers.setdefault(i, set()).add(n.op_type)
    empty = {i.name for i in g.input if i.type.tensor_type.HasField("shape")
             and any(d.HasField("dim_value") and d.dim_value == 0 for d in i.type.tensor_type.shape.dim)
             and readers.get(i.name) == {"Concat"}}
    if not empty:
        return
    for n in g.node:
        if n.op_type == "Concat" and empty & set(n.input):
            kept = [i for i in n.input if i not in empty]
            del n.input[:]
            n.input.extend(kept)
    kept = [i for i in g.input if i.name not in empty]
    del g.input[:]
    g.input.extend(kept)
