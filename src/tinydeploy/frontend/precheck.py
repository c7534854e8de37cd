"""Cheap refusals before any expensive work (shape inference and the checker can take minutes and
gigabytes on a hostile file): an opset newer than the compiler knows, and nodes carrying subgraphs
(If, Loop, Scan, …), each named."""
from __future__ import annotations

import onnx

from ..errors import TinydeployError
from .dialect import DOMAIN_OPSETS

# Newest opset per domain the frontend understands: the default domain as the pinned onnx package
# defines it (its checker and shape inference are ours), com.microsoft for the QOperator ops of
# frontend/qoperator.py (all in its opset 1), and the domains of Deeploy's dialect (frontend/dialect.py,
# which admit only its ops). Other domains are refused node by node.
NEWEST_OPSET = {"": onnx.defs.onnx_opset_version(), "com.microsoft": 1, **DOMAIN_OPSETS}


def precheck(model: onnx.ModelProto) -> None:
    for o in model.opset_import:
        domain = "" if o.domain == "ai.onnx" else o.domain
        newest = NEWEST_OPSET.get(domain)
        if newest is not None and o.version > newest:
            raise TinydeployError(f"the model needs opset {o.version} of domain '{domain or 'ai.onnx'}'; the "
                                  f"newest supported is {newest}")
    for k, n in enumerate(model.graph.node):
        if any(a.HasField("g") or len(a.graphs) for a in n.attribute):
            raise TinydeployError(f"node {n.name or f'{n.op_type}_{k}'} ({n.op_type}): control flow and other "
                                  f"subgraphs are not supported")
