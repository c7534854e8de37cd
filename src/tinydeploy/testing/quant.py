"""Static quantization and the reference runner, both pinned to onnxruntime.

onnxruntime is a test-only dependency, so it is imported inside the functions:
importing tinydeploy.testing must not require it.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx

_TYPES = {"int8": "QInt8", "uint8": "QUInt8"}

# Every (fmt, activation, weight, per_channel) the quantizer accepts for 8 bits;
# int8 activations with uint8 weights are rejected by onnxruntime itself.
QUANT_CONFIGS = [
    (fmt, act, wt, pc)
    for fmt in ("qdq", "qoperator")
    for act, wt in (("int8", "int8"), ("uint8", "int8"), ("uint8", "uint8"))
    for pc in (False, True)
]


def config_name(fmt: str, activation: str, weight: str, per_channel: bool) -> str:
    """Stable short name, e.g. 'qdq.u8i8.pc', used for file names and test ids."""
    short = {"int8": "i8", "uint8": "u8"}
    return f"{fmt}.{short[activation]}{short[weight]}.{'pc' if per_channel else 'pt'}"


def input_specs(model: onnx.ModelProto) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Graph inputs that are not initializers -> (static shape, numpy dtype)."""
    inits = {t.name for t in model.graph.initializer}
    specs = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        shape = tuple(d.dim_value for d in tt.shape.dim)
        specs[vi.name] = (shape, onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type))
    return specs


def random_inputs(model: onnx.ModelProto, seed: int = 0, n: int = 1) -> list[dict[str, np.ndarray]]:
    """`n` feeds of standard-normal float inputs, deterministic from `seed`."""
    rng = np.random.default_rng(seed)
    specs = input_specs(model)
    return [{k: rng.standard_normal(s).astype(dt) for k, (s, dt) in specs.items()} for _ in range(n)]


def quantize(
    model: onnx.ModelProto,
    calibration_inputs: list[dict[str, np.ndarray]] | None = None,
    fmt: str = "qdq",
    activation: str = "int8",
    weight: str = "int8",
    per_channel: bool = False,
    symmetric: bool | None = None,
    op_types: list[str] | None = None,
    extra_options: dict | None = None,
) -> onnx.ModelProto:
    """Static MinMax quantization with onnxruntime.quantization.quantize_static.

    fmt: "qdq" (QuantizeLinear/DequantizeLinear around float ops) or
         "qoperator" (QLinearConv, com.microsoft QLinearAdd, ...).
    activation/weight: "int8" or "uint8"; ORT rejects int8 activations with
         uint8 weights (ValueError).
    symmetric: None keeps the quantizer defaults (weights symmetric, activations
         asymmetric); True/False forces both.
    calibration_inputs: feeds for calibration; default 8 random normal feeds (seed 0).
    op_types: restrict the op types to quantize (default: everything ORT knows).
    extra_options: passed through last, overriding the pinned options below.
    """
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static

    if fmt not in ("qdq", "qoperator"):
        raise ValueError(f"fmt must be 'qdq' or 'qoperator', not {fmt!r}")
    for name, v in (("activation", activation), ("weight", weight)):
        if v not in _TYPES:
            raise ValueError(f"{name} must be 'int8' or 'uint8', not {v!r}")
    if calibration_inputs is None:
        calibration_inputs = random_inputs(model, seed=0, n=8)

    class _Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(calibration_inputs)

        def get_next(self):
            return next(self._it, None)

    # Pinned explicitly (these are also the 1.32 defaults) so a quantizer
    # upgrade that flips a default shows up as a test failure, not a silent
    # change of the patterns the frontend matches.
    options = {
        "ActivationSymmetric": False if symmetric is None else symmetric,
        "WeightSymmetric": True if symmetric is None else symmetric,
        "QDQKeepRemovableActivations": False,
        "ForceQuantizeNoInputCheck": False,
        "MatMulConstBOnly": False,
        "QuantizeBias": True,
    }
    options.update(extra_options or {})
    with tempfile.TemporaryDirectory(prefix="tinydeploy-quant-") as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "quant.onnx"
        onnx.save(model, src)
        # The quantizer warns about missing pre-processing on every call; we
        # deliberately skip pre-processing (it would rewrite our graphs).
        # The calibration session also warns about initializers it prunes. This is
        # process-wide (onnxruntime has no getter to restore it): errors still show.
        quant_logger = logging.getLogger()
        level = quant_logger.level
        quant_logger.setLevel(logging.ERROR)
        ort.set_default_logger_severity(3)
        try:
            quantize_static(
                str(src),
                str(dst),
                _Reader(),
                quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                op_types_to_quantize=op_types,
                per_channel=per_channel,
                reduce_range=False,
                activation_type=getattr(QuantType, _TYPES[activation]),
                weight_type=getattr(QuantType, _TYPES[weight]),
                calibrate_method=CalibrationMethod.MinMax,
                extra_options=options,
            )
        finally:
            quant_logger.setLevel(level)
        return onnx.load(str(dst))


def ort_session(model: onnx.ModelProto):
    """CPU session with graph optimizations disabled and one thread (BRIEF section 4)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def with_every_output(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` whose graph outputs include every node output (types left to the runtime)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    have = {o.name for o in probe.graph.output}
    for n in probe.graph.node:
        for o in n.output:
            if o and o not in have:
                probe.graph.output.append(onnx.ValueInfoProto(name=o))
                have.add(o)
    return probe


def ort_reference(model: onnx.ModelProto, inputs: dict[str, np.ndarray],
                  intermediates: bool = False) -> dict[str, np.ndarray]:
    """Runs `model` once in the reference configuration; returns outputs by name (with
    `intermediates`, every node output)."""
    sess = ort_session(with_every_output(model) if intermediates else model)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, inputs)))
