"""Compiled models' memory plans, checked by the planner's independent overlap checker; exact
planning reaches the lower bound where it is the known optimum."""
import numpy as np
import onnx
import pytest

from tinydeploy.compiler import compile_graph
from tinydeploy.frontend.onnx_import import import_model
from tinydeploy.ops.kernels import Kernels
from tinydeploy.schedule import check_plan
from tinydeploy.testing import BUILDERS, quantize, random_model


def _compile(model, exact=False):
    return compile_graph(import_model(onnx.ModelProto.FromString(model.SerializeToString())), exact=exact)


MODELS = [(name, fmt) for name in BUILDERS for fmt in ("float", "qdq")] + [(f"random{s}", "qdq") for s in range(0, 40, 4)]


def _model(name, fmt):
    m = random_model(int(name[6:])) if name.startswith("random") else BUILDERS[name]()
    return m if fmt == "float" else quantize(m, fmt="qdq", activation="int8", weight="int8", per_channel=True)


@pytest.mark.parametrize("name,fmt", MODELS)
def test_plan_passes_independent_check(name, fmt):
    c = _compile(_model(name, fmt))
    check_plan(c.buffers, c.plan, c.hints)
    assert c.plan.arena_bytes >= c.plan.lower_bound > 0
    # every activation tensor has an offset inside the arena
    for name_, off in c.offsets.items():
        assert 0 <= off and off + c.graph.tensors[name_].nbytes <= c.plan.arena_bytes


def test_exact_planner_reaches_the_bound_on_the_transformer():
    q = _model("transformer_block", "qdq")
    greedy, exact = _compile(q), _compile(q, exact=True)
    assert exact.plan.arena_bytes <= greedy.plan.arena_bytes
    assert exact.plan.arena_bytes == exact.plan.lower_bound and exact.plan.optimal


def _two_padded_convs():
    """Two padded 3x3 convs (8 -> 8 channels, 8x8): their kernels need padded copies / Winograd tiles."""
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    for k, name in enumerate("ab"):
        inits.append(numpy_helper.from_array((rng.standard_normal((8, 8, 3, 3)) * 0.2).astype(np.float32), f"w{k}"))
        nodes.append(helper.make_node("Conv", ["x" if k == 0 else "a", f"w{k}"], [name], pads=[1, 1, 1, 1]))
    g = helper.make_graph(nodes, "two", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 8, 8])],
                          [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 8, 8, 8])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return quantize(m, fmt="qdq", activation="int8", weight="int8", per_channel=True)


@pytest.mark.parametrize("kernels", [Kernels(), Kernels(winograd=False), Kernels(fast=False)])
def test_scratch_buffers_are_planned(kernels, tmp_path):
    """Each node's scratch is a buffer of the plan live at its step only, inside the arena and the lower
    bound; the C uses it at the planned offset and still equals the golden model."""
    from tinydeploy.compiler import emit_c
    from tinydeploy.golden import run_graph
    from tinydeploy.targets.host import runner
    q = _two_padded_convs()
    c = compile_graph(import_model(onnx.ModelProto.FromString(q.SerializeToString())), kernels=kernels)
    check_plan(c.buffers, c.plan, c.hints)
    by_name = {b.name: b for b in c.buffers}
    convs = [k for k, n in enumerate(c.graph.nodes) if n.op == "QConv"]
    assert (set(c.scratch) == set(convs)) == kernels.fast   # the reference kernel needs none
    for k, (off, size) in c.scratch.items():
        b = next(b for b in c.buffers if b.start == b.end == k + 1 and b.size == size)  # step k + 1 runs node k
        assert c.plan.offsets[b.name] == off and off + size <= c.plan.arena_bytes
        # live with the node's input and output: the bound counts all three at that step
        x, y = (by_name[t] for t in (c.graph.nodes[k].inputs[0], c.graph.nodes[k].outputs[0]) if t in by_name)
        assert c.plan.lower_bound >= sum(-(-s // 16) * 16 for s in (size, x.size, y.size))
    x = np.random.default_rng(1).standard_normal((1, 8, 8, 8)).astype(np.float32)
    proj = emit_c(c, tmp_path / "c")
    assert "scratch[" not in proj.sources[0].read_text()
    out = runner.run(proj, c.graph, {"x": x}, tmp_path)
    np.testing.assert_array_equal(out["b"], run_graph(c.graph, {"x": x})["b"])
