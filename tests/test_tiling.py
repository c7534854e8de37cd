"""The tiling solver (schedule/tiling.py) and the op files' TileSpecs (ops/tiles.py).

Every solved tiling is checked against references that do not use the solver's formulas: the
tile grid enumerated (coverage), the input pixels each output tile reads enumerated tap by tap
(halos), the L1 sum recomputed from the windows of every tile (double buffers), the DMA loads
counted by walking the loop nest, and on small layers the optimum found by brute force.
"""
from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinydeploy.errors import TinydeployError
from tinydeploy.ir import Graph, Node, Tensor
from tinydeploy.schedule import graph_tiling as GT
from tinydeploy.schedule import tiling as T
from tinydeploy.testing import tiling_graphs as TG

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---- layers ------------------------------------------------------------------------------------
def conv_graph(C, H, W, K, k, stride, pads, dil, G):
    b = TG._B("conv")
    b.g.inputs = [b.t("x", (1, C, H, W))]
    b.g.outputs = [TG.conv(b, "conv", "x", K, k, stride, pads, G, dil)]
    return b.g


def matmul_graph(M, N, K, batch, ta, tb, const_b):
    g = Graph("mm", {}, [], ["a"], ["y"])
    g.tensors["a"] = Tensor("a", (*batch, K, M) if ta else (*batch, M, K), np.dtype(np.int8))
    bshape = (N, K) if tb else (K, N)
    if const_b:
        g.tensors["b"] = Tensor("b", bshape, np.dtype(np.int8), np.zeros(bshape, np.int8))
    else:
        bshape = (*batch, *bshape)
        g.tensors["b"] = Tensor("b", bshape, np.dtype(np.int8))
        g.inputs.append("b")
    g.tensors["y"] = Tensor("y", (*batch, M, N), np.dtype(np.int8))
    g.nodes.append(Node("QMatMul", "mm", ["a", "b"], ["y"], dict(ta=ta, tb=tb, a_zp=0, b_zp=0, m=[1] * N,
                                                                  s=[1] * N, y_zp=0, lo=-128, hi=127)))
    return g


def eltwise_graph(shape, scalar):
    g = Graph("add", {}, [], ["a", "b"], ["y"])
    g.tensors["a"] = Tensor("a", shape, np.dtype(np.int8))
    g.tensors["b"] = Tensor("b", (1,) if scalar else shape, np.dtype(np.int8))
    g.tensors["y"] = Tensor("y", shape, np.dtype(np.int8))
    g.nodes.append(Node("QAdd", "add", ["a", "b"], ["y"], {}))
    return g


@st.composite
def convs(draw):
    G = draw(st.sampled_from([1, 1, 2, 3, "dw"]))
    C = draw(st.integers(1, 6)) * (1 if G == "dw" else G)
    G = C if G == "dw" else G
    K = G * draw(st.integers(1, 6 if G > 1 else 24))
    k = draw(st.integers(1, 5))
    dil = draw(st.integers(1, 2))
    span = (k - 1) * dil + 1
    H, W = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    pads = tuple(draw(st.integers(0, k - 1)) for _ in range(4))
    if H + pads[0] + pads[2] < span or W + pads[1] + pads[3] < span:
        pads = (span, span, span, span)
    return C, H, W, K, k, draw(st.integers(1, 3)), pads, dil, G


budgets = st.integers(10, 17).map(lambda e: 2 ** e)   # 1 KiB .. 128 KiB
homes = st.sampled_from([{}, {"x": "L1"}, {"y": "L1"}, {"a": "L1"}])


def solve_or_error(g, home, l1):
    node = g.nodes[0]
    try:
        return T.solve(T.spec_for(node, g), home, l1, node=node.name, op=node.op)
    except TinydeployError as e:
        assert f"node {node.name} ({node.op})" in str(e) and "bytes" in str(e)
        return None


# ---- independent checks ------------------------------------------------------------------------
def check_tiling(t: T.Tiling, capacity: int, cost=T.Cost()):
    """Coverage, buffer sizes with double buffers, L1, and the DMA count by walking the loop nest."""
    spec, tiles = t.spec, list(t.grid())
    out = [o for o in spec.operands if o.kind == "out"]
    for o in out:   # every output element exactly once
        seen = np.zeros(o.shape, np.int32)
        for tile in tiles:
            seen[tuple(slice(lo, hi) for lo, hi in T.window(o, tile))] += 1
        assert (seen == 1).all(), o.name
    assert len(tiles) == t.n_tiles
    size = lambda w: int(np.prod([hi - lo for lo, hi in w]))  # noqa: E731
    total = t.reserved
    for buf in t.buffers:
        op = next(o for o in spec.operands if o.name == buf.operand)
        wins = [T.window(op, tile) for tile in tiles]
        # the loop nest moves a tile whenever the tiles of the dims the operand depends on change
        keys = [tuple(tile[d] for d in sorted(op.dims())) for tile in tiles]
        assert buf.bytes >= max(size(w) for w in wins) * op.itemsize
        moving = buf.kind != "scratch"
        assert buf.copies == (2 if moving and len(set(keys)) > 1 else 1), buf
        assert buf.copies == 2 or len(set(wins)) == 1 or not moving
        total += buf.bytes * buf.copies + cost.align
        if moving:
            loads = [w for i, w in enumerate(wins) if i == 0 or keys[i] != keys[i - 1]]
            assert buf.moves == len(loads) >= len(set(wins)), buf
            assert buf.moved_bytes == sum(size(w) for w in loads) * op.itemsize, buf
        else:
            assert buf.moves == 0
    assert total <= capacity
    assert t.dma_bytes >= t.min_dma_bytes
    assert t.cycles >= t.compute_cycles


def conv_reads(C, H, W, K, k, stride, pads, dil, G, tile):
    """Per axis (channels, rows, cols), enumerated tap by tap: the bounding box of the input pixels
    an output tile reads (None where it reads only padding), and that of every tap position clipped
    to the input (with dilation the taps may skip the pixels at the box's ends)."""
    (k0, nk), (r0, nr), (c0, nc) = tile["K"], tile["OH"], tile["OW"]
    Cg, Kg = C // G, K // G
    chans = {(kk // Kg) * Cg + c for kk in range(k0, k0 + nk) for c in range(Cg)}
    rows = {r * stride - pads[0] + i * dil for r in range(r0, r0 + nr) for i in range(k)}
    cols = {c * stride - pads[1] + j * dil for c in range(c0, c0 + nc) for j in range(k)}
    read = [chans, rows & set(range(H)), cols & set(range(W))]
    box = [(min(s), max(s) + 1) if s else None for s in read]
    taps = [(min(chans), max(chans) + 1)] + [(min(max(min(s), 0), n), min(max(max(s) + 1, 0), n))
                                             for s, n in ((rows, H), (cols, W))]
    return box, taps


# ---- properties --------------------------------------------------------------------------------
@SETTINGS
@given(convs(), budgets, homes)
def test_conv_tiles_cover_fit_and_read_their_halos(layer, l1, home):
    g = conv_graph(*layer)
    t = solve_or_error(g, home, l1)
    if t is None:
        return
    check_tiling(t, l1)
    x = next(o for o in t.spec.operands if o.name == "x")
    for tile in t.grid():
        box, taps = conv_reads(*layer, tile)
        got = list(T.window(x, tile)[1:])
        assert got == taps, (tile, got, taps)
        for (lo, hi), read in zip(got, box):
            assert read is None or lo <= read[0] and read[1] <= hi


@SETTINGS
@given(st.integers(1, 24), st.integers(1, 160), st.integers(1, 128), st.sampled_from([(), (3,), (2, 2)]),
       st.integers(0, 1), st.integers(0, 1), st.booleans(), budgets, homes)
def test_matmul_tiles_cover_and_fit(M, N, K, batch, ta, tb, const_b, l1, home):
    t = solve_or_error(matmul_graph(M, N, K, batch, ta, tb, const_b), home, l1)
    if t is not None:
        check_tiling(t, l1)
        assert t.tiles["K"] == K   # the reduction stays whole


@SETTINGS
@given(st.lists(st.integers(1, 40), min_size=1, max_size=3), st.booleans(), budgets, homes)
def test_eltwise_tiles_cover_and_fit(shape, scalar, l1, home):
    t = solve_or_error(eltwise_graph(tuple(shape), scalar), home, l1)
    if t is not None:
        check_tiling(t, l1)


def brute_force(spec, home, avail, cost=T.Cost()):
    """(best cycles over every candidate combination that fits, smallest L1 need), all orders."""
    best, need = None, None
    for order in T._orders(spec):
        p = T._prepare(spec, home, order)
        for combo in itertools.product(*[range(len(p.cands[d])) for d in p.order]):
            ev = T._evaluate(p, dict(zip(p.order, combo)), cost)
            need = ev["l1"] if need is None else min(need, ev["l1"])
            if ev["l1"] <= avail and (best is None or ev["cycles"] < best):
                best = ev["cycles"]
    return best, need


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 8), st.integers(2, 12), st.integers(1, 12), st.integers(1, 3), st.integers(1, 2),
       st.integers(9, 13).map(lambda e: 2 ** e), homes)
def test_solver_finds_the_brute_force_optimum(C, H, K, k, stride, l1, home):
    """CP-SAT's answer is the best tiling of the model (checked by enumeration on small layers), and
    an infeasible budget reports the true smallest need."""
    g = conv_graph(C, H, H, K, k, stride, (k // 2,) * 4, 1, 1)
    spec, cost = T.spec_for(g.nodes[0], g), T.Cost()
    best, need = brute_force(spec, home, l1)
    if best is None:
        with pytest.raises(TinydeployError, match=f"needs {need:,} bytes, {l1:,} are available"):
            T.solve(spec, home, l1, node="conv", op="QConv")
        return
    t = T.solve(spec, home, l1)
    assert t.optimal and t.method in ("cp-sat", "whole")
    assert t.cycles == -(-best // cost.unit)


def test_tilings_are_deterministic():
    g = conv_graph(16, 40, 40, 32, 3, 1, (1, 1, 1, 1), 1, 1)
    spec = T.spec_for(g.nodes[0], g)
    runs = [T.solve(spec, {}, 16 * 1024) for _ in range(3)]
    assert len({(tuple(r.tiles.items()), r.order, r.cycles, r.dma_bytes) for r in runs}) == 1
    graphs = [GT.tile_graph(TG.ds_cnn(), {}, 32 * 1024) for _ in range(2)]
    assert [(t.tiles, t.order) for t in graphs[0].tilings] == [(t.tiles, t.order) for t in graphs[1].tilings]


def test_greedy_fallback_when_the_solver_has_no_answer(monkeypatch):
    g = conv_graph(16, 40, 40, 32, 3, 1, (1, 1, 1, 1), 1, 1)
    spec = T.spec_for(g.nodes[0], g)
    monkeypatch.setattr(T, "_solve_cp", lambda *a: ("UNKNOWN", None))
    t = T.solve(spec, {}, 8 * 1024)
    assert t.method == "greedy" and not t.optimal and t.n_tiles > 1
    check_tiling(t, 8 * 1024)


def test_halo_of_a_strided_dilated_conv_at_the_borders():
    """Rows of a 5x5 stride-2 dilation-2 conv with pads 3: windows clipped to the input at both ends."""
    g = conv_graph(3, 20, 20, 4, 5, 2, (3, 3, 3, 3), 2, 1)
    spec = T.spec_for(g.nodes[0], g)
    x = next(o for o in spec.operands if o.name == "x")
    rows = x.axes[2]
    # outputs [0, 3) read rows 0*2-3 .. 2*2-3+8 -> [-3, 10) clipped to [0, 10); the last output row 7 reads [11, 20)
    assert [int(v) for v in rows.window(0, 3, 20)] == [0, 10]
    assert [int(v) for v in rows.window(7, 1, 20)] == [11, 20]


def test_infeasible_budget_is_one_clear_error():
    g = TG.ds_cnn()
    with pytest.raises(TinydeployError) as e:
        GT.tile_graph(g, GT.choose_homes(g, 1024), 1024)
    msg = str(e.value)
    assert msg.startswith("node ") and "does not fit in L1 at any tiling" in msg and "1,024 bytes of L1" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("l1", [64 * 1024, 256 * 1024])
def test_networks_tile_into_l1(l1):
    """DS-CNN and the stories260K-shaped language model (prefill of 32 rows and a decode step):
    every node fits beside the L1-resident tensors alive with it; weights and caches stay in L2."""
    total = 0.0
    for g in (TG.ds_cnn(), TG.llm(32), TG.llm(1)):
        homes = GT.choose_homes(g, l1)
        assert all(homes[n] == "L2" for n, t in g.tensors.items() if t.is_const or t.state)
        t0 = time.process_time()
        r = GT.tile_graph(g, homes, l1)
        total += time.process_time() - t0
        for t in r.tilings:
            assert t.reserved + t.l1_bytes + T.Cost().align * len(t.buffers) <= l1, t.node
            assert t.dma_bytes >= t.min_dma_bytes
        assert r.solved < len(r.tilings)   # equal layers are solved once
    assert total < 10


def test_home_chooser_evicts_the_largest_activations():
    g = TG.llm(32)
    small, big = GT.choose_homes(g, 16 * 1024), GT.choose_homes(g, 1 << 20)
    acts = [n for n, t in g.tensors.items() if not t.is_const and not t.state]
    assert all(big[n] == "L1" for n in acts)
    evicted = [n for n in acts if small[n] == "L2"]
    assert evicted and min(g.tensors[n].nbytes for n in evicted) >= 1024
    live = GT.resident_bytes(g, small)
    assert max(live) <= 8 * 1024


def _graph(op, ins, out, attrs, consts=()):
    """One node; ins / out: (name, shape, dtype); consts: names among ins holding zeros."""
    g = Graph(op, {}, [], [n for n, *_ in ins if n not in consts], [out[0]])
    for name, shape, dtype in list(ins) + [out]:
        data = np.zeros(shape, dtype) if name in consts else None
        g.tensors[name] = Tensor(name, tuple(shape), np.dtype(dtype), data)
    g.nodes.append(Node(op, op.lower(), [n for n, *_ in ins], [out[0]], attrs))
    return g


I8, F32 = np.int8, np.float32
FAMILIES = {
    "maxpool ceil": _graph("QMaxPool", [("x", (1, 8, 33, 29), I8)], ("y", (1, 8, 17, 15), I8),
                           dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 0, 0], ceil_mode=1, rq=0)),
    "global avgpool": _graph("QAvgPool", [("x", (1, 64, 9, 9), I8)], ("y", (1, 64, 1, 1), I8),
                             dict(kernel_shape=[9, 9], m=[1], s=[1])),
    "softmax rows": _graph("QSoftmax", [("x", (40, 100), I8)], ("y", (40, 100), I8), dict(axis=-1, table=[0] * 256)),
    "softmax inner": _graph("QSoftmax", [("x", (3, 5, 300), I8)], ("y", (3, 5, 300), I8),
                            dict(axis=1, table=[0] * 256)),
    "layernorm": _graph("LayerNormalization", [("x", (12, 48), F32), ("g", (48,), F32), ("b", (48,), F32)],
                        ("y", (12, 48), F32), dict(axis=-1), consts=("g", "b")),
    "concat": _graph("Concat", [("a", (16, 3, 20), I8), ("b", (16, 5, 20), I8)], ("y", (16, 8, 20), I8),
                     dict(axis=1)),
    "transpose": _graph("Transpose", [("x", (8, 30, 20), I8)], ("y", (20, 8, 30), I8), dict(perm=[2, 0, 1])),
    "bias add": _graph("Add", [("x", (2, 30, 40), F32), ("b", (40,), F32)], ("y", (2, 30, 40), F32), {},
                       consts=("b",)),
    "channel mul": _graph("Mul", [("x", (1, 16, 8, 8), F32), ("s", (1, 16, 1, 1), F32)],
                          ("y", (1, 16, 8, 8), F32), {}, consts=("s",)),
    "lut": _graph("QLut", [("x", (1, 8, 30, 30), I8)], ("y", (1, 8, 30, 30), I8), dict(table=[0] * 256)),
    "gemm with C": _graph("Gemm", [("a", (20, 30), F32), ("w", (30, 40), F32), ("c", (20, 40), F32)],
                          ("y", (20, 40), F32), {}, consts=("w", "c")),
}


@pytest.mark.parametrize("name", list(FAMILIES))
def test_op_families_tile_at_a_tight_budget(name):
    """Each family's spec at an L1 that forces tiles: coverage, fit, buffers, DMA count."""
    g = FAMILIES[name]
    spec = T.spec_for(g.nodes[0], g)
    assert spec.dims, name   # a real TileSpec, not the untiled fallback
    t = T.solve(spec, {}, 2048, node=name)
    assert t.n_tiles > 1
    check_tiling(t, 2048)
    if g.nodes[0].op == "QMaxPool":   # halos with ceil_mode's last window past the input
        x = next(o for o in spec.operands if o.name == "x")
        for tile in t.grid():
            _, taps = conv_reads(8, 33, 29, 8, 3, 2, (1, 1, 0, 0), 1, 8, tile)
            assert list(T.window(x, tile)[1:]) == taps


def test_batch_items_get_one_tile_each():
    b = TG._B("conv")
    b.g.inputs = [b.t("x", (3, 4, 10, 10))]
    TG.conv(b, "conv", "x", 8, 3, 1, (1, 1, 1, 1))
    t = T.solve(T.spec_for(b.g.nodes[0], b.g), {}, 64 * 1024)
    assert t.tiles["N"] == 1 and t.counts["N"] == 3
    check_tiling(t, 64 * 1024)


def test_cost_from_a_kernel_description():
    from tinydeploy.ops.kernels import Kernels
    c = T.Cost.of(Kernels(), 8, dma_latency=30)
    assert c.cycles_per_mac == Kernels().direct_fast_per_mac / 8 and c.dma_latency == 30
    assert T.Cost.of(Kernels(fast=False), 1).cycles_per_mac == Kernels().direct_ref_per_mac


def test_rowwise_ops_with_row_scales_and_a_row_count():
    """The language model's row ops: [T, D] rows, [T, 2] row scales beside them, a row count and a
    gain vector whole (QRMSNormDyn's operands)."""
    from tinydeploy.ops.tiles import rowwise
    g = _graph("QRMSNormDyn", [("x", (64, 64), np.int16), ("n", (1,), np.int32), ("G", (64,), np.int16)],
               ("z", (64, 64), I8), {}, consts=("G",))
    g.tensors["F"] = Tensor("F", (64, 2), np.dtype(np.int32))
    g.nodes[0].outputs.append("F")
    t = T.solve(rowwise(g.nodes[0], g, (64, 64, 1)), {}, 2048)
    check_tiling(t, 2048)
    rows = {b.operand: b for b in t.buffers}
    assert t.tiles["O"] < 64 and rows["n"].moves == rows["G"].moves == 1
    assert rows["F"].bytes == t.tiles["O"] * 2 * 4
