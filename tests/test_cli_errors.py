"""Bad input gets one clear line on stderr, a non-zero exit, no traceback and no partial output."""
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinydeploy.limits import HOST_CONST_BYTES


def _model(nodes, inputs=None, outputs=None, inits=(), opsets=(("", 17),)):
    g = helper.make_graph(nodes, "m", inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    m.ir_version = 8
    return m


def _nested_if(depth):
    """y = If(c) { If(c) { … Relu(x) … } } else { Relu(x) }: subgraphs nested `depth` deep."""
    def branch(k, nodes, out):
        return helper.make_graph(nodes, f"b{k}", [], [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 4])])
    leaf = branch(0, [helper.make_node("Relu", ["x"], ["r0"])], "r0")
    body = leaf
    for k in range(1, depth + 1):
        out = "y" if k == depth else f"r{k}"
        node = helper.make_node("If", ["c"], [out], name=f"if{k}", then_branch=body, else_branch=leaf)
        body = branch(k, [node], out)
    return _model([node], inits=[numpy_helper.from_array(np.array(True), "c")])


def _external(name):
    """An initializer whose data lives in a file beside the model (w.bin, never written)."""
    t = numpy_helper.from_array(np.ones((1, 4), np.float32), name)
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value="w.bin")
    return t


def _relu():
    return _model([helper.make_node("Relu", ["x"], ["y"])])


BAD_MODELS = {
    "truncated": (lambda: _relu().SerializeToString()[:-7], "not a valid ONNX protobuf"),
    "garbage": (lambda: b"\x00\x01not onnx at all" * 10, "cannot read"),
    "missing_initializer": (lambda: _model([helper.make_node("Add", ["x", "w"], ["y"])]), "missing initializer"),
    "no_outputs": (lambda: helper.make_model(helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        []), opset_imports=[helper.make_opsetid("", 17)], ir_version=8), "the graph has no outputs"),
    "cyclic": (lambda: _model([helper.make_node("Add", ["x", "b"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
                               helper.make_node("Relu", ["a"], ["y"])]), "cycle through node"),
    "unknown_op": (lambda: _model([helper.make_node("Frobnicate", ["x"], ["y"], name="f1")]), "node f1: Frobnicate"),
    "custom_domain": (lambda: _model([helper.make_node("Foo", ["x"], ["y"], domain="my.ops", name="f2")]), "node f2"),
    "dynamic_dim": (lambda: _model([helper.make_node("Relu", ["x"], ["y"])],
                                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])]), "--shape x=Nx4"),
    "zero_dim": (lambda: _model([helper.make_node("Relu", ["x"], ["y"])],
                                [helper.make_tensor_value_info("x", TensorProto.FLOAT, [0, 4])],
                                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [0, 4])]),
                 "input 'x' has a size of 0 (axis 0)"),
    "absurd_size": (lambda: _model([helper.make_node("Expand", ["x", "s"], ["y"])],
                                   outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                                   inits=[numpy_helper.from_array(np.array([1 << 28, 4], np.int64), "s")]),
                    "beyond any target"),
    "lying_output_shape": (lambda: _model([helper.make_node("Relu", ["x"], ["y"], name="r1")],
                                          outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])]),
                           "node r1 (Relu): tensor 'y' is [1, 4] float32, but the model declares [1, 2] float32"),
    "conv_stride_zero": (lambda: _model([helper.make_node("Conv", ["x", "w"], ["y"], name="c1", strides=[0, 1])],
                                        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                                        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                                        [numpy_helper.from_array(np.ones((1, 1, 3, 3), np.float32), "w")]),
                         "node c1 (Conv): attribute strides = [0, 1]: every value must be at least 1"),
    "zero_scale": (lambda: _model([helper.make_node("QuantizeLinear", ["x", "s"], ["y"], name="q1")],
                                  outputs=[helper.make_tensor_value_info("y", TensorProto.UINT8, [1, 4])],
                                  inits=[numpy_helper.from_array(np.float32(0), "s")]),
                   "node q1 (QuantizeLinear): scale 's' holds 0.0"),
    # a size that wraps to 0 in int64 (2^32 * 2^32) must not pass the size guard
    "wrapping_size": (lambda: _model([helper.make_node("Relu", ["x"], ["y"])],
                                     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1 << 32, 1 << 32])],
                                     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1 << 32, 1 << 32])]),
                      f"{(1 << 64) * 4:,} bytes is beyond any target (limit"),
    # an empty tensor whose other dimension no target could index: y = x + ReduceSum(empty [0, 2^62])
    "zero_hides_huge_dims": (lambda: _model([helper.make_node("ConstantOfShape", ["s"], ["c"]),
                                             helper.make_node("ReduceSum", ["c", "axes"], ["z"]),
                                             helper.make_node("Add", ["x", "z"], ["y"])],
                                            inits=[numpy_helper.from_array(np.array([0, 1 << 62], np.int64), "s"),
                                                   numpy_helper.from_array(np.array([0, 1], np.int64), "axes")]),
                             "tensor 'c' has shape [0, 4611686018427387904]"),
    "pads_too_few": (lambda: _model([helper.make_node("Pad", ["x", "p"], ["y"], name="p1")],
                                    inits=[numpy_helper.from_array(np.array([1], np.int64), "p")]),
                     "node p1 (Pad): pads has 1 values, expected 4"),
    "external_data": (lambda: _model([helper.make_node("Add", ["x", "w"], ["y"])], inits=[_external("w")]),
                      "initializer 'w': external data files are not supported"),
    "opset_too_new": (lambda: _model([helper.make_node("Relu", ["x"], ["y"])], opsets=[("", 99)]),
                      f"opset 99 of domain 'ai.onnx'; the newest supported is {onnx.defs.onnx_opset_version()}"),
    "ms_opset_too_new": (lambda: _model([helper.make_node("Relu", ["x"], ["y"])],
                                        opsets=[("", 17), ("com.microsoft", 2)]),
                         "opset 2 of domain 'com.microsoft'; the newest supported is 1"),
    "control_flow": (lambda: _nested_if(3), "node if3 (If): control flow"),
    # 139 bytes of ONNX that fold to a 64 MiB constant
    "huge_constant": (lambda: _model([helper.make_node("ConstantOfShape", ["s"], ["c"], name="cos"),
                                      helper.make_node("Add", ["x", "c"], ["y"])],
                                     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                                     outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                                     inits=[numpy_helper.from_array(np.array([4096, 4096], np.int64), "s")]),
                      f"node cos (ConstantOfShape) folds to 'c' [4096, 4096] ({4096 * 4096 * 4:,} bytes, beside 16 "
                      f"bytes of constants): {4096 * 4096 * 4 + 16:,} bytes of constants, beyond the "
                      f"{HOST_CONST_BYTES:,} bytes of constants a host build allows"),
}

BAD_INPUTS = {
    "wrong_key": ({"z": np.ones((1, 4), np.float32)}, "the file has ['z']"),
    "wrong_shape": ({"x": np.ones((2, 4), np.float32)}, "shape [2, 4] given"),
    "wrong_dtype": ({"x": np.ones((1, 4), np.float64)}, "dtype float64 given"),
    "nan": ({"x": np.full((1, 4), np.nan, np.float32)}, "NaN"),
}


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "tinydeploy.cli", *map(str, args)], capture_output=True, text=True)


def _assert_one_line_error(r, needle):
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr and needle in lines[0], lines[0]


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_bad_model(case, tmp_path):
    make, needle = BAD_MODELS[case]
    data = make()
    (tmp_path / "m.onnx").write_bytes(data if isinstance(data, bytes) else data.SerializeToString())
    np.savez(tmp_path / "in.npz", x=np.ones((1, 4), np.float32))
    r = _cli("run", tmp_path / "m.onnx", "--inputs", tmp_path / "in.npz", "--outputs", tmp_path / "out.npz",
             "--report", tmp_path / "r.json")
    _assert_one_line_error(r, needle)
    assert not (tmp_path / "out.npz").exists() and not (tmp_path / "r.json").exists()
    r = _cli("compile", tmp_path / "m.onnx", "-o", tmp_path / "proj")
    _assert_one_line_error(r, needle)
    assert not (tmp_path / "proj").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging leftovers


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_inputs(case, tmp_path):
    arrays, needle = BAD_INPUTS[case]
    onnx.save(_relu(), tmp_path / "m.onnx")
    np.savez(tmp_path / "in.npz", **arrays)
    r = _cli("run", tmp_path / "m.onnx", "--inputs", tmp_path / "in.npz", "--outputs", tmp_path / "out.npz")
    _assert_one_line_error(r, needle)
    assert not (tmp_path / "out.npz").exists()


def test_dynamic_dim_with_shape_option_runs(tmp_path):
    m = BAD_MODELS["dynamic_dim"][0]()
    onnx.save(m, tmp_path / "m.onnx")
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    np.savez(tmp_path / "in.npz", x=x)
    r = _cli("run", tmp_path / "m.onnx", "--inputs", tmp_path / "in.npz", "--outputs", tmp_path / "o.npz", "--shape", "x=3x4")
    assert r.returncode == 0, r.stderr
    assert np.array_equal(np.load(tmp_path / "o.npz")["y"], np.maximum(x, 0))


def test_unwritable_output_and_missing_inputs(tmp_path):
    onnx.save(_relu(), tmp_path / "m.onnx")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    _assert_one_line_error(_cli("compile", tmp_path / "m.onnx", "-o", blocker / "proj"), "cannot write")
    _assert_one_line_error(_cli("run", tmp_path / "m.onnx", "--inputs", tmp_path / "none.npz", "--outputs",
                                tmp_path / "o.npz"), "no such file")
    _assert_one_line_error(_cli("inspect", tmp_path / "none.onnx"), "no such file")
    _assert_one_line_error(_cli("compile", tmp_path / "m.onnx", "-o", tmp_path / "p", "--shape", "x=1xq"), "--shape")


def test_shape_beyond_int64(tmp_path):
    onnx.save(_relu(), tmp_path / "m.onnx")
    r = _cli("inspect", tmp_path / "m.onnx", "--shape", "x=99999999999999999999x4")
    _assert_one_line_error(r, "size 99999999999999999999 is beyond the int64 limit 9223372036854775807")


def test_compile_writes_project_and_inspect_prints_plan(tmp_path):
    onnx.save(_relu(), tmp_path / "m.onnx")
    r = _cli("compile", tmp_path / "m.onnx", "-o", tmp_path / "proj", "--report", tmp_path / "r.json")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "proj" / "td_network.c").exists() and (tmp_path / "proj" / "td_network.h").exists()
    r = _cli("inspect", tmp_path / "m.onnx")
    assert r.returncode == 0 and "memory plan" in r.stdout and "lower bound" in r.stdout


def test_shape_option_sizes_never_wrap(tmp_path):
    onnx.save(_relu(), tmp_path / "m.onnx")
    for dims in ((1, (1 << 63) - 1), (1 << 32, 1 << 32)):   # int64: -4 bytes; a product of 0
        r = _cli("inspect", tmp_path / "m.onnx", "--shape", "x=" + "x".join(map(str, dims)))
        _assert_one_line_error(r, f"{dims[0] * dims[1] * 4:,} bytes is beyond any target (limit")


@pytest.mark.parametrize("op,graphs", [("If", ("then_branch", "else_branch")), ("Loop", ("body",)),
                                        ("Scan", ("body",))])
def test_control_flow_is_refused_before_shape_inference(op, graphs, monkeypatch):
    from tinydeploy.errors import TinydeployError
    from tinydeploy.frontend import onnx_import

    def expensive(*_a, **_k):
        raise AssertionError("shape inference or the checker ran on a model with subgraphs")
    monkeypatch.setattr(onnx_import.shape_inference, "infer_shapes", expensive)
    monkeypatch.setattr(onnx_import.onnx.checker, "check_model", expensive)
    with pytest.raises(TinydeployError, match=r"node if20 \(If\): control flow"):
        onnx_import.import_model(_nested_if(20))
    body = helper.make_graph([], "b", [], [])
    m = _model([helper.make_node(op, ["x"], ["y"], name="cf", **{g: body for g in graphs})])
    with pytest.raises(TinydeployError, match=rf"node cf \({op}\): control flow"):
        onnx_import.import_model(m)


def test_constant_folding_stops_at_the_limit_before_allocating(tmp_path):
    import tracemalloc
    from tinydeploy.compiler import compile_onnx
    from tinydeploy.errors import TinydeployError
    onnx.save(BAD_MODELS["huge_constant"][0](), tmp_path / "m.onnx")
    tracemalloc.start()
    try:
        with pytest.raises(TinydeployError, match=f"beyond the {HOST_CONST_BYTES:,} bytes of constants a host build allows"):
            compile_onnx(tmp_path / "m.onnx")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < HOST_CONST_BYTES // 8, peak   # the 64 MiB constant was never made


def test_constants_are_limited_by_the_rv32_sram(tmp_path):
    from tinydeploy.targets.rv32.runner import Rv32Config
    sram = Rv32Config.load(None).sram_bytes
    m = _model([helper.make_node("Add", ["x", "w"], ["y"])], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [sram // 4 + 1])],
               [numpy_helper.from_array(np.zeros(sram // 4 + 1, np.float32), "w")])
    onnx.save(m, tmp_path / "m.onnx")
    _assert_one_line_error(_cli("compile", tmp_path / "m.onnx", "-t", "rv32", "-o", tmp_path / "p"),
                           f"{(sram // 4 + 1) * 4:,} bytes of constants, beyond the {sram:,} bytes of SRAM of target rv32")
    assert not (tmp_path / "p").exists()


def test_inputs_in_a_npy_file_are_refused(tmp_path):
    onnx.save(_relu(), tmp_path / "m.onnx")
    np.save(tmp_path / "in.npy", np.ones((1, 4), np.float32))
    r = _cli("run", tmp_path / "m.onnx", "--inputs", tmp_path / "in.npy", "--outputs", tmp_path / "out.npz")
    _assert_one_line_error(r, "not a valid .npz file")
    assert not (tmp_path / "out.npz").exists()


def _after_gelu(op, name, *inits):
    """x -> Gelu (read leniently at opset 19: ONNX inference stops there) -> op -> y [1 << 29, 4]."""
    return _model([helper.make_node("Gelu", ["x"], ["g"]), helper.make_node(op, ["g", "c"], ["y"], name=name)],
                  outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [1 << 29, 4])],
                  inits=[numpy_helper.from_array(np.array(inits, np.int64), "c")], opsets=[("", 19)])


@pytest.mark.parametrize("make, needle", [
    (lambda: _model([helper.make_node("Pad", ["x"], ["y"], name="p2", pads=[0, 0, 0, 2_000_000_000])],
                    outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2_000_000_004])],
                    opsets=[("", 11)]), "node p2 (Pad): output has shape [1, 2000000004]"),
    (lambda: _after_gelu("Expand", "e2", 1 << 29, 4), "node e2 (Expand): output has shape [536870912, 4]"),
    (lambda: _after_gelu("Tile", "t2", 1 << 29, 1), "node t2 (Tile): output has shape [536870912, 4]"),
], ids=["pad_opset2", "expand", "tile"])
def test_deeploy_dialect_sizes_are_bounded_before_they_allocate(make, needle, tmp_path):
    """Past a node read leniently, ONNX inference bounds nothing: 8 GB of zeros otherwise."""
    onnx.save(make(), tmp_path / "m.onnx")
    r = _cli("compile", tmp_path / "m.onnx", "--dialect", "deeploy", "-o", tmp_path / "proj")
    _assert_one_line_error(r, needle)
    assert "beyond any target" in r.stderr and not (tmp_path / "proj").exists()


@pytest.mark.parametrize("args, needle", [
    (["export-llama", "/dev/zero", "-o", "z.onnx"], "cannot read checkpoint /dev/zero: not a regular file"),
    (["generate", "-t", "cluster", "--target-config", "/dev/zero", "--report", "z.onnx"],
     "cluster: cannot read target config /dev/zero: not a regular file"),
], ids=["export_llama", "target_config"])
def test_a_device_that_reads_forever_is_refused(args, needle, tmp_path):
    """export-llama /dev/zero read until the kernel killed it (about 8 GB); --target-config /dev/zero too."""
    r = subprocess.run([sys.executable, "-m", "tinydeploy.cli", *args], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path)
    _assert_one_line_error(r, needle)
    assert not (tmp_path / "z.onnx").exists()
