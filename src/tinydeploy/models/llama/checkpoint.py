"""Read and write llama2.c checkpoints (versions 0, 1 and 2).

Layouts (all little-endian; matrices are row-major with rows = outputs, columns = inputs):

- version 0 (legacy, original ``run.c``): 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
  vocab_size, seq_len), a negative vocab_size meaning an unshared classifier. Then fp32: embedding,
  rms_att[L], wq[L], wk[L], wv[L], wo[L], rms_ffn[L], w1[L], w2[L], w3[L], rms_final,
  freq_cis_real[seq_len, head_size/2], freq_cis_imag[same] (unused: RoPE is recomputed), and the
  classifier when unshared.
- version 1: 256-byte header (uint32 magic "ak42" 0x616b3432, int32 version, the 7 int32, uint8
  shared_classifier, zeros). Then fp32: rms_att[L], rms_ffn[L], rms_final, embedding, wq[L], wk[L],
  wv[L], wo[L], w1[L], w2[L], w3[L], classifier when unshared.
- version 2 (Q8_0): header as version 1 plus int32 group_size after the flag. fp32 rms_att[L],
  rms_ffn[L], rms_final; then each quantized tensor (embedding, wq, wk, wv, wo, w1, w2, w3 per layer,
  classifier when unshared) as its int8 values followed by its fp32 scales, one scale per group of
  ``group_size`` consecutive values of the flattened tensor (groups may straddle rows).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from tinydeploy.errors import TinydeployError

MAGIC = 0x616B3432  # "ak42" as a little-endian uint32
HEADER_BYTES = 256  # versions 1 and 2
MATRICES = ("wq", "wk", "wv", "wo", "w1", "w2", "w3")
F32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class LlamaConfig:
    dim: int
    hidden_dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    seq_len: int
    shared_classifier: bool = True
    norm_eps: float = 1e-5  # fixed by llama2.c, not stored in the file
    rope_theta: float = 10000.0  # idem

    @property
    def head_size(self) -> int:
        return self.dim // self.n_heads

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_size

    @property
    def kv_mul(self) -> int:
        """Query heads sharing one kv head (grouped-query attention)."""
        return self.n_heads // self.n_kv_heads

    def matrix_shape(self, name: str) -> tuple[int, int]:
        """(rows, cols) of one layer's matrix."""
        d, h, kv = self.dim, self.hidden_dim, self.kv_dim
        return {"wq": (d, d), "wk": (kv, d), "wv": (kv, d), "wo": (d, d),
                "w1": (h, d), "w2": (d, h), "w3": (h, d)}[name]


@dataclass
class QuantizedTensor:
    """Q8_0 tensor as stored in a version-2 file.

    ``q`` has the tensor's shape (per-layer tensors stacked: [n_layers, rows, cols]); ``scales`` has
    one fp32 per group of ``group_size`` values of each (per-layer) tensor flattened:
    shape [n_layers, numel / group_size] or [numel / group_size].
    """

    q: np.ndarray
    scales: np.ndarray
    group_size: int

    def element_scales(self) -> np.ndarray:
        """The scale of every element, in the tensor's shape (groups cross rows)."""
        lead = self.scales.shape[:-1]
        return np.repeat(self.scales, self.group_size, axis=-1).reshape(lead + self.q.shape[len(lead):])

    def dequantize(self) -> np.ndarray:
        return (self.q.astype(np.float32) * self.element_scales()).astype(np.float32)


@dataclass
class LlamaWeights:
    """float32 weights (dequantized for version 2). Per-layer tensors are stacked on axis 0."""

    token_embedding: np.ndarray  # [vocab, dim]
    rms_att: np.ndarray  # [L, dim]
    wq: np.ndarray  # [L, dim, dim]
    wk: np.ndarray  # [L, kv_dim, dim]
    wv: np.ndarray  # [L, kv_dim, dim]
    wo: np.ndarray  # [L, dim, dim]
    rms_ffn: np.ndarray  # [L, dim]
    w1: np.ndarray  # [L, hidden, dim]
    w2: np.ndarray  # [L, dim, hidden]
    w3: np.ndarray  # [L, hidden, dim]
    rms_final: np.ndarray  # [dim]
    wcls: np.ndarray  # [vocab, dim]; the embedding itself when shared
    version: int = 1
    group_size: int | None = None
    # version 2 only: the int8 values and per-group scales, keyed "token_embedding", "wq".."w3"
    # (and "wcls" when unshared); the compiler uses these, not the float copies.
    quantized: dict[str, QuantizedTensor] = field(default_factory=dict)


# ----------------------------------------------------------------------------- reading


class _Cursor:
    """Sequential reader over the file bytes that turns running out of bytes into a clear error."""

    def __init__(self, data: bytes, name: str):
        self.data, self.name, self.pos = data, name, 0

    def take(self, dtype: str, count: int) -> np.ndarray:
        nbytes = np.dtype(dtype).itemsize * count
        if self.pos + nbytes > len(self.data):
            raise TinydeployError(
                f"checkpoint {self.name} is truncated: needs at least {self.pos + nbytes} bytes, "
                f"has {len(self.data)}")
        arr = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += nbytes
        return arr

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise TinydeployError(
                f"checkpoint {self.name} has {len(self.data)} bytes but its header implies "
                f"{self.pos}: sizes inconsistent with the header")


def _config_from_ints(ints, shared: bool, name: str) -> LlamaConfig:
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = (int(v) for v in ints)
    problem = None
    if min(dim, hidden, layers, heads, kv_heads, vocab, seq_len) <= 0:
        problem = "non-positive size"
    elif dim % heads or heads % kv_heads:
        problem = "dim must divide by n_heads and n_heads by n_kv_heads"
    elif (dim // heads) % 2:
        problem = "head size must be even for RoPE"
    if problem:
        raise TinydeployError(
            f"checkpoint {name} has an invalid header (dim={dim}, hidden_dim={hidden}, "
            f"n_layers={layers}, n_heads={heads}, n_kv_heads={kv_heads}, vocab_size={vocab}, "
            f"seq_len={seq_len}): {problem}")
    return LlamaConfig(dim, hidden, layers, heads, kv_heads, vocab, seq_len, shared)


def _take_matrix(cur: _Cursor, cfg: LlamaConfig, name: str) -> np.ndarray:
    rows, cols = cfg.matrix_shape(name)
    return cur.take("<f4", cfg.n_layers * rows * cols).reshape(cfg.n_layers, rows, cols)


def _v0_expected_bytes(cfg: LlamaConfig) -> int:
    d, h, L, kv, v = cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.kv_dim, cfg.vocab_size
    floats = v * d + L * (2 * d + 2 * d * d + 2 * kv * d + 3 * h * d) + d
    floats += cfg.seq_len * cfg.head_size  # freq_cis real + imag, each seq_len * head_size / 2
    floats += 0 if cfg.shared_classifier else v * d
    return 28 + 4 * floats


def _read_v0(cur: _Cursor) -> tuple[LlamaConfig, LlamaWeights]:
    ints = cur.take("<i4", 7)
    cfg = _config_from_ints([*ints[:5], abs(int(ints[5])), ints[6]], int(ints[5]) > 0, cur.name)
    L, d = cfg.n_layers, cfg.dim
    emb = cur.take("<f4", cfg.vocab_size * d).reshape(cfg.vocab_size, d)
    rms_att = cur.take("<f4", L * d).reshape(L, d)
    attn = {n: _take_matrix(cur, cfg, n) for n in ("wq", "wk", "wv", "wo")}
    rms_ffn = cur.take("<f4", L * d).reshape(L, d)
    ffn = {n: _take_matrix(cur, cfg, n) for n in ("w1", "w2", "w3")}
    rms_final = cur.take("<f4", d)
    cur.take("<f4", cfg.seq_len * cfg.head_size)  # freq_cis_real and _imag: recomputed instead
    wcls = emb if cfg.shared_classifier else cur.take("<f4", cfg.vocab_size * d).reshape(-1, d)
    cur.finish()
    w = LlamaWeights(emb, rms_att, attn["wq"], attn["wk"], attn["wv"], attn["wo"], rms_ffn,
                     ffn["w1"], ffn["w2"], ffn["w3"], rms_final, wcls, version=0)
    return cfg, w


def _read_norms(cur: _Cursor, cfg: LlamaConfig):
    L, d = cfg.n_layers, cfg.dim
    return (cur.take("<f4", L * d).reshape(L, d), cur.take("<f4", L * d).reshape(L, d),
            cur.take("<f4", d))


def _read_v1(cur: _Cursor, cfg: LlamaConfig) -> LlamaWeights:
    rms_att, rms_ffn, rms_final = _read_norms(cur, cfg)
    emb = cur.take("<f4", cfg.vocab_size * cfg.dim).reshape(cfg.vocab_size, cfg.dim)
    mats = {n: _take_matrix(cur, cfg, n) for n in MATRICES}
    wcls = emb if cfg.shared_classifier else cur.take("<f4", emb.size).reshape(emb.shape)
    cur.finish()
    return LlamaWeights(emb, rms_att, mats["wq"], mats["wk"], mats["wv"], mats["wo"], rms_ffn,
                        mats["w1"], mats["w2"], mats["w3"], rms_final, wcls, version=1)


def _take_q80(cur: _Cursor, shape: tuple[int, ...], n: int, gs: int) -> QuantizedTensor:
    """``n`` consecutive tensors of ``shape``, each int8 values then its fp32 group scales."""
    numel = int(np.prod(shape))
    if numel % gs:
        raise TinydeployError(
            f"checkpoint {cur.name}: a tensor of shape {shape} ({numel} values) is not a whole "
            f"number of groups of {gs}: sizes inconsistent with the header")
    qs, ss = [], []
    for _ in range(n):
        qs.append(cur.take("<i1", numel).reshape(shape))
        ss.append(cur.take("<f4", numel // gs))
    return QuantizedTensor(np.stack(qs), np.stack(ss), gs)


def _read_v2(cur: _Cursor, cfg: LlamaConfig, gs: int) -> LlamaWeights:
    rms_att, rms_ffn, rms_final = _read_norms(cur, cfg)
    emb_shape = (cfg.vocab_size, cfg.dim)
    qt = {"token_embedding": _take_q80(cur, emb_shape, 1, gs)}
    for n in MATRICES:
        qt[n] = _take_q80(cur, cfg.matrix_shape(n), cfg.n_layers, gs)
    if not cfg.shared_classifier:
        qt["wcls"] = _take_q80(cur, emb_shape, 1, gs)
    cur.finish()
    # scales whose weights overflow float32 (127 * scale) are refused with NaN and Inf
    _check_values(cur.name, {f"{k} scales": t.scales for k, t in qt.items()}, F32_MAX / 127)
    for k in ("token_embedding", "wcls"):  # stored as one tensor: drop the stacking axis
        if k in qt:
            qt[k] = QuantizedTensor(qt[k].q[0], qt[k].scales[0], gs)
    f = {k: v.dequantize() for k, v in qt.items()}
    emb = f["token_embedding"]
    return LlamaWeights(emb, rms_att, f["wq"], f["wk"], f["wv"], f["wo"], rms_ffn, f["w1"],
                        f["w2"], f["w3"], rms_final, f.get("wcls", emb), version=2,
                        group_size=gs, quantized=qt)


def read_source(source: str | os.PathLike | bytes, what: str) -> tuple[bytes, str]:
    """(bytes, display name) of a file given by path or as bytes; a one-line error if unreadable."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "<bytes>"
    try:
        if Path(source).exists() and not Path(source).is_file():   # /dev/zero: a read that never ends
            raise TinydeployError(f"cannot read {what} {source}: not a regular file")
        return Path(source).read_bytes(), str(source)
    except OSError as e:
        raise TinydeployError(f"cannot read {what} {source}: {e.strerror}") from None


def read_checkpoint(source: str | os.PathLike | bytes) -> tuple[LlamaConfig, LlamaWeights]:
    """Read a llama2.c checkpoint of version 0, 1 or 2 from a path or from its bytes."""
    data, name = read_source(source, "checkpoint")
    cur = _Cursor(data, name)
    if len(data) < 28:
        raise TinydeployError(f"checkpoint {name} is truncated: {len(data)} bytes, not even a header")
    magic = int(np.frombuffer(data, "<u4", 1)[0])
    cfg, w = _read_v0_or_bad_magic(cur, magic) if magic != MAGIC else _read_v1_v2(cur)
    _check_values(name, {f.name: a for f in fields(LlamaWeights) if isinstance(a := getattr(w, f.name), np.ndarray)})
    return cfg, w


def _check_values(name: str, tensors: dict[str, np.ndarray], limit: float = F32_MAX) -> None:
    for k, a in tensors.items():
        if not np.all(np.abs(a) <= limit):  # False for NaN
            raise TinydeployError(f"checkpoint {name}: NaN, infinite or too large values in {k} (limit {limit:.4g})")


def _read_v1_v2(cur: _Cursor) -> tuple[LlamaConfig, LlamaWeights]:
    name, data = cur.name, cur.data
    cur.take("<u4", 1)
    version = int(cur.take("<i4", 1)[0])
    if version not in (1, 2):
        raise TinydeployError(
            f"checkpoint {name} has unsupported version {version} (supported: 0, 1, 2)")
    if len(data) < HEADER_BYTES:
        raise TinydeployError(
            f"checkpoint {name} is truncated: {len(data)} bytes, shorter than the 256-byte header")
    ints = cur.take("<i4", 7)
    cfg = _config_from_ints(ints, bool(cur.take("<u1", 1)[0]), name)
    gs = int(cur.take("<i4", 1)[0]) if version == 2 else None
    if gs is not None and gs <= 0:
        raise TinydeployError(f"checkpoint {name} has invalid group size {gs}")
    cur.pos = HEADER_BYTES
    return cfg, _read_v1(cur, cfg) if version == 1 else _read_v2(cur, cfg, gs)


def _read_v0_or_bad_magic(cur: _Cursor, magic: int) -> tuple[LlamaConfig, LlamaWeights]:
    """Files without the magic are legacy version 0 if their 7-int header is plausible."""
    ints = [int(v) for v in np.frombuffer(cur.data, "<i4", 7)]
    try:
        cfg = _config_from_ints([*ints[:5], abs(ints[5]), ints[6]], ints[5] > 0, cur.name)
    except TinydeployError:
        raise TinydeployError(
            f"checkpoint {cur.name} has bad magic 0x{magic:08x}: neither 'ak42' (version 1/2) "
            f"nor a valid legacy version-0 header") from None
    expected = _v0_expected_bytes(cfg)
    if len(cur.data) < expected:
        raise TinydeployError(
            f"checkpoint {cur.name} is truncated: its version-0 header implies {expected} bytes, "
            f"the file has {len(cur.data)}")
    return _read_v0(cur)


# ----------------------------------------------------------------------------- writing


def _f32(a) -> bytes:
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


def _header_ints(cfg: LlamaConfig, vocab: int) -> bytes:
    return np.array([cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, vocab,
                     cfg.seq_len], dtype="<i4").tobytes()


def _freq_cis(cfg: LlamaConfig) -> tuple[np.ndarray, np.ndarray]:
    """The RoPE cos/sin tables version 0 carries (as llama2.c's model.py computes them)."""
    hs = cfg.head_size
    freqs = (1.0 / cfg.rope_theta ** (np.arange(0, hs, 2, dtype=np.float32) / hs)).astype(np.float32)
    ang = np.outer(np.arange(cfg.seq_len, dtype=np.float32), freqs).astype(np.float32)
    return np.cos(ang), np.sin(ang)


def write_v0(path: str | os.PathLike, cfg: LlamaConfig, w: LlamaWeights) -> None:
    """Write a legacy version-0 fp32 checkpoint."""
    vocab = cfg.vocab_size if cfg.shared_classifier else -cfg.vocab_size
    cos, sin = _freq_cis(cfg)
    parts = [_header_ints(cfg, vocab), _f32(w.token_embedding), _f32(w.rms_att), _f32(w.wq),
             _f32(w.wk), _f32(w.wv), _f32(w.wo), _f32(w.rms_ffn), _f32(w.w1), _f32(w.w2),
             _f32(w.w3), _f32(w.rms_final), _f32(cos), _f32(sin)]
    if not cfg.shared_classifier:
        parts.append(_f32(w.wcls))
    Path(path).write_bytes(b"".join(parts))


def _versioned_header(cfg: LlamaConfig, version: int, group_size: int | None = None) -> bytes:
    head = np.array([MAGIC], "<u4").tobytes() + np.array([version], "<i4").tobytes()
    head += _header_ints(cfg, cfg.vocab_size) + bytes([int(cfg.shared_classifier)])
    if group_size is not None:
        head += np.array([group_size], "<i4").tobytes()
    return head + b"\0" * (HEADER_BYTES - len(head))


def write_v1(path: str | os.PathLike, cfg: LlamaConfig, w: LlamaWeights) -> None:
    """Write a version-1 fp32 checkpoint."""
    parts = [_versioned_header(cfg, 1), _f32(w.rms_att), _f32(w.rms_ffn), _f32(w.rms_final),
             _f32(w.token_embedding)] + [_f32(getattr(w, n)) for n in MATRICES]
    if not cfg.shared_classifier:
        parts.append(_f32(w.wcls))
    Path(path).write_bytes(b"".join(parts))


def quantize_q80(t: np.ndarray, group_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Q8_0 of one tensor: groups over the flattened tensor, scale = absmax / 127, round half even."""
    g = np.asarray(t, np.float32).reshape(-1, group_size)
    scale = (np.abs(g).max(axis=1) / np.float32(127.0)).astype(np.float32)
    safe = np.where(scale > 0, scale, np.float32(1.0))  # an all-zero group quantizes to zeros
    q = np.round(g / safe[:, None]).astype(np.int8)
    return q.reshape(np.shape(t)), scale


def write_v2(path: str | os.PathLike, cfg: LlamaConfig, w: LlamaWeights, group_size: int = 32) -> None:
    """Write a version-2 (Q8_0) checkpoint, quantizing the float weights."""
    parts = [_versioned_header(cfg, 2, group_size), _f32(w.rms_att), _f32(w.rms_ffn),
             _f32(w.rms_final)]
    tensors = [w.token_embedding] + [m for n in MATRICES for m in getattr(w, n)]
    if not cfg.shared_classifier:
        tensors.append(w.wcls)
    for t in tensors:
        if t.size % group_size:
            raise TinydeployError(
                f"cannot write Q8_0: a tensor of {t.size} values is not a multiple of group size "
                f"{group_size}")
        q, s = quantize_q80(t, group_size)
        parts += [q.astype("<i1").tobytes(), _f32(s)]
    Path(path).write_bytes(b"".join(parts))
