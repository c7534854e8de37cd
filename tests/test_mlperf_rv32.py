"""benchmarks/mlperf_rv32.py: layer kinds of the MLPerf Tiny shapes, and one small network measured
end to end (rv32 == golden is asserted inside `measure`)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import mlperf_rv32 as bench  # noqa: E402
from tinydeploy.testing import tiling_graphs  # noqa: E402


def _kinds(g):
    return {bench.kind(n, g) for n in g.nodes}


def test_layer_kinds_of_the_mlperf_shapes():
    assert _kinds(tiling_graphs.ds_cnn()) >= {"conv 10x4 stride 2", "depthwise 3x3 stride 1", "conv 1x1 stride 1", "dense"}
    assert _kinds(tiling_graphs.mobilenet_v1()) >= {"conv 3x3 stride 2", "depthwise 3x3 stride 2", "conv 1x1 stride 1"}
    assert _kinds(tiling_graphs.resnet8()) >= {"conv 3x3 stride 1", "conv 3x3 stride 2", "conv 1x1 stride 2"}


def test_fc_autoencoder_measured_integer_and_tabled():
    r = bench.measure("tflite_fc_autoencoder")
    rep = r["rep"]
    assert rep["float_nodes"] == [] and {l["kind"] for l in rep["layers"]} == {"dense"}
    assert rep["macs"] == sum(a * b for a, b in zip(bench.exporters.tflite_fc_autoencoder.__defaults__[1],
                                                    bench.exporters.tflite_fc_autoencoder.__defaults__[1][1:]))
    assert sum(l["cycles"] for l in rep["layers"]) <= rep["cycles"]
    row = bench.table([r])[2]
    assert f"{rep['macs']:,}" in row and "fits, integer, exact: yes" in row
