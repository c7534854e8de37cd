"""ONNX backend node tests (onnx.backend.test.case.node) through tinydeploy, golden model and host C.

Every case is either claimed (must pass, golden and C, under the comparison rule of node_harness.py)
or listed in node_tests_exclusions.txt with its reason. The full claimed set runs by default (about
half a minute on 2 cores: golden in worker processes, C as one batched executable); the gcc/clang
matrix and the sanitizers run on a fixed representative subset, and on everything with --runslow.
"""
from __future__ import annotations


import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import node_harness as h
from tinydeploy.errors import TinydeployError

# one or two cases per op family and per kernel shape (broadcast, negative strides, int types …)
REPRESENTATIVE = [
    "test_relu", "test_leakyrelu", "test_prelu_broadcast", "test_clip", "test_clip_default_int8_min",
    "test_sigmoid", "test_tanh", "test_gelu_tanh_2", "test_gelu_default_2", "test_softplus", "test_mish",
    "test_round", "test_floor", "test_ceil", "test_sign", "test_isinf", "test_isnan", "test_erf",
    "test_and_bcast4v4d", "test_xor_bcast3v2d", "test_not_3d", "test_equal_bcast", "test_less_equal_bcast",
    "test_greater_uint64", "test_bitshift_right_int8_negative_input", "test_bitshift_left_uint16",
    "test_bitwise_and_ui64_bcast_3v1d", "test_transpose_all_permutations_4", "test_slice_neg_steps",
    "test_slice_negative_axes", "test_concat_3d_axis_negative_2", "test_split_variable_parts_2d_opset18",
    "test_split_1d_uneven_split_opset18", "test_gather_2d_indices", "test_gather_negative_indices",
    "test_reflect_pad", "test_edge_pad", "test_wrap_pad", "test_constant_pad_negative_axes", "test_expand_dim_changed",
    "test_tile", "test_where_long_example", "test_depthtospace_crd_mode_example", "test_spacetodepth",
    "test_reshape_negative_extended_dims", "test_flatten_negative_axis2", "test_unsqueeze_unsorted_axes",
    "test_cast_DOUBLE_to_FLOAT", "test_shape_start_1_end_2", "test_size", "test_dropout_default_mask",
    "test_quantizelinear", "test_dequantizelinear", "test_qlinearmatmul_2D_uint8_float32", "test_basic_conv_with_padding",
    "test_gather_elements_negative_indices", "test_gathernd_example_int32_batch_dim1", "test_scatternd_multiply",
    "test_scatter_elements_with_duplicate_indices", "test_onehot_with_negative_axis", "test_top_k_same_values_2d",
    "test_tril_square_neg", "test_eyelike_populate_off_main_diagonal", "test_compress_default_axis",
    "test_sce_NCd1d2d3d4d5_mean_weight_log_prob", "test_nllloss_NCd1d2d3_sum_weight_high_ii_expanded",
    "test_resize_downsample_scales_cubic_antialias", "test_resize_tf_crop_and_resize_axes_3_2",
    "test_resize_upsample_sizes_nearest_not_smaller", "test_cumsum_1d_reverse_exclusive", "test_center_crop_pad_crop_and_pad",
    "test_matmul_4d", "test_gemm_all_attributes", "test_add_bcast", "test_softmax_axis_0",
]


@pytest.fixture(scope="module")
def claimed():
    return h.claimed_cases()


def _representative(claimed):
    keep = set(claimed)
    return [n for n in REPRESENTATIVE if n in keep]


def _check(names, **kw):
    results, verdict, _ = h.run_all(names, **kw)
    bad = {r.name: f"[{r.stage}] {r.reason}" for r in results if not r.ok}
    bad.update({k: v for k, v in verdict.items() if v})
    return bad


def test_claimed_cases_pass_golden_and_host_c(claimed):
    assert len(claimed) > 400
    bad = _check(claimed)
    assert not bad, f"{len(bad)} claimed node tests fail:\n" + "\n".join(f"{k}: {v}" for k, v in sorted(bad.items()))


def test_exclusion_file_is_well_formed(claimed):
    rules = h.read_exclusions()
    names = h.case_names()
    for pat, reason in rules:
        assert reason, f"exclusion {pat} has no reason"
        assert any(h.excluded(n, [(pat, reason)]) for n in names), f"exclusion {pat} matches no case (stale)"
    assert len(claimed) + sum(1 for n in names if h.excluded(n, rules)) == len(names)


def test_excluded_cases_fail_with_a_clean_error():
    """Unsupported ops, types and modes are refused with a TinydeployError, never a crash."""
    rules = h.read_exclusions()
    names = [n for n in h.case_names() if h.excluded(n, rules)]
    internal = []
    for n in names:
        r = h.run_golden(n)
        if "internal error" in r.reason:
            internal.append(f"{n}: {r.reason}")
    assert not internal, "\n".join(internal)


def test_unsupported_op_is_a_one_line_error():
    g = helper.make_graph([helper.make_node("Det", ["x"], ["y"], name="det0")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    from helpers import compile_model
    with pytest.raises(TinydeployError, match=r"node det0: operator Det is not supported"):
        compile_model(m)


def test_runtime_shape_parameter_is_refused(tmp_path):
    """A Reshape whose shape is a run-time input cannot be compiled statically: clear error."""
    g = helper.make_graph([helper.make_node("Reshape", ["x", "s"], ["y"], name="r0")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
                           helper.make_tensor_value_info("s", TensorProto.INT64, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    from helpers import compile_model
    from tinydeploy.compiler import emit_c
    with pytest.raises(TinydeployError, match="must be a constant"):
        emit_c(compile_model(m), tmp_path)


@pytest.mark.parametrize("cc,extra", [
    ("clang", []),
    ("gcc", ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]),
], ids=["clang", "gcc-asan-ubsan"])
def test_representative_subset_compiler_matrix(claimed, cc, extra):
    names = _representative(claimed)
    assert len(names) > 40
    bad = _check(names, cc=cc, extra=extra)
    assert not bad, "\n".join(f"{k}: {v}" for k, v in sorted(bad.items()))


@pytest.mark.slow
@pytest.mark.parametrize("cc,extra", [
    ("clang", []),
    ("gcc", ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]),
    ("gcc", ["-O0"]),
], ids=["clang", "gcc-asan-ubsan", "gcc-O0"])
def test_all_claimed_cases_compiler_matrix(claimed, cc, extra):
    bad = _check(claimed, cc=cc, extra=extra)
    assert not bad, "\n".join(f"{k}: {v}" for k, v in sorted(bad.items()))


def test_harness_compare_rule():
    tol = h.TOL["default"]
    assert h.compare(np.float32([1.0, np.nan]), np.float32([1.0 + 1e-6, np.nan]), tol) is None
    assert h.compare(np.float32([1.0]), np.float32([1.001]), tol)
    assert h.compare(np.int8([1]), np.int16([1]), tol)          # dtype must match
    assert h.compare(np.int64([3]), np.int64([4]), tol)         # integers exact


def test_parameter_inputs_become_initializers():
    case = h.load_case("test_slice_neg_steps")
    model, feeds = h.fold_params(case.model, case.inputs)
    assert list(feeds) == ["x"]
    assert {i.name for i in model.graph.initializer} == {"starts", "ends", "axes", "steps"}
    onnx.checker.check_model(model)


def test_batched_build_survives_a_crashing_network(tmp_path):
    """A network that crashes fails alone; the ones before and after it still report."""
    names = ["test_relu", "test_abs", "test_neg"]
    results = [h.run_golden(n) for n in names]
    assert all(r.ok for r in results)
    v = h.run_c_batch(results, tmp_path, pre_run="if (k == 1) abort();")
    assert v["test_relu"] is None and v["test_neg"] is None
    assert "crashed" in v["test_abs"]
