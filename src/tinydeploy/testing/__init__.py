"""Test models, quantization and the onnxruntime reference, shared by all compiler tests.

    from tinydeploy.testing import cnn, mlp, transformer_block, random_model, single_op
    from tinydeploy.testing import quantize, reference, references, random_inputs, QUANT_CONFIGS

- builders (float32, opset 17, IR 8, static shapes, deterministic from `seed`):
  `cnn()`, `mlp()`, `transformer_block()`, `random_model(seed)`, `single_op(op)`;
  `BUILDERS` maps names to the first three, `SUPPORTED_OPS` lists random_model's ops.
- `quantize(model, calibration_inputs, fmt, activation, weight, per_channel, symmetric)`:
  onnxruntime static MinMax quantization, returns the quantized ModelProto.
- `reference(model, feeds)`: the exact reference outputs (QDQ semantics in float64, BRIEF §4), the
  same on every CPU; `references(...)` adds onnxruntime's outputs where ORT is exact for the model
  (`ort_u8s8_exact()` probes the CPU once; `ort_status()` says which path a run takes).
- `ort_reference(model, feeds)`: onnxruntime's outputs (CPU, ORT_DISABLE_ALL, 1 thread).
- `patterns.listing / patterns.qdq_patterns`: readable dumps of quantized graphs.

onnxruntime (a test extra) is imported only when quantize/ort_reference/ORT probes run.
See docs/quantized_patterns.md for what the quantized graphs contain.
"""

from . import patterns
from .quant import QUANT_CONFIGS, config_name, input_specs, ort_reference, ort_session, quantize, random_inputs
from .random_models import SUPPORTED_OPS, random_model, single_op
from .reference import ort_is_exact, ort_status, ort_u8s8_exact, reference, references
from .zoo import BUILDERS, cnn, mlp, transformer_block

__all__ = [
    "BUILDERS", "QUANT_CONFIGS", "SUPPORTED_OPS", "cnn", "config_name", "input_specs", "mlp",
    "ort_is_exact", "ort_reference", "ort_session", "ort_status", "ort_u8s8_exact", "patterns", "quantize",
    "random_inputs", "random_model", "reference", "references", "single_op", "transformer_block",
]  # fmt: skip
