"""rv32 target harness: toolchain, runtime, simulator (exact counts, errors, speed, libm bounds)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from tinydeploy.errors import TinydeployError
from tinydeploy.targets.rv32 import simulator
from tinydeploy.targets.rv32.elf import read_elf
from tinydeploy.targets.rv32.runner import Rv32Config, build, simulate

from rv32_reference import reference_run

C = Path(__file__).parent / "rv32_c"
DEFAULT = Rv32Config()
FPU = Rv32Config(fpu=True)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("rv32")


def _build(out: Path, name: str, config=DEFAULT, defines=None, include_dirs=(), tag=""):
    return build([C / f"{name}.c"], list(include_dirs), out / f"{name}{tag}", config, defines)


def test_hello_console_and_exit_code(out):
    res = _build(out, "hello", defines={"EXIT_CODE": "7"})
    sim = simulate(res, DEFAULT)
    assert sim.console == "hello, world\n-2147483648 deadbeef\n"
    assert sim.exit_code == 7
    assert 0 < sim.stack_used_bytes < 256
    assert res.sections[".stack"] == res.stack_bytes_reserved == DEFAULT.stack_bytes
    assert res.code_bytes == res.sections[".text"] > 0
    assert res.map_file.read_text().count(".text") > 0
    assert res.sram_used_bytes <= DEFAULT.sram_bytes


def test_exit_code_from_td_exit(out):
    res = _build(out, "hello", defines={"EXIT_CODE": "-3", "EXIT_VIA_TD_EXIT": ""}, tag="-exit")
    assert simulate(res, DEFAULT).exit_code == -3


def test_int8_matmul_bit_exact_against_numpy(out, tmp_path):
    rng = np.random.default_rng(0)
    m, k, n, mult, shift = 7, 33, 9, 1_518_500_250, 38
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    bias = rng.integers(-5000, 5000, n, dtype=np.int32)

    def arr(name, v, ctype):
        return f"static const {ctype} {name}{''.join(f'[{d}]' for d in v.shape)} = {{{', '.join(map(str, v.ravel()))}}};\n"

    (tmp_path / "rv32_matmul_data.h").write_text(
        f"#define M {m}\n#define K {k}\n#define N {n}\n#define MULT {mult}LL\n#define SHIFT {shift}\n"
        + arr("a", a, "int8_t") + arr("b", b, "int8_t") + arr("bias", bias, "int32_t"))
    res = _build(out, "matmul_i8", include_dirs=[tmp_path])
    sim = simulate(res, DEFAULT)
    acc = a.astype(np.int64) @ b.astype(np.int64) + bias
    q = np.clip((acc * mult + (1 << (shift - 1))) >> shift, -128, 127)
    assert np.array_equal(sim.read_array("acc_out", np.int32).reshape(m, n), acc)
    assert np.array_equal(sim.read_array("q_out", np.int8).reshape(m, n), q)
    assert len(set(q.ravel())) > 10  # the requantisation is exercised, not all saturated


def test_counts_are_exact_and_deterministic(out):
    res = _build(out, "counter")
    first, second = simulate(res, DEFAULT), simulate(res, DEFAULT)
    assert first.instructions == second.instructions
    assert first.read("t") == second.read("t") and first.read("raw") == second.read("raw")

    # Against a per-instruction reference: the total and every counter value served.
    total, served, console = reference_run(res.elf, DEFAULT.sram_bytes)
    assert first.console == console == "done\n"
    assert first.instructions == total
    t = first.read_array("t", np.uint64).tolist()
    raw = first.read_array("raw", np.uint32).tolist()
    assert [t[0], t[1], t[2], raw[0], raw[1], t[3]] == served
    # The loop between the first two reads costs a fixed number of instructions per iteration.
    assert t[1] - t[0] > 3 * 1000 and 0 < t[2] - t[1] < 10


@pytest.mark.parametrize("name, defines, config", [
    ("hello", {}, DEFAULT), ("float_f", {}, DEFAULT), ("float_f", {}, FPU), ("matmul_speed", {"N": "20"}, DEFAULT)],
    ids=["hello", "float-soft", "float-F", "matmul"])
def test_totals_match_per_instruction_reference(out, name, defines, config):
    res = _build(out, name, config, defines, tag="-ref-" + config.march)
    sim = simulate(res, config)
    total, served, console = reference_run(res.elf, config.sram_bytes)
    assert (sim.instructions, sim.console) == (total, console)


def test_python_fallback_hook_and_console_refills_agree(out):
    res = _build(out, "counter")
    fast = simulate(res, DEFAULT)
    elf = read_elf(res.elf)
    slow = simulator.run(elf, DEFAULT, use_c_hook=False)
    tiny_console = simulator.run(elf, DEFAULT, console_bytes=2)  # stop, drain, replay per 2 bytes
    for other in (slow, tiny_console):
        assert (other.instructions, other.console, other.read("t"), other.read("raw")) == \
               (fast.instructions, fast.console, fast.read("t"), fast.read("raw"))


def test_hook_build_failure_falls_back_with_a_warning(monkeypatch, tmp_path):
    from tinydeploy.targets.rv32 import hooks
    broken = tmp_path / "hook.c"
    broken.write_text("this is not C\n")
    monkeypatch.setattr(hooks, "_HOOK_SRC", broken)
    monkeypatch.setattr(hooks, "_hook_lib", False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.warns(RuntimeWarning, match="cannot build the C simulator hook"):
        assert hooks.hook_library() is None


def test_sram_overflow_is_one_line_naming_bytes(out, tmp_path):
    src = tmp_path / "big.c"
    src.write_text("const unsigned char big[100000] = {1};\n"
                   "int main(void) { return big[*(volatile int *)&big[5]]; }\n")
    small = Rv32Config(sram_bytes=64 * 1024)
    with pytest.raises(TinydeployError) as info:
        build([src], [], out / "big", small)
    msg = str(info.value)
    assert "\n" not in msg
    m = re.fullmatch(r"rv32: program needs ([\d,]+) bytes of SRAM but the target has 65,536 \(text [\d,]+, "
                     r"rodata ([\d,]+), data [\d,]+, bss [\d,]+, stack 8,192\)", msg)
    assert m, msg
    assert int(m.group(1).replace(",", "")) > 100000 + 8192
    assert int(m.group(2).replace(",", "")) >= 100000
    build([src], [], out / "big-ok", DEFAULT)  # fits in 512 KiB


def test_out_of_bounds_write_is_a_clear_error(out):
    res = _build(out, "faults", defines={"FAULT": "1"}, tag="1")
    with pytest.raises(TinydeployError,
                       match=r"^rv32: invalid memory access: write to unmapped address 0x80[0-9a-f]+ "
                             r"at pc 0x8000[0-9a-f]+ in main\(\)$"):
        simulate(res, DEFAULT)


def test_stack_overflow_is_detected(out):
    res = _build(out, "faults", defines={"FAULT": "2"}, tag="2")
    with pytest.raises(TinydeployError, match=r"^rv32: stack overflow: .*8,192-byte stack.* in deep\(\)\); "
                                              r"raise stack_bytes$"):
        simulate(res, DEFAULT)


def test_illegal_instruction_is_a_clear_error(out):
    res = _build(out, "faults", defines={"FAULT": "5"}, tag="5")
    with pytest.raises(TinydeployError, match=r"^rv32: illegal instruction .* in the block at 0x8000[0-9a-f]+ in main\(\)$"):
        simulate(res, DEFAULT)


def test_instruction_limit_is_a_clear_error(out):
    res = _build(out, "faults", defines={"FAULT": "3"}, tag="3")
    with pytest.raises(TinydeployError, match=r"did not finish within 100,000 instructions"):
        simulate(res, DEFAULT, max_instructions=100_000)


def test_guard_unmaps_sram_after_the_last_object(out):
    res = _build(out, "faults", defines={"FAULT": "4"}, tag="4")
    assert simulate(res, DEFAULT).exit_code == 0
    with pytest.raises(TinydeployError, match="write to unmapped address"):
        simulate(res, Rv32Config(guard=True))


def test_libc_functions(out):
    assert simulate(_build(out, "libc_eval"), DEFAULT).exit_code == 0


def test_fpu_build_runs_float_code(out):
    res = _build(out, "float_f", config=FPU)
    sim = simulate(res, FPU)
    x = (np.arange(16, dtype=np.float32) - 7) * np.float32(0.25)
    i, j = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
    w = (((i * 7 + j * 3) % 11) - 5).astype(np.float32) * np.float32(0.125)
    logits = (w.astype(np.float64) @ x)
    ref = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(sim.read_array("y", np.float32), ref, rtol=1e-6, atol=1e-7)
    assert sim.read_array("rms", np.float32)[0] == pytest.approx(math.sqrt(float((x.astype(np.float64) ** 2).mean())), rel=1e-7)
    soft = simulate(_build(out, "float_f", tag="-soft"), DEFAULT)  # same source without F
    assert soft.instructions > 3 * sim.instructions
    np.testing.assert_allclose(soft.read_array("y", np.float32), ref, rtol=1e-6, atol=1e-7)


def _libm_grid() -> np.ndarray:
    rng = np.random.default_rng(1)
    parts = [np.linspace(-10, 10, 2001), np.linspace(-1.5, 1.5, 1501), np.linspace(-104, 89, 600),
             np.geomspace(1e-30, 1e30, 600), np.geomspace(1e-44, 1e-37, 50), -np.geomspace(1e-8, 1, 100),
             rng.uniform(0.5, 4.5, 600), [0.0, -0.0, 1.0, 2.0, 4.0, 0.25]]
    return np.concatenate(parts).astype(np.float32)


# Stated bounds (see runtime/baremetal/libm.c), in ulp of the float32 result.
LIBM_BOUNDS = {"exp": 1.5, "expm1": 2.5, "log": 1.0, "sqrt": 0.5, "tanh": 3.0, "erf": 1.5,
               "sin": 2.0, "cos": 2.0}
LIBM_REFS = {"exp": np.exp, "expm1": np.expm1, "log": np.log, "sqrt": np.sqrt, "tanh": np.tanh,
             "erf": np.vectorize(math.erf), "sin": np.sin, "cos": np.cos}


@pytest.mark.parametrize("config", [DEFAULT, FPU], ids=["rv32imc", "rv32imfc"])
def test_libm_error_bounds(out, tmp_path, config):
    grid = _libm_grid()
    (tmp_path / "rv32_libm_grid.h").write_text(
        f"#define NX {len(grid)}\nstatic const float grid[NX] = {{"
        + ", ".join(f"{float(v).hex()}f" if v else ("-0.0f" if math.copysign(1, v) < 0 else "0.0f") for v in grid)
        + "};\n")
    sim = simulate(_build(out, "libm_eval", config, include_dirs=[tmp_path], tag=config.march), config)
    x = grid.astype(np.float64)
    with np.errstate(all="ignore"):
        for name, ref_fn in LIBM_REFS.items():
            got = sim.read_array(f"y_{name}", np.float32)
            ref = ref_fn(x)
            ref32 = ref.astype(np.float32)
            # Compare where the float32 reference is a normal number (subnormal results carry
            # fewer bits; expf's last multiply rounds them once, checked loosely below).
            ok = np.isfinite(ref32) & (np.abs(ref32) >= np.finfo(np.float32).tiny)
            ulp = np.spacing(np.abs(ref32[ok]))
            err = np.abs(got[ok].astype(np.float64) - ref[ok]) / ulp
            assert err.max() <= LIBM_BOUNDS[name], f"{name}f: {err.max():.2f} ulp at x={x[ok][err.argmax()]!r}"
            special = ~np.isfinite(ref32)
            assert np.array_equal(np.isnan(got[special]), np.isnan(ref32[special]))
            assert np.array_equal(got[special & ~np.isnan(ref32)], ref32[special & ~np.isnan(ref32)])
            tiny = np.isfinite(ref32) & ~ok
            assert np.all(np.abs(got[tiny] - ref32[tiny]) <= 2 * np.finfo(np.float32).smallest_subnormal)


def test_one_million_instructions_run_well_under_a_second(out):
    res = build([C / "matmul_speed.c"], [], out / "speed", DEFAULT, {"N": "48", "REPS": "1"})
    sim = simulate(res, DEFAULT)
    rate = sim.instructions / sim.seconds
    print(f"\nrv32: {sim.instructions:,} instructions in {sim.seconds * 1e3:.1f} ms = {rate / 1e6:.0f} M/s")
    assert sim.instructions > 800_000
    assert sim.seconds < 2.0


def test_config_from_toml_json_and_overrides(tmp_path):
    (tmp_path / "board.toml").write_text('[rv32]\nsram_bytes = "256KiB"\nfpu = true\nclock_hz = 1e8\n')
    cfg = Rv32Config.load(tmp_path / "board.toml", stack_bytes=4096)
    assert (cfg.sram_bytes, cfg.fpu, cfg.clock_hz, cfg.stack_bytes) == (256 * 1024, True, 100_000_000, 4096)
    (tmp_path / "board.json").write_text(json.dumps({"sram_bytes": 131072, "guard": True}))
    assert Rv32Config.load(tmp_path / "board.json") == Rv32Config(sram_bytes=131072, guard=True)
    with pytest.raises(TinydeployError, match="unknown target option 'sram'"):
        Rv32Config.load(None, sram=5)
    with pytest.raises(TinydeployError, match="multiple of 4096"):
        Rv32Config(sram_bytes=1000)
