"""Index-driven ops (GatherElements, GatherND, Scatter*, OneHot, TopK) and masks (Trilu, EyeLike,
Compress) vs ONNX Runtime and host C, with run-time indices where the op allows them."""
import numpy as np
import pytest
from onnx import TensorProto

import ops_testlib
from ops_testlib import Cases

ops_testlib._ONNX.update({np.dtype(np.bool_): TensorProto.BOOL, np.dtype(np.int64): TensorProto.INT64})


def _c(b, v, dtype=np.int64):
    return b._const(np.asarray(v, dtype), "c")


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_select_ops_match_ort(cc):
    b = Cases(seed=40, opset=18)
    x = b.raw_input((3, 4, 5), np.float32)
    i_el = b.raw_input((3, 2, 5), np.int64, low=-4, high=3)
    b.out(b.op("GatherElements", x, i_el, axis=1), label="gather_elements")
    i_nd = b.raw_input((3, 2, 1), np.int64, low=-4, high=3)
    b.out(b.op("GatherND", x, i_nd, batch_dims=1), label="gather_nd_batch")
    b.out(b.op("GatherND", x, b.raw_input((2, 2), np.int64, low=0, high=2)), label="gather_nd")
    upd = b.raw_input((3, 2, 5), np.float32)
    # distinct indices per scatter line: ORT leaves duplicate order unspecified for "none"
    perm = np.stack([np.stack([b.rng.permutation(4)[:2] for _ in range(5)], axis=1) for _ in range(3)])
    b.out(b.op("ScatterElements", x, _c(b, perm), upd, axis=1), label="scatter_elements")
    b.out(b.op("ScatterElements", x, i_el, upd, axis=1, reduction="add"), label="scatter_add")
    b.out(b.op("ScatterND", x, _c(b, [[0, 1], [2, 3]]), b.raw_input((2, 5), np.float32), reduction="max"),
          label="scatter_nd_max")
    b.out(b.op("OneHot", b.raw_input((2, 3), np.int64, low=-5, high=6), _c(b, 5, np.float32),
               _c(b, [-1.0, 2.5], np.float32), axis=1), label="onehot")
    values, indices = b.op("TopK", b.raw_input((4, 6), np.float32), _c(b, [3]), axis=-1, n_out=2)
    b.out(values, label="topk_values")
    b.out(indices, np.int64, label="topk_indices")
    t = b.raw_input((2, 4, 5), np.int64, low=-9, high=9)
    b.out(b.op("Trilu", t, _c(b, -1), upper=0), np.int64, label="tril")
    b.out(b.op("EyeLike", b.raw_input((3, 5), np.float32), k=-1), label="eyelike")
    b.out(b.op("Compress", x, b._const(np.array([True, False, True, True]), "m"), axis=1), label="compress")
    b.check(cc=cc, rtol=0, atol=0)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_losses_match_ort(reduction):
    b = Cases(seed=41, opset=13)
    x = b.raw_input((3, 5, 2, 4), np.float32)
    t = b.raw_input((3, 2, 4), np.int64, low=0, high=4)
    w = b.fconst(b.rng.uniform(0.2, 2, 5))
    lp = b.op("LogSoftmax", x, axis=1)
    b.out(b.op("NegativeLogLikelihoodLoss", lp, t, w, reduction=reduction, ignore_index=2), label="nll")
    loss, log_prob = b.op("SoftmaxCrossEntropyLoss", x, t, reduction=reduction, n_out=2)
    b.out(loss, label="sce")
    b.out(log_prob, label="sce_log_prob")
    b.check(rtol=1e-5, atol=1e-6)


def test_cumsum_matches_ort():
    b = Cases(seed=42, opset=14)
    x = b.raw_input((3, 4, 5), np.float32)
    for ex in (0, 1):
        for rev in (0, 1):
            b.out(b.op("CumSum", x, _c(b, -2), exclusive=ex, reverse=rev), label=f"cumsum_{ex}{rev}")
    b.out(b.op("CumSum", b.raw_input((6,), np.int64, low=-9, high=9), _c(b, 0), exclusive=1), np.int64, label="i64")
    b.check(rtol=1e-6, atol=1e-6)


def test_arg_hardmax_reverse_sequence_match_ort():
    b = Cases(seed=43, opset=13)
    v = b.rng.integers(-3, 3, (3, 4, 5)).astype(np.float32)   # ties: first / last index rules matter
    x = b.raw_input((3, 4, 5), np.float32, values=v)
    for op in ("ArgMax", "ArgMin"):
        for last in (0, 1):
            b.out(b.op(op, x, axis=1, keepdims=0, select_last_index=last), np.int64, label=f"{op}{last}")
    b.out(b.op("ArgMax", b.raw_input((2, 6), np.int8), axis=-1), np.int64, label="argmax_i8")
    b.out(b.op("Hardmax", x, axis=2), label="hardmax")
    lens = b.raw_input((4,), np.int64, values=np.int64([1, 3, 0, 2]))
    b.out(b.op("ReverseSequence", b.raw_input((3, 4, 2), np.float32), lens, time_axis=0, batch_axis=1),
          label="revseq")
    b.check(rtol=1e-6, atol=1e-6)
