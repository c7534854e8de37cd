"""Fast int8 kernels on the rv32 simulator: instructions per MAC from the per-layer counts, bit-exact
against host C and the golden model; the fixed model set on rv32 == host; --target-config."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import rv32_kernels as bench  # noqa: E402


def _per_mac(model):
    q, inputs = bench.quantized(model)
    return bench.measure(q, inputs)   # asserts rv32 == host == golden


def test_conv3x3_direct_at_most_2_6_instructions_per_mac():
    r = _per_mac(bench.conv_model(32, 32, 16))
    assert r["op"] == "QConv" and r["macs"] == 32 * 32 * 9 * 256
    assert r["per_mac"] <= 2.6, r


def test_matmul_64_instructions_per_mac():
    r = _per_mac(bench.matmul_model(64, 64, 64))
    assert r["op"] == "QMatMul" and r["macs"] == 64 ** 3
    # measured 2.594: 4x5 / 5x4 register blocks, k loop and requantization in one asm statement
    assert r["per_mac"] <= 2.6, r


@pytest.mark.parametrize("mkn", [(13, 70, 24), (9, 40, 12), (8, 1, 20), (5, 5, 4), (4, 520, 8)])
def test_matmul_blocks_bit_exact(mkn):
    """4x5, 5x4, 4x4 and 1x4 blocks, k remainders, K = 1, and K too large for the asm offsets."""
    bench.measure(*bench.quantized(bench.matmul_model(*mkn)))


def test_depthwise_fast_instructions_per_mac():
    r = _per_mac(bench.conv_model(32, 32, 16, group=32))
    assert r["op"] == "QConv" and r["per_mac"] <= 3.8, r      # measured 3.68 (reference kernel: 8.0)


@pytest.mark.parametrize("c,hw,pad", [(5, 7, 1), (8, 5, 0), (3, 3, 0), (4, 4, 2)])
def test_depthwise_bit_exact(c, hw, pad):
    """Row lengths 1 to 8 (every remainder of the unrolled column loop), with and without padding."""
    bench.measure(*bench.quantized(bench.conv_model(c, c, hw, pad=pad, group=c)))


def test_generated_asm_header_current():
    from tinydeploy.targets.rv32 import kernel_asm
    assert kernel_asm.OUT.read_text() == kernel_asm.header(), "run python -m tinydeploy.targets.rv32.kernel_asm"


def test_fast_paths_bit_exact_on_odd_shapes():
    """Remainder rows, odd channel counts, a 1x1 conv and a padded 5x5: fast or fallback, all exact."""
    bench.measure(*bench.quantized(bench.matmul_model(6, 24, 8, gemm=True)))
    bench.measure(*bench.quantized(bench.conv_model(3, 8, 8, ksize=5, pad=2)))
    bench.measure(*bench.quantized(bench.conv_model(5, 8, 8, ksize=1, pad=0)))


def _zoo(name):
    from tinydeploy.testing import zoo
    from tinydeploy.testing.quant import quantize, random_inputs
    model = getattr(zoo, name)()
    q = quantize(model, random_inputs(model, seed=0, n=4))
    return q, random_inputs(model, seed=7, n=1)[0]


@pytest.mark.parametrize("name", ["cnn", pytest.param("mlp", marks=pytest.mark.slow),
                                  pytest.param("transformer_block", marks=pytest.mark.slow)])
def test_model_set_rv32_equals_host(name):
    q, inputs = _zoo(name)
    r = bench.measure(q, inputs)
    assert r["code_bytes"] > 0


def test_target_config_option(tmp_path):
    from test_slice_conv import _conv_relu_model, _quantize
    q = _quantize(_conv_relu_model(), "qdq", "s8", tmp_path)
    onnx.save(q, tmp_path / "q.onnx")
    np.savez(tmp_path / "in.npz", x=np.random.default_rng(3).standard_normal((1, 3, 8, 8)).astype(np.float32))
    (tmp_path / "board.toml").write_text("[rv32]\nclock_hz = 100000000\nsram_bytes = '256KiB'\n")
    base = [sys.executable, "-m", "tinydeploy.cli"]
    r = subprocess.run(base + ["run", str(tmp_path / "q.onnx"), "--target", "rv32", "--inputs", str(tmp_path / "in.npz"),
                               "--outputs", str(tmp_path / "o.npz"), "--report", str(tmp_path / "r.json"),
                               "--target-config", str(tmp_path / "board.toml")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "r.json").read_text())["clock_hz"] == 100_000_000
    (tmp_path / "bad.json").write_text('{"sram_kb": 3}')
    r = subprocess.run(base + ["compile", str(tmp_path / "q.onnx"), "--target", "rv32", "-o", str(tmp_path / "c"),
                               "--target-config", str(tmp_path / "bad.json")], capture_output=True, text=True)
    assert r.returncode == 1 and "unknown target option" in r.stderr
