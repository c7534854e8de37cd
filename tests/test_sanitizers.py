"""The generated C under AddressSanitizer and UBSan (gcc, no recovery): example models, and models
whose stated shapes lie (a declared shape smaller than the computed one used to size the buffer, so
the kernel wrote past td_arena). Flags reach the host build through $TINYDEPLOY_HOST_CFLAGS."""
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

import tinydeploy.testing as T
from helpers import compile_model, golden_and_host, ort_run
from lying_models import CASES, lying_model, x_for
from tinydeploy.compiler import emit_c
from tinydeploy.targets.host import runner

# -O1 (after the build's -O2): the sanitizers' usual level, and a fraction of -O2's compile time
SANITIZE = "-O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"


def _sanitizers_work() -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "t.c"
        src.write_text("int main(void) { return 0; }\n")
        cmd = runner.compilers()["gcc"] + SANITIZE.split() + [str(src), "-o", str(Path(tmp) / "t")]
        return subprocess.run(cmd, capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not _sanitizers_work(), reason="the host gcc has no ASan/UBSan runtime")


@pytest.fixture(autouse=True)
def sanitized(monkeypatch):
    monkeypatch.setenv("TINYDEPLOY_HOST_CFLAGS", SANITIZE)


def test_sanitizers_catch_a_write_past_the_arena(tmp_path):
    """The harness itself: a kernel writing one element past its buffer fails the run."""
    c = compile_model(lying_model("Transpose", lie_on=None))
    proj = emit_c(c, tmp_path / "c")
    net = next(p for p in proj.sources if p.name.endswith("network.c"))
    text = net.read_text()
    poke = "{ volatile unsigned k = sizeof td_arena; td_arena[k] = 1; }"
    net.write_text(text.replace("td_run(void)\n{", "td_run(void)\n{\n    " + poke, 1))
    assert poke in net.read_text()
    with pytest.raises(Exception, match="AddressSanitizer|runtime error"):
        runner.run(proj, c.graph, {"x": x_for("Transpose")}, tmp_path)


@pytest.mark.parametrize("op", sorted(CASES))
def test_lying_intermediate_shape_is_ignored(op):
    """value_info declares t smaller than OP computes: the C must size t from the op, not the file."""
    x = x_for(op)
    _, gold, host = golden_and_host(lying_model(op), {"x": x})
    ref = ort_run(lying_model(op, lie_on=None), {"x": x})["y"]
    assert host["y"].shape == ref.shape == CASES[op][3]
    np.testing.assert_allclose(host["y"], ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gold["y"], ref, rtol=1e-5, atol=1e-5)


def test_stale_intermediate_shape_after_shape_option():
    """--shape makes the model's own (once right) value_info stale."""
    big = (1, 1, 16, 16)
    x = np.random.default_rng(3).normal(size=big).astype(np.float32)
    m = lying_model("Conv", lie_on=None)
    m.graph.value_info.append(helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 4, 8, 8]))
    c = compile_model(m, {"x": big})
    with tempfile.TemporaryDirectory() as tmp:
        host = runner.run(emit_c(c, Path(tmp) / "c"), c.graph, {"x": x}, Path(tmp))
    ref = ort_run(lying_model("Conv", lie_on=None, x_shape=big), {"x": x})["y"]
    assert host["y"].shape == ref.shape == (1, 4, 16, 16)
    np.testing.assert_allclose(host["y"], ref, rtol=1e-5, atol=1e-5)


# the example models (tinydeploy.testing, which examples/make_models.py writes out): float, and
# quantized in both formats (tests/test_models_quantized.py runs every configuration without
# sanitizers), plus random models over the supported ops. The quantized
# transformer block is --runslow: gcc needs over a minute to instrument its eight inlined int8 matmuls.
EXAMPLES = [(name, None) for name in T.BUILDERS] + [
    ("cnn", ("qoperator", "uint8", "int8", False)), ("mlp", ("qdq", "uint8", "uint8", True)),
    ("random_0", None), ("random_1", None), ("random_2", ("qdq", "uint8", "int8", True)),
    pytest.param("transformer_block", ("qdq", "int8", "int8", True), marks=pytest.mark.slow)]


def _id(p):
    name, cfg = p.values if hasattr(p, "values") else p
    return f"{name}-{T.config_name(*cfg) if cfg else 'float'}"


@pytest.mark.parametrize("name,cfg", EXAMPLES, ids=[_id(p) for p in EXAMPLES])
def test_example_models_run_clean(name, cfg):
    m = T.random_model(int(name[7:])) if name.startswith("random_") else T.BUILDERS[name]()
    if cfg:
        m = T.quantize(m, fmt=cfg[0], activation=cfg[1], weight=cfg[2], per_channel=cfg[3])
    feeds = T.random_inputs(m, seed=5)[0]
    _, gold, host = golden_and_host(m, feeds)
    for k, v in gold.items():
        if v.dtype.kind == "f" and not cfg:
            np.testing.assert_allclose(host[k], v, rtol=1e-4, atol=1e-4)
        else:
            assert np.array_equal(host[k], v), k
