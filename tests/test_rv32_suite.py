"""The host test models on rv32: identical outputs (bit for bit on quantized graphs, whose float
edges are one IEEE multiply each). A few random models in CI, all 60 with --runslow."""
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest

from tinydeploy.compiler import compile_graph, emit_c
from tinydeploy.frontend.onnx_import import import_model
from tinydeploy.targets.host import runner as host
from tinydeploy.targets.rv32 import network_run
from tinydeploy.targets.rv32.runner import Rv32Config
from tinydeploy.testing import quantize, random_inputs, random_model

CI_SEEDS = [0, 7, 21]


def _host_and_rv32(model: onnx.ModelProto):
    c = compile_graph(import_model(onnx.ModelProto.FromString(model.SerializeToString())))
    inputs = random_inputs(model, seed=11)[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        proj = emit_c(c, tmp / "c")
        h = host.run(proj, c.graph, inputs, tmp)
        r, meas = network_run.run(proj, c.graph, inputs, tmp, Rv32Config())
    # float arithmetic beyond the output DequantizeLinear (a float island the lowering kept) uses
    # each target's libm and summation order: compared with a stated tolerance instead
    float_island = any(n.op != "DequantizeLinear" and c.graph.tensors[n.outputs[0]].dtype == np.float32
                       for n in c.graph.nodes)
    return h, r, meas, float_island


@pytest.mark.parametrize("seed", [pytest.param(s, marks=[] if s in CI_SEEDS else [pytest.mark.slow])
                                  for s in range(60)])
def test_random_quantized_model_rv32_equals_host(seed):
    q = quantize(random_model(seed), fmt="qdq" if seed % 2 else "qoperator", activation="uint8",
                 weight="int8", per_channel=bool(seed % 3))
    h, r, meas, float_island = _host_and_rv32(q)
    assert h.keys() == r.keys()
    for k in h:
        if float_island:
            assert np.allclose(h[k], r[k], rtol=1e-5, atol=1e-6 * max(1.0, float(np.abs(h[k]).max()))), k
        else:
            assert np.array_equal(h[k], r[k]), k
    assert meas["cycles"] > 0
