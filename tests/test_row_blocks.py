"""passes/row_blocks.py + schedule/blocks.py: runs of row-wise ops run in blocks of rows. Generated C
== golden (which runs the graph unblocked) for a partial last block, tensors private to a region
hold one block of rows, an in-place op whose input dies there updates it in place, and a node that is
not row-wise (or a different row count) ends a region."""
import numpy as np

from ops_testlib import IrCases
from tinydeploy.compiler import compile_graph
from tinydeploy.inspect import describe
from tinydeploy.ops.intmath import scale_from_float
from tinydeploy.schedule.blocks import block_aliases, regions
from tinydeploy.schedule.buffers import alias_roots

T, D, N = 20, 32, 24


def _norm(b, x, rows, T, D, name):
    return b.node("QRMSNormDyn", [x, rows, b.const(name, np.full(D, 16384, np.int16))], ((T, D), np.int8),
                  ((T, 2), np.int32), out=False, epsn=1, c=scale_from_float(np.sqrt(D) / 2**14 / 127), qmax=127)


def _linear(b, x8, F, rows, cols, out, name, r):
    w8 = r.integers(-127, 128, (out, cols)).astype(np.int8)
    mw = r.integers(1 << 14, 1 << 15, out * cols // 32).astype(np.int16)
    return b.node("QLinearDyn", [x8, F, rows, b.const(f"{name}_w", w8), b.const(f"{name}_m", mw)],
                  ((T, out), np.int16), out=False, c=scale_from_float(3e-4), bits=16)


def _cases(n: int) -> IrCases:
    """x -> norm -> linear -> norm -> linear -> x + .  (region 0, n rows) -> Gather row 0 -> norm (region 1)."""
    r = np.random.default_rng(2)
    b = IrCases("blocks")
    x = b.input("x", r.integers(-4000, 4000, (T, D)).astype(np.int16))
    rows = b.input("n", np.array([n], np.int32))
    h = _linear(b, *_norm(b, x, rows, T, D, "g1"), rows, D, N, "l1", r)
    h = _linear(b, *_norm(b, h, rows, T, N, "g2"), rows, N, D, "l2", r)
    y = b.node("QAddSat", [x, h, rows], ((T, D), np.int16), bits=16)
    row0 = b.node("Gather", [y, b.const("zero", np.array([0], np.int32))], ((1, D), np.int16), out=False, axis=0)
    b.node("QRMSNormDyn", [row0, "", b.const("g3", np.full(D, 16384, np.int16))], ((1, D), np.int8),
           ((1, 2), np.int32), epsn=1, c=(16384, 20), qmax=127)
    return b


def test_blocked_c_equals_unblocked_golden():
    for n in (13, 20):  # a partial last block; all rows
        b = _cases(n)
        gold, host = b.run()
        for name in b.g.outputs:
            k = n if gold[name].shape[0] == T else 1
            np.testing.assert_array_equal(gold[name][:k], host[name][:k], err_msg=f"{name}, n={n}")


def test_regions_sizes_and_in_place_residual():
    c = compile_graph(_cases(13).g)
    g = c.graph
    regs = regions(g, alias_roots(g))
    assert [(r.block, r.rows, r.count) for r in regs] == [(8, T, "n"), (1, 1, "")]
    assert [g.nodes[k].op for k in range(regs[0].steps[1])][-1] == "QAddSat"
    sizes = {b.name: b.size for b in c.buffers}
    for name in regs[0].internal:  # one block of rows
        assert sizes[name] == g.tensors[name].nbytes // T * 8
    x = g.inputs[0]
    assert not block_aliases(g)  # the residual input x is a graph input: never overwritten
    assert sizes[x] == g.tensors[x].nbytes and x in regs[0].external
    assert "row block r0" in describe(c)


def test_in_place_alias_when_input_dies():
    b = _cases(13)
    g = b.g  # make x an intermediate: QAddSat's input 0 then dies at the add
    g.inputs[0] = "x_in"
    g.tensors["x_in"] = g.tensors["x"].__class__("x_in", (T, D), np.dtype(np.int16))
    b.feeds["x_in"] = b.feeds.pop("x")
    from tinydeploy.ir import Node
    g.nodes.insert(0, Node("QAddSat", "pre", ["x_in", "x_in", "n"], ["x"], {"bits": 16}))
    c = compile_graph(g)
    add = next(n for n in c.graph.nodes if n.name.startswith("qaddsat"))
    assert block_aliases(c.graph)[add.outputs[0]] == add.inputs[0]
    assert c.offsets[add.outputs[0]] == c.offsets[add.inputs[0]]
    gold, host = b.run()
    name = add.outputs[0]
    np.testing.assert_array_equal(gold[name][:13], host[name][:13])
