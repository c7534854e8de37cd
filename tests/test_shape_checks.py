"""Shapes and dtypes are inferred from the ops, never taken from the file: stated types of inner
values are ignored, declared output types are checked (one line naming node, tensor, declared vs
inferred), and bad window attributes of convolutions and pools are named as such."""
import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from helpers import compile_model, golden_and_host, ort_run
from lying_models import CASES, lying_model, x_for
from tinydeploy.errors import TinydeployError


@pytest.mark.parametrize("op", sorted(CASES))
def test_declared_output_shape_contradicting_the_op_is_refused(op):
    true, lie = CASES[op][3], CASES[op][4]
    pattern = (rf"^node relu \(Relu\): tensor 'y' is {re.escape(str(list(true)))} float32, "
               rf"but the model declares {re.escape(str(list(lie)))} float32$")
    with pytest.raises(TinydeployError, match=pattern):
        compile_model(lying_model(op, lie_on="y"))


def test_declared_output_dtype_contradicting_the_op_is_refused():
    m = lying_model("Conv", lie_on=None)
    m.graph.output[0].type.tensor_type.elem_type = TensorProto.INT8
    with pytest.raises(TinydeployError, match=r"node relu \(Relu\): tensor 'y' is \[1, 4, 8, 8\] float32, "
                                              r"but the model declares \? int8"):
        compile_model(m)


def test_lying_inner_dtype_is_ignored():
    m = lying_model("MatMul", lie_on=None)
    m.graph.value_info.append(helper.make_tensor_value_info("t", TensorProto.INT8, [1, 4, 16]))
    x = x_for("MatMul")
    c, gold, host = golden_and_host(m, {"x": x})
    assert c.graph.tensors["y"].dtype == np.float32
    np.testing.assert_allclose(host["y"], ort_run(lying_model("MatMul", lie_on=None), {"x": x})["y"], rtol=1e-5, atol=1e-5)


def test_symbolic_output_dims_and_shape_option_are_accepted():
    m = lying_model("Conv", lie_on=None, x_shape=("N", 1, 8, 8))
    del m.graph.output[0].type.tensor_type.shape.dim[:]
    for d in ("N", 4, 8, 8):
        m.graph.output[0].type.tensor_type.shape.dim.add().CopyFrom(helper.make_tensor_value_info("_", 1, [d]).type.tensor_type.shape.dim[0])
    assert compile_model(m, {"x": (2, 1, 8, 8)}).graph.tensors["y"].shape == (2, 4, 8, 8)
    # a static model given other sizes: its declared output shape is stale, not a contradiction
    m = lying_model("Conv", lie_on="y")
    m.graph.output[0].type.tensor_type.shape.dim[2].dim_value = 8
    m.graph.output[0].type.tensor_type.shape.dim[3].dim_value = 8
    assert compile_model(m, {"x": (1, 1, 12, 10)}).graph.tensors["y"].shape == (1, 4, 12, 10)


# ---- window attributes ------------------------------------------------------------------------------
def _window_model(op, attrs, x_shape=(1, 2, 8, 8), w_shape=(4, 2, 3, 3), through_relu=False):
    """x → [Relu →] OP → y; the weight (when OP has one) is an initializer."""
    f, u8 = TensorProto.FLOAT, TensorProto.UINT8
    x_type = u8 if op in ("ConvInteger", "QLinearConv") else f
    inits, src = [], "r" if through_relu else "x"
    nodes = [helper.make_node("Relu", ["x"], ["r"])] if through_relu else []
    if op in ("Conv", "ConvTranspose"):
        inits, ins = [numpy_helper.from_array(np.ones(w_shape, np.float32), "W")], [src, "W"]
    elif op == "ConvInteger":
        inits, ins = [numpy_helper.from_array(np.ones(w_shape, np.uint8), "W")], [src, "W"]
    elif op == "QLinearConv":
        consts = {"xs": np.float32(0.1), "xz": np.uint8(128), "W": np.ones(w_shape, np.int8), "ws": np.float32(0.1),
                  "wz": np.int8(0), "ys": np.float32(0.2), "yz": np.uint8(128)}
        inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()]
        ins = [src, "xs", "xz", "W", "ws", "wz", "ys", "yz"]
    else:
        ins = [src]
    nodes.append(helper.make_node(op, ins, ["y"], name="w1", **attrs))
    y_type = {"ConvInteger": TensorProto.INT32, "QLinearConv": u8}.get(op, f)
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", x_type, list(x_shape))],
                          [helper.make_tensor_value_info("y", y_type, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


BAD_WINDOWS = {
    "conv_stride_0": ("Conv", dict(strides=[0, 1]), {}, "strides = [0, 1]: every value must be at least 1"),
    "conv_dilation_0": ("Conv", dict(dilations=[1, 0]), {}, "dilations = [1, 0]: every value must be at least 1"),
    "conv_negative_pad": ("Conv", dict(pads=[0, -1, 0, 0]), {}, "pads = [0, -1, 0, 0]: every value must be at least 0"),
    "conv_group_0": ("Conv", dict(group=0), {}, "group = 0: must be at least 1"),
    "conv_kernel_vs_weight": ("Conv", dict(kernel_shape=[5, 5]), {},
                              "kernel_shape = [5, 5]: must equal the spatial size of weight 'W' [4, 2, 3, 3]"),
    "conv_kernel_rank": ("Conv", dict(kernel_shape=[3]), {}, "kernel_shape = [3]: needs 2 values, one per spatial axis"),
    "conv_odd_pads": ("Conv", dict(pads=[1, 1, 1]), {}, "pads = [1, 1, 1]: needs an even number of values"),
    "conv_pads_rank": ("Conv", dict(pads=[1, 1]), {}, "pads = [1, 1]: needs 4 values, a begin and an end per spatial axis"),
    "convtranspose_stride_0": ("ConvTranspose", dict(strides=[0, 0]), dict(w_shape=(2, 4, 3, 3)),
                               "strides = [0, 0]: every value must be at least 1"),
    "convtranspose_output_padding": ("ConvTranspose", dict(output_padding=[-1, 0]), dict(w_shape=(2, 4, 3, 3)),
                                     "output_padding = [-1, 0]: every value must be at least 0"),
    "convinteger_stride_0": ("ConvInteger", dict(strides=[1, 0]), {}, "strides = [1, 0]: every value must be at least 1"),
    "qlinearconv_dilation_0": ("QLinearConv", dict(dilations=[0, 1]), {}, "dilations = [0, 1]: every value must be at least 1"),
    "qlinearconv_negative_pad": ("QLinearConv", dict(pads=[-2, 0, 0, 0]), {}, "pads = [-2, 0, 0, 0]: every value must be at least 0"),
    "maxpool_kernel_0": ("MaxPool", dict(kernel_shape=[0, 2]), {}, "kernel_shape = [0, 2]: every value must be at least 1"),
    "maxpool_stride_0": ("MaxPool", dict(kernel_shape=[2, 2], strides=[0, 1]), {}, "strides = [0, 1]: every value must be at least 1"),
    "maxpool_no_kernel": ("MaxPool", {}, {}, "attribute kernel_shape is required"),
    "maxpool_kernel_rank_inner": ("MaxPool", dict(kernel_shape=[2]), dict(through_relu=True),
                                  "kernel_shape = [2]: needs 2 values, one per spatial axis ('r' has rank 4)"),
    "averagepool_stride_0": ("AveragePool", dict(kernel_shape=[2, 2], strides=[1, 0]), {},
                             "strides = [1, 0]: every value must be at least 1"),
    "averagepool_odd_pads": ("AveragePool", dict(kernel_shape=[2, 2], pads=[0, 0, 1]), {},
                             "pads = [0, 0, 1]: needs an even number of values"),
    "lppool_kernel_0": ("LpPool", dict(kernel_shape=[2, 0]), {}, "kernel_shape = [2, 0]: every value must be at least 1"),
    "lppool_stride_0": ("LpPool", dict(kernel_shape=[2, 2], strides=[0, 0]), {}, "strides = [0, 0]: every value must be at least 1"),
    "maxpool_pad_as_large_as_kernel": ("MaxPool", dict(kernel_shape=[2, 2], pads=[0, 2, 0, 0]), {},
                                       "pads = [0, 2, 0, 0]: every pad must be smaller than kernel_shape [2, 2]"),
    "averagepool_pad_beyond_kernel": ("AveragePool", dict(kernel_shape=[2, 3], pads=[1, 1, 1, 3]), {},
                                      "pads = [1, 1, 1, 3]: every pad must be smaller than kernel_shape [2, 3]"),
    "conv_auto_pad": ("Conv", dict(auto_pad="SAME"), {}, "auto_pad = 'SAME': must be one of NOTSET, SAME_UPPER"),
}


@pytest.mark.parametrize("case", sorted(BAD_WINDOWS))
def test_bad_window_attribute_is_named(case):
    op, attrs, kw, why = BAD_WINDOWS[case]
    with pytest.raises(TinydeployError) as e:
        compile_model(_window_model(op, attrs, **kw))
    msg = str(e.value)
    assert msg.startswith(f"node w1 ({op}): ") and why in msg and "--shape" not in msg, msg
    assert "\n" not in msg


def test_good_window_attributes_still_compile():
    for op, attrs, kw in (("Conv", dict(strides=[2, 1], dilations=[1, 2], pads=[1, 0, 1, 2], kernel_shape=[3, 3]), {}),
                          ("MaxPool", dict(kernel_shape=[3, 2], strides=[1, 2], pads=[1, 0, 1, 0]), dict(through_relu=True)),
                          ("QLinearConv", dict(pads=[1, 1, 1, 1]), {})):
        assert compile_model(_window_model(op, attrs, **kw)).graph.nodes


def test_uninferable_output_names_the_node_onnx_rejects():
    """When ONNX cannot infer an output, its own reason (naming the node) replaces the --shape hint."""
    g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"], name="mm1")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(np.ones((3, 5), np.float32), "W")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    with pytest.raises(TinydeployError, match=r"graph output 'y': its shape cannot be inferred \(ONNX shape "
                                              r"inference: \(op_type:MatMul, node name: mm1\)") as e:
        compile_model(m)
    assert "--shape" not in str(e.value)
