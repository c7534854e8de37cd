"""Memory a llama program needs, checked against what its target holds before anything big is built.

A checkpoint's seq_len is a header field no data backs: the KV cache and the RoPE tables grow with
it, so every path bounds it here."""
from __future__ import annotations

from tinydeploy.errors import TinydeployError
from tinydeploy.limits import HOST_CONST_BYTES

from .checkpoint import MATRICES, LlamaConfig, LlamaWeights

# The host's budget is the compiler's one host limit (limits.HOST_CONST_BYTES): a generate program's
# weights become C source (~5 characters per byte; 16 MiB of int8 took gcc -O2 ~100 s here). Fit:
# stories15M (seq_len 256) and stories42M (1024) for generate, stories15M for export-llama (float32).
HOST_MEMORY_BYTES = HOST_CONST_BYTES


def generate_parts(cfg: LlamaConfig, w: LlamaWeights) -> dict[str, int]:
    """Bytes of the compiled program's data (graph.py): int8 weights with int16 group scales and norm
    gains, the int8 KV cache and the int16 RoPE tables. Activations come on top (checked later)."""
    weights = sum(t.q.size + 2 * t.scales.size for t in w.quantized.values()) + 2 * (2 * cfg.n_layers + 1) * cfg.dim
    return {"weights": weights, "KV cache": 2 * cfg.n_layers * cfg.seq_len * cfg.kv_dim,
            "RoPE tables": 2 * cfg.seq_len * cfg.head_size}


def export_parts(cfg: LlamaConfig, w: LlamaWeights) -> dict[str, int]:
    """Bytes of the exported float32 ONNX model (export_onnx.py): its weights (the KV cache and
    everything sized by the sequence are run-time tensors of onnxruntime)."""
    tensors = [w.token_embedding, w.rms_att, w.rms_ffn, w.rms_final] + [getattr(w, n) for n in MATRICES]
    tensors += [] if cfg.shared_classifier else [w.wcls]
    return {"weights": 4 * sum(t.size for t in tensors)}


def check_fits(what: str, parts: dict[str, int], limit: int, where: str) -> None:
    need = sum(parts.values())
    if need > limit:
        detail = ", ".join(f"{k} {v:,}" for k, v in parts.items())
        raise TinydeployError(f"{what} needs {need:,} bytes ({detail}): more than the {limit:,} bytes {where}")
