"""The cluster target behind the protocol: compiled networks on the simulated cluster, bit-exact to
the golden model (== host C, tests elsewhere) and to host through the CLI, deterministic cycles,
parallel speed-up, per-level budgets and REPORT.json's cluster fields."""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest

import tinydeploy.testing as T
from tinydeploy import targets
from tinydeploy.compiler import Footprint, compile_graph
from tinydeploy.errors import BudgetError
from tinydeploy.frontend.onnx_import import import_model
from tinydeploy.golden import run_graph
from tinydeploy.targets.cluster import ClusterTarget
from tinydeploy.targets.cluster.config import ClusterConfig

from helpers import check_report_schema

EIGHT, ONE = ClusterTarget(ClusterConfig()), ClusterTarget(ClusterConfig(cores=1))
ZOO = [("cnn", ("qdq", "int8", "int8", True)), ("cnn", ("qoperator", "uint8", "uint8", False)),
       ("mlp", ("qdq", "uint8", "int8", True)), ("transformer_block", ("qdq", "int8", "int8", False))]
RANDOM_SEEDS = [0, 7]


def _compiled(model):
    return compile_graph(import_model(onnx.ModelProto.FromString(model.SerializeToString())),
                         kernels=EIGHT.kernels)


def _run(c, inputs, target=EIGHT):
    with tempfile.TemporaryDirectory() as tmp:
        return target.run(c, inputs, Path(tmp))


def _float_tail(c) -> bool:
    """Float arithmetic besides the output DequantizeLinear (libm and summation order differ)."""
    return any(n.op != "DequantizeLinear" and c.graph.tensors[n.outputs[0]].dtype == np.float32 for n in c.graph.nodes)


@pytest.fixture(scope="module")
def cnn():
    q = T.quantize(T.cnn(), fmt="qdq", activation="int8", weight="int8", per_channel=True)
    return _compiled(q), T.random_inputs(q, seed=3)[0]


@pytest.mark.parametrize("name, cfg", ZOO, ids=[f"{n}-{T.config_name(*c)}" for n, c in ZOO])
def test_zoo_models_bit_exact_on_eight_cores(name, cfg):
    q = T.quantize(T.BUILDERS[name](), fmt=cfg[0], activation=cfg[1], weight=cfg[2], per_channel=cfg[3])
    c, inputs = _compiled(q), T.random_inputs(q, seed=5)[0]
    outs, m = _run(c, inputs)
    gold = run_graph(c.graph, inputs)
    for k, v in gold.items():
        assert outs[k].dtype == v.dtype and outs[k].shape == v.shape
        if _float_tail(c):
            assert np.allclose(outs[k], v, rtol=1e-5, atol=1e-5 * np.abs(v).max()), k
        else:
            assert np.array_equal(outs[k], v), k
    cl = m.fields["cluster"]
    # the kernels of these models all split across the cores, and every core did work
    assert cl["serial_layers"] == [] or name == "transformer_block"
    assert min(cl["instructions"]) > 0.5 * max(cl["instructions"])
    assert 0 < sum(m.layer_cycles) <= m.cycles


@pytest.mark.parametrize("seed", [pytest.param(s, marks=[] if s in RANDOM_SEEDS else [pytest.mark.slow])
                                  for s in range(60)])
def test_random_quantized_models_match_golden(seed):
    q = T.quantize(T.random_model(seed), fmt="qdq" if seed % 2 else "qoperator", activation="uint8",
                   weight="int8", per_channel=bool(seed % 3))
    c, inputs = _compiled(q), T.random_inputs(q, seed=11)[0]
    outs, _ = _run(c, inputs)
    for k, v in run_graph(c.graph, inputs).items():
        if _float_tail(c) or v.dtype.kind == "f" and k not in {n.outputs[0] for n in c.graph.nodes
                                                                 if n.op == "DequantizeLinear"}:
            assert np.allclose(outs[k], v, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(v).max()))), k
        else:
            assert np.array_equal(outs[k], v), k


def test_cycles_are_deterministic_and_eight_cores_beat_one(cnn):
    c, inputs = cnn
    (a, ma), (b, mb), (one, m1) = _run(c, inputs), _run(c, inputs), _run(c, inputs, ONE)
    assert all(np.array_equal(a[k], b[k]) and np.array_equal(a[k], one[k]) for k in a)
    assert (ma.cycles, ma.layer_cycles, ma.fields["cluster"]) == (mb.cycles, mb.layer_cycles, mb.fields["cluster"])
    assert m1.cycles > 6 * ma.cycles, (m1.cycles, ma.cycles)
    cl = ma.fields["cluster"]
    assert cl["dma"]["bytes"] >= cl["weight_bytes_l2"] > 0      # every weight block moved once
    assert 0 <= cl["dma"]["overlap"] <= 1 and "modelled" in ma.fields["cycles_model"]


def test_l1_budget_names_the_level_and_bytes(cnn):
    c, _ = cnn
    fp = Footprint.of(c)
    EIGHT.check_budget(fp)
    small = ClusterTarget(ClusterConfig(l1_bytes=20 * 1024, stack_bytes=1024, tiling="never"))
    with pytest.raises(BudgetError, match=r"needs [\d,]+ bytes of L1 .*arena [\d,]+.*weight buffers [\d,]+.*"
                                          r"stacks 8,192\) but the target has 20,480"):
        small.check_budget(fp)
    with pytest.raises(BudgetError, match=r"bytes of L2 .*weights 3,000,000.* has 2,097,152"):
        EIGHT.check_budget(Footprint(weights=3_000_000, state=0, arena=1000, scratch=0))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "tinydeploy.cli", *map(str, args)], capture_output=True, text=True)


def test_cli_run_and_compile_on_cluster(tmp_path):
    q = T.quantize(T.mlp(), fmt="qoperator", activation="uint8", weight="uint8", per_channel=False)
    onnx.save(q, tmp_path / "m.onnx")
    np.savez(tmp_path / "in.npz", **T.random_inputs(q, seed=2)[0])
    for t in ("host", "cluster"):
        r = _cli("run", tmp_path / "m.onnx", "--target", t, "--inputs", tmp_path / "in.npz",
                 "--outputs", tmp_path / f"{t}.npz", "--report", tmp_path / f"{t}.json")
        assert r.returncode == 0, r.stderr
    host, cl = np.load(tmp_path / "host.npz"), np.load(tmp_path / "cluster.npz")
    assert sorted(host.files) == sorted(cl.files) and all(np.array_equal(host[k], cl[k]) for k in host.files)
    rep = json.loads((tmp_path / "cluster.json").read_text())
    check_report_schema(rep)
    assert rep["target"] == "cluster" and rep["clock_hz"] == 360_000_000 and rep["cycles"] > 0
    assert set(rep["memory_lower_bound"]) == {"L1"} and rep["memory"]["L1_total"] <= rep["levels"]["L1"]
    assert len(rep["cluster"]["instructions"]) == rep["cores"] == 8
    assert "modelled" in rep["cycles_model"]
    r = _cli("compile", tmp_path / "m.onnx", "--target", "cluster", "-o", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    src = (tmp_path / "out" / "td_network.c").read_text()
    assert "TD_L2_CONST" in src and "td_dma_start_1d" in src
    assert (tmp_path / "out" / "runtime" / "td_par.h").is_file()
    r = _cli("compile", tmp_path / "m.onnx", "--target", "cluster", "-o", tmp_path / "tiny",
             "--target-config", _toml(tmp_path, 'l1_bytes = "4KiB"\nstack_bytes = 256\ntiling = "never"\n'))
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "bytes of L1" in r.stderr
    assert not (tmp_path / "tiny").exists()


def _toml(tmp_path, text):
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_cluster_is_a_target_choice():
    assert "cluster" in targets.names() and "cluster" in targets.names(programs=True)
    t = targets.get("cluster")
    assert t.levels == {"L1": 256 * 1024, "L2": 2 * 1024 * 1024} and t.clock_hz == 360_000_000


def test_generate_on_cluster_tells_the_host_story():
    """stories260K for a few tokens: the same tokens and logits (hash) as host, the linear layers on
    every core, fewer cycles than one core would retire."""
    from tinydeploy import driver
    _, host = driver.generate(target="host", steps=3)
    _, cl = driver.generate(target="cluster", steps=3)
    assert cl["tokens"] == host["tokens"] and cl["text"] == host["text"] and cl["logit_hash"] == host["logit_hash"]
    assert cl["cycles_per_token"]["decode"] > 0 and cl["tokens_per_second"] > 0
    ins = cl["cluster"]["instructions"]
    assert min(ins) > 0.2 * max(ins)                        # the other cores did real work
    assert cl["cycles"] < 0.6 * sum(ins)                    # the critical path is far below the total work
