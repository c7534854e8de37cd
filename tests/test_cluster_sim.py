"""Cluster target harness: multi-core simulator (counts, barrier, DMA, determinism, errors), runtime, config."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tinydeploy.errors import TinydeployError
from tinydeploy.targets.cluster import simulator
from tinydeploy.targets.cluster.runner import ClusterConfig, build, simulate
from tinydeploy.targets.rv32.elf import read_elf

C = Path(__file__).parent / "cluster_c"
EIGHT, ONE = ClusterConfig(), ClusterConfig(cores=1)
MULT, SHIFT = 1_518_500_250, 39
SHAPES = {"gemv": (1, 512, 256), "matmul": (4, 256, 128)}  # M, N, K


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("cluster")


@pytest.fixture(scope="module")
def linear(out):
    """Builds of the linear kernel by shape name, made on first use."""
    cache = {}

    def get(shape):
        if shape not in cache:
            m, n, k = SHAPES[shape]
            cache[shape] = build([C / "linear_db.c"], [], out / shape, EIGHT, {"M": str(m), "N": str(n), "K": str(k)})
        return cache[shape]
    return get


@pytest.fixture(scope="module")
def checks(out):
    return build([C / "checks.c"], [], out / "checks", EIGHT)


def _linear_data(shape, seed=0):
    m, n, k = SHAPES[shape]
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (m, k), dtype=np.int8)
    w = rng.integers(-128, 128, (n, k), dtype=np.int8)
    b = rng.integers(-5000, 5000, n, dtype=np.int32)
    acc = x.astype(np.int64) @ w.astype(np.int64).T + b
    ref = np.clip((acc * MULT + (1 << (SHIFT - 1))) >> SHIFT, -128, 127).astype(np.int8)
    assert len(np.unique(ref)) > 50  # the requantisation is exercised, not all saturated
    return dict(x_l2=x, w_l2=w, b_l2=b), ref


def _run_linear(art, config, shape, flags=0, **options):
    inputs, ref = _linear_data(shape)
    inputs["params"] = np.array([MULT, SHIFT, flags, 0], np.int32)
    res = simulate(art, config, inputs=inputs, **options)
    _check_accounting(res)
    return res, res.read_array("y_l2", np.int8).reshape(ref.shape), ref


def _check_accounting(res):
    """Every core's modelled cycles are its instructions plus its waits; the cluster's the maximum."""
    for n, bar, dma, cyc in zip(res.instructions, res.idle_barrier, res.idle_dma, res.core_cycles):
        assert cyc == n + bar + dma
    assert res.cycles == max(res.core_cycles + [t.done for t in res.transfers])
    assert res.dma_bytes == sum(t.nbytes for t in res.transfers)


def _signature(res):
    return (res.instructions, res.idle_barrier, res.idle_dma, res.core_cycles, res.cycles, res.console,
            [(t.core, t.issue, t.start, t.done) for t in res.transfers], res.l1.tobytes(), res.l2.tobytes())


@pytest.mark.parametrize("shape", list(SHAPES))
def test_linear_kernel_bit_exact_on_1_and_8_cores_and_7x_faster_on_8(linear, shape):
    art = linear(shape)
    one, y1, ref = _run_linear(art, ONE, shape)
    eight, y8, _ = _run_linear(art, EIGHT, shape)
    assert np.array_equal(y1, ref) and np.array_equal(y8, ref)
    assert eight.exit_codes == [0] * 8 and len(eight.instructions) == 8
    speedup = one.cycles / eight.cycles
    print(f"\n{shape}: {one.cycles:,} -> {eight.cycles:,} modelled cycles, {speedup:.2f}x; "
          f"DMA overlap {one.dma_overlap:.3f} (1 core) {eight.dma_overlap:.3f} (8 cores); "
          f"{eight.instructions_per_second / 1e6:.0f} M instructions/s")
    assert speedup >= 7.0
    # the work is split evenly: every core retires within 1 % of the mean
    assert max(eight.instructions) < 1.01 * min(eight.instructions)
    # one core: every DMA stall is that core's, and double buffering hides most of the DMA time
    assert one.dma_stall_cycles == one.idle_dma[0]
    assert one.dma_overlap > 0.9


def test_counts_identical_across_quanta_and_runs(linear):
    art = linear("gemv")
    runs = [_run_linear(art, EIGHT, "gemv", quantum=q)[0] for q in (512, 3_001, 20_000, 10**9, 3_001)]
    first = _signature(runs[0])
    for res in runs[1:]:
        assert _signature(res) == first
    assert runs[0].idle_barrier != [0] * 8 and runs[0].idle_dma != [0] * 8  # waits happen, and are exact


def test_missing_dma_wait_gives_wrong_results(linear):
    good, y_good, ref = _run_linear(linear("gemv"), EIGHT, "gemv")
    res, y, _ = _run_linear(linear("gemv"), EIGHT, "gemv", flags=1)
    assert np.array_equal(y_good, ref) and (y != ref).mean() > 0.5
    assert sum(res.idle_dma) < sum(good.idle_dma)  # the skipped waits would have stalled


def test_core_reading_l2_is_a_clear_error(linear):
    with pytest.raises(TinydeployError) as info:
        _run_linear(linear("gemv"), EIGHT, "gemv", flags=2)
    msg = str(info.value)
    w = linear("gemv").symbols["w_l2"][0]
    assert re.fullmatch(rf"cluster: core 3 read from L2 address {w + 100:#x} at pc 0x1c0[0-9a-f]{{5}} in main\(\): "
                        r"the cores reach L2 data only through the DMA", msg), msg


def test_barrier_waits_are_charged_to_the_early_cores(checks):
    res = simulate(checks, EIGHT, inputs={"mode": np.array([1, 0, 0, 0], np.int32)})
    _check_accounting(res)
    before, after = res.read_array("stamps", np.uint64).reshape(8, 2).T.astype(np.int64)
    # core i arrives at before[i] + a constant and waits until the last core arrives
    arrival = before + res.idle_barrier
    assert len(set(arrival.tolist())) == 1
    assert res.idle_barrier[7] == 0 and all(np.diff(res.idle_barrier) < 0)
    assert len(set(after.tolist())) == 1 and after[0] > before.max()  # all leave at the same cycle
    assert res.idle_dma == [0] * 8


def test_dma_2d_3d_strided_copies(checks):
    rng = np.random.default_rng(3)
    cube = rng.integers(-128, 128, (5, 7, 24), dtype=np.int8)
    res = simulate(checks, EIGHT, inputs={"mode": np.array([2, 0, 0, 0], np.int32), "cube_l2": cube})
    _check_accounting(res)
    block = cube[1:4, 2:6, 3:19]
    assert np.array_equal(res.read_array("block_l1", np.int8).reshape(3, 4, 16), block)
    rows = res.read_array("rows_l2", np.int8).reshape(12, 20)
    assert np.array_equal(rows[:, 2:18], block.reshape(12, 16))
    assert not rows[:, :2].any() and not rows[:, 18:].any()
    assert np.array_equal(res.read_array("flat_l2", np.int8), block.ravel())
    cfg = EIGHT
    assert [t.nbytes for t in res.transfers] == [192] * 3
    assert res.dma_cycles == 3 * (cfg.dma_latency + 192 // cfg.dma_bytes_per_cycle)
    for t in res.transfers:
        assert t.done - t.start == cfg.dma_latency + -(-t.nbytes // cfg.dma_bytes_per_cycle)


def test_dma_requests_served_in_simulated_time_order(checks):
    src = np.arange(512, dtype=np.uint16).astype(np.int8).reshape(8, 64)
    results = [simulate(checks, EIGHT, quantum=q, inputs={"mode": np.array([3, 0, 0, 0], np.int32), "src_l2": src})
               for q in (512, 10**9)]
    assert _signature(results[0]) == _signature(results[1])
    res = results[0]
    _check_accounting(res)
    assert np.array_equal(res.read_array("dst_l1", np.int8).reshape(8, 64), src)
    # core 7 works least, so it starts first and gets id 0
    assert res.read_array("ids", np.uint32).tolist() == [7 - i for i in range(8)]
    ts = res.transfers
    assert [t.core for t in ts] == [7 - i for i in range(8)]
    assert all(a.issue <= b.issue for a, b in zip(ts, ts[1:]))
    assert ts[0].start == ts[0].issue
    assert all(b.start == max(b.issue, a.done) for a, b in zip(ts, ts[1:]))
    assert any(b.start > b.issue for b in ts)  # the channel was busy: requests queued


def test_console_output_in_simulated_time_order(checks):
    res = simulate(checks, EIGHT, inputs={"mode": np.array([4, 0, 0, 0], np.int32)})
    assert res.console == "76543210"
    four = simulate(checks, ClusterConfig(cores=4), inputs={"mode": np.array([4, 0, 0, 0], np.int32)})
    assert four.console == "3210" and len(four.instructions) == 4


def test_python_fallback_hook_gives_the_same_counts(checks):
    inputs = {"mode": np.array([1, 0, 0, 0], np.int32)}
    fast = simulate(checks, EIGHT, inputs=inputs)
    slow = simulator.run(read_elf(checks.elf), EIGHT, inputs=inputs, use_c_hook=False)
    assert _signature(slow) == _signature(fast)


@pytest.mark.parametrize("mode, pattern", [
    (5, r"cluster: deadlock: cores 1, 2, 3, 4, 5, 6, 7 wait at the barrier but cores 0 have finished"),
    (6, r"cluster: core 2 at pc 0x1c0[0-9a-f]{5} in main\(\): DMA destination 0x100\.\.0x110 is not inside L1 or L2"),
    (7, r"cluster: core 1: invalid memory access: write to read-only address 0x1c0[0-9a-f]{5} "
        r"at pc 0x1c0[0-9a-f]{5} in main\(\)"),
], ids=["deadlock", "dma-outside", "code-write"])
def test_program_errors_are_one_line(checks, mode, pattern):
    with pytest.raises(TinydeployError) as info:
        simulate(checks, EIGHT, inputs={"mode": np.array([mode, 0, 0, 0], np.int32)})
    assert re.fullmatch(pattern, str(info.value)), str(info.value)


def test_harness_errors(checks):
    with pytest.raises(TinydeployError, match=r"input 'mode' has 4 bytes but the symbol has 16"):
        simulate(checks, EIGHT, inputs={"mode": np.int32(1)})
    with pytest.raises(TinydeployError, match=r"no symbol 'nope'"):
        simulate(checks, EIGHT, inputs={"nope": np.int32(1)})
    with pytest.raises(TinydeployError, match=r"memory layout .* at most its 8 cores"):
        simulate(checks, ClusterConfig(cores=9))
    with pytest.raises(TinydeployError, match=r"quantum must be at least 512"):
        simulate(checks, EIGHT, quantum=100)
    with pytest.raises(TinydeployError, match=r"did not finish within 1,000 instructions"):
        simulate(checks, EIGHT, inputs={"mode": np.array([1, 0, 0, 0], np.int32)}, max_instructions=1000)


def test_memory_placement_and_l1_overflow(out, checks, tmp_path):
    syms, cfg = checks.symbols, EIGHT
    assert 0x1000_0000 <= syms["block_l1"][0] < 0x1000_0000 + cfg.l1_bytes
    assert syms["cube_l2"][0] >= 0x1C00_0000 + 4096 and syms["cube_l2"][0] % 4096 == 0  # own pages, unmapped
    assert checks.sections[".stack"] == cfg.cores * cfg.stack_bytes
    assert checks.l1_used_bytes <= cfg.l1_bytes and checks.l2_used_bytes <= cfg.l2_bytes
    src = tmp_path / "big.c"
    src.write_text('#include "td_cluster.h"\nint8_t big[300000] TD_L1;\n'
                   "int main(void) { return big[td_core_id()]; }\n")
    with pytest.raises(TinydeployError) as info:
        build([src], [], out / "big", cfg)
    msg = str(info.value)
    m = re.fullmatch(r"cluster: program needs ([\d,]+) bytes of L1 but the target has 262,144 "
                     r"\(data 0, bss 0, l1 300,000, stack 16,384\)", msg)
    assert m, msg
    assert int(m.group(1).replace(",", "")) >= 316_384


def test_config_from_toml_json_and_validation(tmp_path):
    (tmp_path / "c.toml").write_text('[cluster]\ncores = 4\nl1_bytes = "128KiB"\nclock_hz = 5e8\ndma_latency = 30\n')
    cfg = ClusterConfig.load(tmp_path / "c.toml", fpu=True)
    assert (cfg.cores, cfg.l1_bytes, cfg.clock_hz, cfg.dma_latency, cfg.fpu) == (4, 131072, 500_000_000, 30, True)
    assert cfg.l2_bytes == 2 << 20 and cfg.dma_bytes_per_cycle == 8
    (tmp_path / "c.json").write_text(json.dumps({"l2_bytes": "4MiB", "dma_bytes_per_cycle": 4}))
    assert ClusterConfig.load(tmp_path / "c.json") == ClusterConfig(l2_bytes=4 << 20, dma_bytes_per_cycle=4)
    assert ClusterConfig().memory_levels == {"L1": 256 * 1024, "L2": 2 * 1024 * 1024}
    for bad, match in [({"cores": 0}, "cores must be between 1 and 32"), ({"l1_bytes": 1000}, "multiple of 4096"),
                       ({"stack_bytes": 64 * 1024}, "8 stacks of 65,536 bytes do not fit"),
                       ({"dma_bytes_per_cycle": 0}, "dma_bytes_per_cycle must be at least 1"),
                       ({"l1": 5}, "unknown target option 'l1'"), ({"fpu": "yes"}, "fpu must be true or false")]:
        with pytest.raises(TinydeployError, match=match):
            ClusterConfig.from_dict(bad)
