"""Compile time grows linearly with the graph: doubling a chain must not quadruple the time of the
whole compile (frontend, passes, memory plan, C). Each kind exercises different passes
(tinydeploy.testing.chains); before the fix the ratio was about 4 for every one of them."""
import time

import onnx
import pytest

from tinydeploy.compiler import compile_onnx, emit_c
from tinydeploy.testing.chains import KINDS, chain

LINKS = {"Identity": 5000, "Add": 2500, "qdq_u8_add": 1000, "qdq_sigmoid": 1000}


def _cpu_seconds(kind, n, tmp_path):
    """Best of two: CPU time of this process, less disturbed by a busy machine than wall time."""
    path = tmp_path / f"{kind}{n}.onnx"
    onnx.save(chain(kind, n), path)
    best = float("inf")
    for k in range(2):
        t = time.process_time()
        emit_c(compile_onnx(path), tmp_path / f"c{n}_{k}")
        best = min(best, time.process_time() - t)
    return best


@pytest.mark.parametrize("kind", KINDS)
def test_compile_time_is_near_linear(kind, tmp_path):
    _cpu_seconds(kind, 10, tmp_path)   # imports and templates out of the way
    n = LINKS[kind]
    t1, t2 = _cpu_seconds(kind, n, tmp_path), _cpu_seconds(kind, 2 * n, tmp_path)
    assert t2 / t1 < 3.0, f"{kind}: {n} links {t1:.2f} s, {2 * n} links {t2:.2f} s (quadratic: ~4x)"
