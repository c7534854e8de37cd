"""ONNX file → ir.Graph: read, check, normalise QOperator nodes, infer shapes, import.

Every refusal is one TinydeployError naming the node, the op or tensor, and why.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from ..errors import TinydeployError
from ..ir import Graph, Node, Tensor
from ..limits import check_extent
from .dialect import PRIVATE, hide_dialect
from .lenient import read_leniently
from .precheck import precheck
from .qoperator import normalize_qoperator
from .window_attrs import check_window_attrs
from .toposort import toposort

# numpy dtypes we carry; anything else is refused with the tensor's name.
_DTYPES = {
    onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.INT8: np.int8,
    onnx.TensorProto.UINT8: np.uint8, onnx.TensorProto.INT16: np.int16,
    onnx.TensorProto.UINT16: np.uint16, onnx.TensorProto.INT32: np.int32,
    onnx.TensorProto.UINT32: np.uint32, onnx.TensorProto.UINT64: np.uint64,
    onnx.TensorProto.INT64: np.int64, onnx.TensorProto.BOOL: np.bool_,
    onnx.TensorProto.DOUBLE: np.float64,
}


def np_dtype(elem_type: int, what: str) -> np.dtype:
    if elem_type not in _DTYPES:
        name = onnx.TensorProto.DataType.Name(elem_type) if elem_type else "undefined"
        raise TinydeployError(f"{what}: data type {name} is not supported")
    return np.dtype(_DTYPES[elem_type])


def read_model(path: str | Path) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise TinydeployError(f"cannot read {path}: no such file")
    data = path.read_bytes()
    try:
        model = onnx.ModelProto()
        model.ParseFromString(data)
    except Exception as e:  # protobuf raises its own DecodeError
        raise TinydeployError(f"cannot read {path}: not a valid ONNX protobuf ({type(e).__name__})") from None
    if not model.graph.node and not model.graph.output:
        raise TinydeployError(f"cannot read {path}: the file holds no ONNX graph")
    _no_external_data(model)
    return model


def _no_external_data(model: onnx.ModelProto) -> None:
    """Before anything reads a weight (numpy_helper would open the named file) or ONNX's checker
    misleads ("should be stored in w.bin, but it is not regular file")."""
    for init in model.graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            raise TinydeployError(f"initializer '{init.name}': external data files are not supported")


def load_onnx(path: str | Path, shapes: dict[str, tuple[int, ...]] | None = None, dialect: str = "onnx") -> Graph:
    return import_model(read_model(path), shapes or {}, dialect)


def import_model(model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]] | None = None,
                 dialect: str = "onnx") -> Graph:
    """dialect "deeploy": Deeploy's files read leniently (frontend/lenient.py); "onnx": strictly."""
    shapes = shapes or {}
    _no_external_data(model)
    precheck(model)
    if dialect == "deeploy":
        read_leniently(model)
    g = model.graph
    _check_refs(g)
    order = toposort(g)
    del g.node[:]
    g.node.extend(order)
    check_window_attrs(g, known_dims(g, g.input))   # names the user's node, before the QOperator rewrite
    model = normalize_qoperator(hide_dialect(model))
    _check_ops_exist(model)
    stale = _set_input_shapes(model.graph, shapes)
    declared = _forget_stated_types(model.graph, keep_shapes=not stale)
    try:  # before the checker: it fills in the output types the checker needs
        model = shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as e:
        raise TinydeployError(f"ONNX shape inference failed: {_first_line(str(e))}") from None
    g = model.graph
    check_window_attrs(g, known_dims(g, list(g.input) + list(g.value_info)))  # ranks of inner values now known
    for o in g.output:
        if o.type.WhichOneof("value") in (None, "tensor_type") and not o.type.tensor_type.HasField("shape"):
            raise TinydeployError(f"graph output '{o.name}': its shape cannot be inferred ({_strict_error(model)})")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise TinydeployError(f"invalid ONNX model: {_first_line(str(e))}") from None
    return _to_ir(model, declared)


def _forget_stated_types(g: onnx.GraphProto, keep_shapes: bool) -> dict[str, tuple]:
    """Drop the types the file states for inner values (value_info) and the output dtypes, so that
    ONNX inference derives them from the inputs; ours (passes/complete_types.py) derives every type
    again and checks it against the declared output types returned here. Declared output shapes
    stay (ONNX inference cannot always derive them) unless --shape made them stale."""
    declared = {}
    for o in g.output:
        tt = o.type.tensor_type
        if o.type.HasField("tensor_type") and tt.elem_type:
            declared[o.name] = (_dims(o) if keep_shapes else None, np_dtype(tt.elem_type, f"graph output '{o.name}'"))
            tt.elem_type = onnx.TensorProto.UNDEFINED   # a wrong one would stop ONNX inference
            if not keep_shapes:
                tt.ClearField("shape")
    del g.value_info[:]
    return declared


def _strict_error(model: onnx.ModelProto) -> str:
    """ONNX's own reason (naming the node) when strict inference has one, else the usual causes."""
    try:
        shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as e:
        return "ONNX shape inference: " + _first_line(str(e)).split("Inference error(s): ")[-1]
    return "inconsistent shapes upstream, or a dynamic shape: give inputs with --shape"


def _check_ops_exist(model: onnx.ModelProto) -> None:
    """An op unknown to ONNX itself (typo, custom domain) is named before the checker's prose."""
    version = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    known: dict[str, bool] = {}   # per op type: a schema lookup per node is slow on big graphs
    for k, n in enumerate(model.graph.node):
        if n.domain == PRIVATE:   # Deeploy's dialect (frontend/dialect.py)
            continue
        if n.domain not in ("", "ai.onnx"):
            raise TinydeployError(f"node {n.name or f'{n.op_type}_{k}'}: operator {n.domain}::{n.op_type} "
                                  f"is not supported (custom domain)")
        if n.op_type not in known:
            try:
                known[n.op_type] = onnx.defs.has(n.op_type) and \
                    not onnx.defs.get_schema(n.op_type, version).deprecated
            except onnx.defs.SchemaError:  # introduced after this opset
                known[n.op_type] = False
        if not known[n.op_type]:
            raise TinydeployError(f"node {n.name or f'{n.op_type}_{k}'}: {n.op_type} is not an ONNX operator "
                                  f"of opset {version}")


def _first_line(msg: str) -> str:
    lines = [ln.strip() for ln in msg.strip().splitlines() if ln.strip()]
    return lines[-1] if lines and lines[0].startswith("[ONNXRuntimeError]") else (lines[0] if lines else msg)


def _check_refs(g: onnx.GraphProto) -> None:
    """Missing initializers / dangling names: name the node and tensor before the checker's prose."""
    known = {i.name for i in g.input} | {i.name for i in g.initializer} | {""}
    produced = {o for n in g.node for o in n.output}
    for n in g.node:
        for i in n.input:
            if i not in known and i not in produced:
                raise TinydeployError(
                    f"node {n.name or n.op_type} ({n.op_type}): input '{i}' is neither a graph input, "
                    f"an initializer nor produced by a node (missing initializer?)")
    for o in g.output:
        if o.name not in known and o.name not in produced:
            raise TinydeployError(f"graph output '{o.name}' is never produced")


def _set_input_shapes(g: onnx.GraphProto, shapes: dict[str, tuple[int, ...]]) -> bool:
    """Apply --shape; True when it changed a size the model states (its output shapes are then stale)."""
    changed = False
    inits = {i.name for i in g.initializer}
    names = [i.name for i in g.input if i.name not in inits]
    for name in shapes:
        if name not in names:
            raise TinydeployError(f"--shape names '{name}', but the graph inputs are {', '.join(names)}")
    for inp in g.input:
        if inp.name in inits:
            continue
        dims = inp.type.tensor_type.shape.dim
        if inp.name in shapes:
            new = shapes[inp.name]
            if len(new) != len(dims) and len(dims):
                raise TinydeployError(
                    f"--shape {inp.name}: rank {len(new)} given, the model's input has rank {len(dims)}")
            check_extent(f"input '{inp.name}' (--shape)", new, np.dtype(_DTYPES.get(inp.type.tensor_type.elem_type, np.uint8)))
            changed |= any(d.HasField("dim_value") and d.dim_value != v for d, v in zip(dims, new))
            del dims[:]
            for v in new:
                dims.add().dim_value = int(v)
            continue
        for k, d in enumerate(dims):
            if not d.HasField("dim_value") or d.dim_value <= 0:
                what = (f"a size of {d.dim_value}" if d.HasField("dim_value")
                        else f"a dynamic dimension '{d.dim_param or '?'}'")
                raise TinydeployError(
                    f"input '{inp.name}' has {what} (axis {k}); give its size with "
                    f"--shape {inp.name}=" + "x".join(str(x.dim_value) if x.dim_value > 0 else "N" for x in dims))
    return changed


def _attrs(n: onnx.NodeProto) -> dict:
    out = {}
    for a in n.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, onnx.TensorProto):
            v = numpy_helper.to_array(v)
        elif isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [x.decode() for x in v]
        elif isinstance(v, (onnx.GraphProto,)):
            raise TinydeployError(f"node {n.name or n.op_type} ({n.op_type}): subgraphs are not supported")
        out[a.name] = v
    return out


def _dims(vi: onnx.ValueInfoProto) -> list | None:
    """The shape a value info states, None for an unknown dimension; None without a shape."""
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]


def known_dims(g: onnx.GraphProto, value_infos) -> dict[str, list]:
    out = {i.name: list(i.dims) for i in g.initializer}
    out.update({vi.name: _dims(vi) for vi in value_infos if vi.name not in out and _dims(vi) is not None})
    return out


def _value_info(vi: onnx.ValueInfoProto) -> tuple[tuple[int, ...] | None, np.dtype]:
    tt = vi.type.tensor_type
    dtype = np_dtype(tt.elem_type, f"tensor '{vi.name}'")
    if not tt.HasField("shape"):
        return None, dtype
    dims = []
    for d in tt.shape.dim:
        if not d.HasField("dim_value"):
            return None, dtype
        dims.append(int(d.dim_value))
    return tuple(dims), dtype


def _to_ir(model: onnx.ModelProto, declared: dict[str, tuple]) -> Graph:
    g = model.graph
    domains = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    tensors: dict[str, Tensor] = {}
    for init in g.initializer:
        np_dtype(init.data_type, f"initializer '{init.name}'")
        arr = numpy_helper.to_array(init)
        tensors[init.name] = Tensor(init.name, tuple(arr.shape), arr.dtype, arr)
    infos = {vi.name: vi for vi in list(g.value_info) + list(g.output) + list(g.input)}
    graph_inputs = {i.name for i in g.input}
    stated = {name: [(dims, dtype, "the model declares")] for name, (dims, dtype) in declared.items()}
    for name, vi in infos.items():
        if name in tensors or (name not in graph_inputs and not vi.type.tensor_type.elem_type):
            continue  # (ONNX inference keeps a declared output that contradicts it untyped)
        shape, dtype = _value_info(vi)
        if shape is not None:
            check_extent(f"tensor '{name}'", shape, dtype)
        if name in graph_inputs:   # the interface: taken as given (or as --shape set it)
            tensors[name] = Tensor(name, shape, dtype)
        else:                      # checked against our own inference, never used
            stated.setdefault(name, []).append((_dims(vi), dtype, "ONNX shape inference gives"))
    nodes = []
    for k, n in enumerate(g.node):
        name = n.name or f"{n.op_type}_{k}"
        if n.domain not in ("", "ai.onnx", PRIVATE):
            raise TinydeployError(f"node {name}: operator {n.domain}::{n.op_type} is not supported")
        attrs = _attrs(n)
        if n.op_type == "Constant":
            arr = _constant_value(name, attrs)
            tensors[n.output[0]] = Tensor(n.output[0], tuple(arr.shape), arr.dtype, arr)
            continue
        attrs.setdefault("_opset", domains.get("ai.onnx", 0))   # a node read leniently carries its own
        for o in n.output:
            if o and o not in tensors:
                tensors[o] = Tensor(o, None, None)
        nodes.append(Node(n.op_type, name, list(n.input), [o for o in n.output], attrs))
    inits = {i.name for i in g.initializer}
    inputs = [i.name for i in g.input if i.name not in inits]
    graph = Graph(g.name or "network", tensors, nodes, inputs, [o.name for o in g.output], stated)
    if not graph.outputs:
        raise TinydeployError("the graph has no outputs; nothing to compute")
    for o in graph.outputs:
        if graph.tensors[o].is_const:
            raise TinydeployError(f"graph output '{o}' is a constant; nothing to compute")
    return graph


def _constant_value(name: str, attrs: dict) -> np.ndarray:
    for key, dtype in (("value", None), ("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in attrs:
            return np.asarray(attrs[key], dtype=dtype)
    raise TinydeployError(f"node {name} (Constant): only tensor, float and int values are supported")
