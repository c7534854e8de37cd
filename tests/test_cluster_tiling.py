"""Tile loops on the cluster (targets/cluster/tileloop.py): random layers at L1 sizes down to a few
KiB run tile by tile from L2, bit-exact to the golden model; the linked tile area stays inside L1;
a layer that cannot be tiled is a one-line error, through the CLI too; cycles are reproducible."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinydeploy.testing as T
from tinydeploy.compiler import compile_graph
from tinydeploy.errors import TinydeployError
from tinydeploy.golden import run_graph
from tinydeploy.ir import Graph, Node, Tensor
from tinydeploy.targets.cluster import ClusterTarget
from tinydeploy.targets.cluster.config import L1_BASE, L2_BASE, ClusterConfig
from tinydeploy.targets.rv32.elf import read_elf

I8, I32 = np.dtype(np.int8), np.dtype(np.int32)
PROPS = settings(max_examples=5, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class _G:
    """A one-layer integer graph with random weights and requantization (what the passes leave)."""

    def __init__(self, seed: int, x_shape):
        self.rng = np.random.default_rng(seed)
        self.g = Graph("layer", {}, [], ["x"], [])
        self.g.tensors["x"] = Tensor("x", tuple(x_shape), I8)

    def const(self, name, shape, dtype=I8, lo=-128, hi=128):
        self.g.tensors[name] = Tensor(name, tuple(shape), dtype, self.rng.integers(lo, hi, shape).astype(dtype))
        return name

    def rq(self, k):
        return dict(m=[int(v) for v in self.rng.integers(1 << 29, 1 << 30, k)], s=[int(v) for v in self.rng.integers(37, 40, k)],
                    y_zp=int(self.rng.integers(-5, 5)), lo=-128, hi=127)

    def node(self, op, ins, shape, **attrs):
        self.g.nodes.append(Node(op, op.lower(), ins, ["y"], attrs))
        self.g.tensors["y"] = Tensor("y", tuple(shape), I8)
        self.g.outputs = ["y"]
        return self.g


def conv_graph(seed, C, H, W, K, k, stride, pad, depthwise):
    b = _G(seed, (1, C, H, W))
    K, group = (C, C) if depthwise else (K, 1)
    oh, ow = ((H + 2 * pad - k) // stride + 1), ((W + 2 * pad - k) // stride + 1)
    ins = ["x", b.const("w", (K, C // group, k, k)), b.const("b", (K,), I32, -2000, 2000)]
    return b.node("QConv", ins, (1, K, oh, ow), strides=[stride, stride], pads=[pad] * 4, dilations=[1, 1],
                  group=group, x_zp=int(b.rng.integers(-4, 4)), w_zp=0, **b.rq(K))


def linear_graph(seed, M, K, N):
    b = _G(seed, (M, K))
    ins = ["x", b.const("w", (N, K)), b.const("b", (N,), I32, -2000, 2000)]
    return b.node("QMatMul", ins, (M, N), ta=0, tb=1, a_zp=1, b_zp=0, **b.rq(N))


def eltwise_graph(seed, shape, per_channel):
    b = _G(seed, shape)
    other = b.const("c", (shape[1], 1, 1) if per_channel else shape)
    return b.node("QAdd", ["x", other], shape, za=1, ma=1 << 30, sa=31, zb=-2, mb=1 << 29, sb=30,
                  m=1 << 30, s=31, zy=3, lo=-128, hi=127)


CLUSTER_README = (Path(__file__).parents[1] / "src/tinydeploy/targets/cluster/README.md").read_text()


def _run(graph, l1_kib, cores, tmp: Path, tiling="always"):
    """Compile and run tile by tile; check exactness and that the linked tile area fits in L1."""
    tgt = ClusterTarget(ClusterConfig(cores=cores, l1_bytes=l1_kib * 1024, stack_bytes=1024, tiling=tiling))
    c = compile_graph(graph, kernels=tgt.kernels)
    x = np.random.default_rng(1).integers(-128, 128, graph.tensors["x"].shape).astype(np.int8)
    outs, m = tgt.run(c, {"x": x}, tmp)
    assert np.array_equal(outs["y"], run_graph(c.graph, {"x": x})["y"])
    tiling = m.fields["cluster"]["tiling"]
    assert all(f"`{k}`" in CLUSTER_README for k in tiling), "document each cluster.tiling field"
    elf = read_elf(next((tmp / "cluster").glob("*.elf")))
    tiles, arena = elf.symbols["td_tiles"], elf.symbols["td_arena"]
    # the buffers the tile loops use: inside L1, below the stacks, as large as the emitter laid them out
    assert L1_BASE <= tiles.addr and tiles.addr + tiles.size <= L1_BASE + tgt.config.l1_bytes - cores * 1024
    assert tiles.size == max(tiling["tile_area_bytes"], 1) <= tiling["tile_capacity_bytes"]
    assert m.memory["L1_total"] <= tgt.config.l1_bytes and arena.addr >= L2_BASE
    node = next(n for n in c.graph.nodes if n.op.startswith("Q"))
    whole = sum(c.graph.tensors[n].nbytes for n in node.inputs + node.outputs if n)
    assert tiling["tiles"] > 1 or whole <= tiling["tile_capacity_bytes"]
    return c, m, tiling


@PROPS
@given(st.integers(0, 1 << 16), st.sampled_from([(8, 12, 12), (16, 16, 10), (24, 9, 9)]), st.sampled_from([4, 8, 20]),
       st.sampled_from([(1, 1, 0), (3, 1, 1), (3, 2, 1), (5, 2, 2)]), st.booleans(), st.sampled_from([(8, 2), (16, 8)]))
def test_conv_tiles_are_exact_and_fit(tmp_path_factory, seed, chw, K, kernel, depthwise, l1_cores):
    (k, stride, pad), (l1, cores) = kernel, l1_cores
    g = conv_graph(seed, *chw, K, k, stride, pad, depthwise)
    _, _, tiling = _run(g, l1, cores, tmp_path_factory.mktemp("conv"))
    assert tiling["tiles"] >= 1


@PROPS
@given(st.integers(0, 1 << 16), st.sampled_from([1, 7, 24]), st.sampled_from([16, 96, 300]), st.sampled_from([10, 64, 130]),
       st.sampled_from([(8, 2), (16, 8)]))
def test_linear_tiles_are_exact_and_fit(tmp_path_factory, seed, M, K, N, l1_cores):
    _run(linear_graph(seed, M, K, N), *l1_cores, tmp_path_factory.mktemp("linear"))


@PROPS
@given(st.integers(0, 1 << 16), st.sampled_from([(1, 8, 30, 30), (1, 16, 20, 24), (1, 3, 7, 5)]), st.booleans())
def test_eltwise_tiles_are_exact_and_fit(tmp_path_factory, seed, shape, per_channel):
    _run(eltwise_graph(seed, shape, per_channel), 8, 2, tmp_path_factory.mktemp("eltwise"))


def test_layer_too_large_for_l1_runs_in_several_tiles_and_repeats_its_cycles(tmp_path):
    """Weights (64 KiB) and activations beyond a 32 KiB L1: the automatic mode tiles, the tiles
    overlap their transfers, and two runs give the same cycles."""
    g = conv_graph(3, 64, 16, 16, 128, 3, 1, 1, False)
    c, m, tiling = _run(g, 32, 8, tmp_path / "a", tiling="auto")
    assert tiling["nodes"]["qconv"]["tiles"] > 4
    _, m2, _ = _run(g, 32, 8, tmp_path / "b", tiling="auto")
    assert (m.cycles, m.layer_cycles, m.fields["cluster"]["dma"]) == (m2.cycles, m2.layer_cycles,
                                                                      m2.fields["cluster"]["dma"])
    assert m.fields["cluster"]["dma"]["overlap"] > 0.5


def test_a_layer_that_cannot_be_tiled_is_one_error_naming_it(tmp_path):
    g = linear_graph(0, 4, 8192, 16)   # a whole reduction row of 8 KiB and its weights' columns
    tgt = ClusterTarget(ClusterConfig(cores=2, l1_bytes=8 * 1024, stack_bytes=1024))
    c = compile_graph(g, kernels=tgt.kernels)
    with pytest.raises(TinydeployError, match=r"node qmatmul \(QMatMul\): does not fit in L1 at any tiling: "
                                              r"its smallest tiling needs [\d,]+ bytes, [\d,]+ are available"):
        tgt.run(c, {"x": np.zeros((4, 8192), np.int8)}, tmp_path)


def test_cli_small_l1_tiles_or_names_the_layer(tmp_path):
    q = T.quantize(T.cnn(), fmt="qdq", activation="int8", weight="int8", per_channel=True)
    onnx.save(q, tmp_path / "m.onnx")
    np.savez(tmp_path / "in.npz", **T.random_inputs(q, seed=2)[0])

    def run(l1, name):
        (tmp_path / f"{name}.toml").write_text(f'l1_bytes = "{l1}KiB"\nstack_bytes = 1024\ncores = 2\n')
        return subprocess.run([sys.executable, "-m", "tinydeploy.cli", "run", tmp_path / "m.onnx", "--target",
                               "cluster", "--target-config", tmp_path / f"{name}.toml", "--inputs",
                               tmp_path / "in.npz", "--outputs", tmp_path / f"{name}.npz"], capture_output=True, text=True)
    ok = run(12, "small")
    assert ok.returncode == 0, ok.stderr
    host = subprocess.run([sys.executable, "-m", "tinydeploy.cli", "run", tmp_path / "m.onnx", "--inputs",
                           tmp_path / "in.npz", "--outputs", tmp_path / "host.npz"], capture_output=True, text=True)
    assert host.returncode == 0, host.stderr
    a, b = np.load(tmp_path / "small.npz"), np.load(tmp_path / "host.npz")
    assert all(np.array_equal(a[k], b[k]) for k in b.files)
    bad = run(4, "tiny")
    assert bad.returncode != 0 and not (tmp_path / "tiny.npz").exists()
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in bad.stderr and "L1" in lines[0], bad.stderr


def _tiles_match_the_whole(g):
    """Every tile's node (TileSpec.sub), run by the golden model on its input windows, gives the
    whole node's output on its window: borders, halos and sliced parameters included."""
    from tinydeploy.ops import registry
    from tinydeploy.ops.tiles import window
    from tinydeploy.schedule.tiling import L2, Cost, solve, spec_for
    from tinydeploy.targets.cluster.tileloop import tile_node
    node = g.nodes[0]
    spec = spec_for(node, g)
    x = np.random.default_rng(2).integers(-128, 128, g.tensors["x"].shape).astype(np.int8)
    y = run_graph(g, {"x": x})["y"]
    whole = sum(o.nbytes for o in spec.operands)
    tilings = []
    for part in (3, 2, 1.25):   # parts of the node's bytes: those that fit at some tiling, in tiles
        try:
            tilings.append(solve(spec, {n: L2 for n in g.tensors}, int(whole / part), 0, Cost(), 0.2, node.name, node.op))
        except TinydeployError:
            pass
    assert tilings and all(t.n_tiles > 1 for t in tilings)
    ops = {o.tensor: o for o in spec.operands if o.tensor}
    for tile in (tile for t in tilings for tile in t.grid()):
        sub, sg = tile_node(node, g, spec, tile)
        cut = lambda name, a: a.reshape(ops[name].shape)[tuple(slice(*w) for w in window(ops[name], tile))]  # noqa: E731
        args = [sg.tensors[n].data if g.tensors[n].is_const else cut(n, x).reshape(sg.tensors[n].shape)
                for n in node.inputs]
        got = registry.get(sub).golden(sub, sg, args)[0]
        assert np.array_equal(got.reshape(-1), cut("y", y).reshape(-1)), tile


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.integers(0, 1 << 16), st.sampled_from([(4, 11, 9), (6, 7, 13)]), st.sampled_from([4, 8]),
       st.sampled_from([(1, 1, 0), (3, 1, 1), (3, 2, 1), (3, 2, 0), (5, 2, 2), (2, 3, 1)]), st.booleans())
def test_conv_tile_nodes_compute_their_part_of_the_output(seed, chw, K, kernel, depthwise):
    _tiles_match_the_whole(conv_graph(seed, *chw, K, *kernel, depthwise))


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.integers(0, 1 << 16), st.sampled_from([3, 9]), st.sampled_from([16, 40]), st.sampled_from([12, 33]))
def test_linear_tile_nodes_compute_their_part_of_the_output(seed, M, K, N):
    _tiles_match_the_whole(linear_graph(seed, M, K, N))


@settings(max_examples=10, deadline=None, derandomize=True)
@given(st.integers(0, 1 << 16), st.booleans())
def test_eltwise_tile_nodes_compute_their_part_of_the_output(seed, per_channel):
    _tiles_match_the_whole(eltwise_graph(seed, (1, 6, 9, 10), per_channel))


# Deeploy's dialect ops (and its Casts) on float32 tensors holding integers
def _dialect_case(op, shape, pshape, r):
    from deeploy_testlib import Dialect
    b = Dialect()
    x = b.input(r.integers(-2**12, 2**12, shape).astype(np.float32))
    if op == "RequantShift":
        mul, add = b.const(r.integers(1, 2**9, pshape)), b.const(r.integers(-2**16, 2**16, pshape))
        b.op(op, x, mul, add, shape=shape, dtype=np.int8, div=2**12, n_levels=256, signed=1)
    elif op == "Cast":
        b.op(op, x, shape=shape, dtype=np.int32, to=onnx.TensorProto.INT32)
    else:
        attrs = {"iHardswish": dict(one_over_six=5461, three=3 << 8, six=6 << 8), "iGELU": dict(b=-60, one=900),
                 "TrueIntegerDiv": dict(Delta=1 << 10, eta=3, eps=1, y=7)}[op]
        b.op(op, x, shape=shape, dtype=np.int32, **attrs)
    return b


@pytest.mark.parametrize("op, shape, pshape", [
    ("RequantShift", (1, 16, 96), (16, 1, 1)),   # Deeploy's per-channel reading along axis 1 (no numpy broadcast)
    ("RequantShift", (2, 12, 80), (12, 1)),      # numpy broadcasting, per channel
    ("RequantShift", (40, 64), (1,)),            # scalar parameters
    ("iHardswish", (24, 100), None), ("iGELU", (1, 30, 70), None), ("TrueIntegerDiv", (3, 900), None),
    ("Cast", (2, 1500), None)])
def test_deeploy_elementwise_ops_run_in_tiles_bit_exact(tmp_path, op, shape, pshape):
    from tinydeploy.frontend.onnx_import import import_model
    b = _dialect_case(op, shape, pshape, np.random.default_rng(len(op) + len(shape)))
    tgt = ClusterTarget(ClusterConfig(cores=2, l1_bytes=8 * 1024, stack_bytes=1024))
    c = compile_graph(import_model(b.model()), kernels=tgt.kernels)
    outs, m = tgt.run(c, b.feeds, tmp_path)
    gold = run_graph(c.graph, b.feeds)
    assert all(np.array_equal(outs[n], gold[n]) for n in c.graph.outputs)
    node = next(n for n in c.graph.nodes if n.op == op)
    assert m.fields["cluster"]["tiling"]["nodes"][node.name]["tiles"] > 1
