"""Window attributes of convolutions and pools (kernel_shape, strides, dilations, pads, …), checked
before shape inference: ONNX inference drops a node with a bad value silently, which would surface
later as "shape cannot be inferred", pointing at the inputs instead of the attribute.

Each refusal names the node, the attribute, its value and what is allowed.
"""
from __future__ import annotations

import onnx
from onnx import helper

from ..errors import TinydeployError

# op → index of the weight input (None: a pool, kernel_shape is required)
WINDOW_OPS = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3, "ConvTranspose": 1,
              "MaxPool": None, "AveragePool": None, "LpPool": None}
AUTO_PAD = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def check_window_attrs(g: onnx.GraphProto, dims: dict[str, list]) -> None:
    """`dims`: the shapes known so far by tensor name (None for an unknown dimension)."""
    for k, n in enumerate(g.node):
        if n.op_type in WINDOW_OPS and n.domain in ("", "ai.onnx"):
            _check(n, f"node {n.name or f'{n.op_type}_{k}'} ({n.op_type})", dims)


def _check(n: onnx.NodeProto, where: str, dims: dict[str, list]) -> None:
    a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
    wi = WINDOW_OPS[n.op_type]
    x_name = n.input[0] if n.input else ""
    w_name = n.input[wi] if wi is not None and len(n.input) > wi else ""
    x_dims, w_dims = dims.get(x_name), dims.get(w_name)
    if x_dims is not None and w_dims is not None and len(x_dims) != len(w_dims):
        raise TinydeployError(f"{where}: input '{x_name}' has rank {len(x_dims)} but weight '{w_name}' has "
                              f"rank {len(w_dims)}; they must be equal")
    if wi is None and "kernel_shape" not in a:
        raise TinydeployError(f"{where}: attribute kernel_shape is required")
    known = x_dims if x_dims is not None else w_dims
    spatial = len(known) - 2 if known is not None else len(a.get("kernel_shape", ())) or None
    source = (f"'{x_name if x_dims is not None else w_name}' has rank {len(known)}" if known is not None
              else "as many as kernel_shape")

    def bad(attr, why):
        value = a[attr].decode() if isinstance(a[attr], bytes) else a[attr]
        raise TinydeployError(f"{where}: attribute {attr} = {value!r}: {why}")

    for attr, least in (("kernel_shape", 1), ("strides", 1), ("dilations", 1), ("pads", 0),
                        ("output_padding", 0), ("output_shape", 1)):
        if attr not in a:
            continue
        v = list(a[attr])
        if attr == "pads" and len(v) % 2:
            bad(attr, "needs an even number of values, a begin and an end per spatial axis")
        need = None if spatial is None else (2 * spatial if attr == "pads" else spatial)
        if need is not None and len(v) != need:
            per = "a begin and an end per spatial axis" if attr == "pads" else "one per spatial axis"
            bad(attr, f"needs {need} values, {per} ({source})")
        if any(x < least for x in v):
            bad(attr, f"every value must be at least {least}")
    if "kernel_shape" in a and w_dims is not None and None not in w_dims \
            and list(a["kernel_shape"]) != list(w_dims[2:]):
        bad("kernel_shape", f"must equal the spatial size of weight '{w_name}' {list(w_dims)}")
    if wi is None and "pads" in a and len(a["pads"]) == 2 * len(a["kernel_shape"]) \
            and any(p >= k for p, k in zip(a["pads"], 2 * list(a["kernel_shape"]))):
        # a window wholly in the padding has no element: its max / mean is undefined (ORT refuses it too)
        bad("pads", f"every pad must be smaller than kernel_shape {list(a['kernel_shape'])}")
    if a.get("group", 1) < 1:
        bad("group", "must be at least 1")
    auto = a.get("auto_pad", b"NOTSET")
    if (auto.decode() if isinstance(auto, bytes) else auto) not in AUTO_PAD:
        bad("auto_pad", f"must be one of {', '.join(AUTO_PAD)}")
