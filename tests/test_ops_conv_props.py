"""Property tests for the integer convolution: random geometry (strides, pads, dilations, groups),
zero points and scales, against the exact reference (and ONNX Runtime's QLinearConv where it is
exact); golden vs C on a sample."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from helpers import compile_model, golden_and_host
from tinydeploy.golden import run_graph
from tinydeploy.testing import references


@st.composite
def conv_case(draw):
    g = draw(st.sampled_from([1, 2, 4]))
    c = g * draw(st.integers(1, 3))
    k = g * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pads = [draw(st.integers(0, 2)) for _ in range(4)]
    h = draw(st.integers((kh - 1) * dh + 1, 9))
    w = draw(st.integers((kw - 1) * dw + 1, 9))
    act = draw(st.sampled_from([np.int8, np.uint8]))
    xzp = draw(st.integers(-20, 20)) + (128 if act == np.uint8 else 0)
    yzp = draw(st.integers(-20, 20)) + (128 if act == np.uint8 else 0)
    seed = draw(st.integers(0, 2**31))
    return dict(g=g, c=c, k=k, kh=kh, kw=kw, s=[sh, sw], d=[dh, dw], pads=pads, h=h, w=w, act=act,
                xzp=xzp, yzp=yzp, seed=seed, per_channel=draw(st.booleans()), bias=draw(st.booleans()))


def qlinearconv_model(p):
    rng = np.random.default_rng(p["seed"])
    act = p["act"]
    tp = TensorProto.INT8 if act == np.int8 else TensorProto.UINT8
    wq = rng.integers(-127, 128, (p["k"], p["c"] // p["g"], p["kh"], p["kw"])).astype(np.int8)
    ws = (rng.uniform(0.002, 0.02, p["k"]) if p["per_channel"] else np.array(rng.uniform(0.002, 0.02))).astype(np.float32)
    xs, ys = np.float32(rng.uniform(0.01, 0.05)), np.float32(rng.uniform(0.02, 0.3))
    inits = [numpy_helper.from_array(np.array(xs), "xs"), numpy_helper.from_array(np.array(p["xzp"], act), "xz"),
             numpy_helper.from_array(wq, "w"), numpy_helper.from_array(ws, "ws"),
             numpy_helper.from_array(np.zeros(ws.shape, np.int8), "wz"),
             numpy_helper.from_array(np.array(ys), "ys"), numpy_helper.from_array(np.array(p["yzp"], act), "yz")]
    ins = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"]
    if p["bias"]:
        inits.append(numpy_helper.from_array(rng.integers(-2000, 2000, p["k"]).astype(np.int32), "b"))
        ins.append("b")
    node = helper.make_node("QLinearConv", ins, ["y"], group=p["g"], strides=p["s"], dilations=p["d"],
                            pads=p["pads"], kernel_shape=[p["kh"], p["kw"]])
    oh = (p["h"] + p["pads"][0] + p["pads"][2] - (p["kh"] - 1) * p["d"][0] - 1) // p["s"][0] + 1
    ow = (p["w"] + p["pads"][1] + p["pads"][3] - (p["kw"] - 1) * p["d"][1] - 1) // p["s"][1] + 1
    graph = helper.make_graph([node], "qconv", [helper.make_tensor_value_info("x", tp, [1, p["c"], p["h"], p["w"]])],
                              [helper.make_tensor_value_info("y", tp, [1, p["k"], oh, ow])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    x = rng.integers(np.iinfo(act).min, np.iinfo(act).max + 1, (1, p["c"], p["h"], p["w"])).astype(act)
    return m, x


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_case())
def test_qconv_golden_within_one_lsb_of_references(p):
    m, x = qlinearconv_model(p)
    c = compile_model(m)
    assert [n.op for n in c.graph.nodes].count("QConv") == 1
    gold = run_graph(c.graph, {"x": x})["y"]
    for label, ref in references(m, {"x": x}).items():
        assert gold.dtype == ref["y"].dtype and gold.shape == ref["y"].shape, label
        assert np.max(np.abs(gold.astype(int) - ref["y"].astype(int))) <= 1, label


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_case())
def test_qconv_c_equals_golden(p):
    m, x = qlinearconv_model(p)
    _, gold, host = golden_and_host(m, {"x": x})
    assert np.array_equal(gold["y"], host["y"])
