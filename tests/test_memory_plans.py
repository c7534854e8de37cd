"""Compiled models' memory plans, checked by the planner's independent overlap checker; exact
planning reaches the lower bound where it is the known optimum."""
import onnx
import pytest

from tinydeploy.compiler import compile_graph
from tinydeploy.frontend.onnx_import import import_model
from tinydeploy.schedule import check_plan
from tinydeploy.schedule.buffers import graph_buffers
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
    buffers, hints, _ = graph_buffers(c.graph)
    check_plan(buffers, c.plan, hints)
    assert c.plan.arena_bytes >= c.plan.lower_bound > 0
    # every activation tensor has an offset inside the arena
    for name_, off in c.offsets.items():
        assert 0 <= off and off + c.graph.tensors[name_].nbytes <= c.plan.arena_bytes


def test_exact_planner_reaches_the_bound_on_the_transformer():
    q = _model("transformer_block", "qdq")
    greedy, exact = _compile(q), _compile(q, exact=True)
    assert exact.plan.arena_bytes <= greedy.plan.arena_bytes
    assert exact.plan.arena_bytes == exact.plan.lower_bound and exact.plan.optimal
