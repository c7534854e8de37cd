"""ONNX backend node tests through tinydeploy: data, the parameter-folding rule, golden and batched C.

Data: `onnx.backend.test.case.node.collect_testcases()` (the wheel ships no node data directory, so
it is written once, in the standard layout `<case>/model.onnx`, `test_data_set_0/{input,output}_k.pb`,
to $TD_ONNX_NODE_DATA or ~/.cache/tinydeploy-onnx-node/<onnx version>) and read back from there.

The parameter-folding rule (a static compiler needs them constant): a graph input becomes an
initializer holding the test's value when a node reads it at a *parameter position*, i.e. one that
the op's semantics use as a shape, index set, count or setting rather than as data to compute on —
Reshape/Expand shape, Tile repeats, Slice starts/ends/axes/steps, Pad pads/value/axes, Squeeze /
Unsqueeze / Reduce* axes, Split sizes, TopK k, Clip min/max, Resize roi/scales/sizes, OneHot depth and
values, ConstantOfShape shape, Range start/limit/delta, CumSum axis, Trilu k, CenterCropPad shape,
Dropout ratio/training_mode, CastLike's target-type example — and weights: Conv/ConvTranspose W and
B, PRelu slope, normalisation scale/bias/mean/var, Q/DQ scales and zero points. Everything else
(Gather indices, Where's condition, MatMul/Gemm operands, …) stays a run-time input.

Comparison with the expected outputs: integer and bool outputs exactly (dtype included); float
outputs with |got - want| <= atol + rtol·|want| (NaN = NaN), rtol 1e-5 / atol 1e-6 by default and
rtol 1e-4 / atol 1e-5 for cases that use a transcendental function (libm vs numpy, see TOL).
"""
from __future__ import annotations

import fnmatch
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from tinydeploy.compiler import compile_graph
from tinydeploy.errors import TinydeployError
from tinydeploy.frontend.onnx_import import import_model
from tinydeploy.golden import run_graph

HERE = Path(__file__).resolve().parent
EXCLUSIONS = HERE / "node_tests_exclusions.txt"

PARAMS = {
    "Reshape": {1}, "Expand": {1}, "Tile": {1}, "Slice": {1, 2, 3, 4}, "Pad": {1, 2, 3}, "Squeeze": {1},
    "Unsqueeze": {1}, "Split": {1}, "TopK": {1}, "Clip": {1, 2}, "Resize": {1, 2, 3}, "Upsample": {1},
    "OneHot": {1, 2}, "ConstantOfShape": {0}, "Range": {0, 1, 2}, "CumSum": {1}, "CumProd": {1}, "Trilu": {1},
    "CenterCropPad": {1}, "Dropout": {1, 2}, "CastLike": {1}, "PRelu": {1}, "Col2Im": {1, 2}, "DFT": {1, 2},
    "STFT": {1, 3}, "AffineGrid": {1}, "BlackmanWindow": {0}, "HannWindow": {0}, "HammingWindow": {0},
    "MelWeightMatrix": {0, 1, 2, 3, 4}, "Compress": {1},
    "Conv": {1, 2}, "ConvTranspose": {1, 2}, "BatchNormalization": {1, 2, 3, 4}, "InstanceNormalization": {1, 2},
    "LayerNormalization": {1, 2}, "GroupNormalization": {1, 2}, "RMSNormalization": {1},
    "QuantizeLinear": {1, 2}, "DequantizeLinear": {1, 2}, "QLinearMatMul": {1, 2, 4, 5, 6, 7},
    "QLinearConv": {1, 2, 3, 4, 5, 6, 7, 8}, "MatMulInteger": {2, 3}, "ConvInteger": {1, 2, 3},
    **{f"Reduce{r}": {1} for r in ("Sum", "Mean", "Max", "Min", "Prod", "L1", "L2", "LogSum", "LogSumExp",
                                   "SumSquare")},
}

# cases whose graph uses one of these get the looser float tolerance
TRANSCENDENTAL = {"Exp", "Log", "Tanh", "Erf", "Gelu", "Sigmoid", "Softplus", "Mish", "Sin", "Cos", "Tan", "Sinh",
                  "Cosh", "Elu", "Selu", "Celu", "Swish", "Pow", "Softmax", "LogSoftmax", "ReduceLogSumExp",
                  "ReduceLogSum", "LayerNormalization", "RMSNormalization", "GroupNormalization", "Sqrt",
                  "InstanceNormalization", "BatchNormalization", "Softsign", "HardSwish", "Reciprocal", "Div",
                  "MeanVarianceNormalization", "LpNormalization", "ReduceL2", "HardSigmoid", "Asin", "Acos",
                  "Atan", "Asinh", "Acosh", "Atanh", "SoftmaxCrossEntropyLoss"}
TOL = {"default": (1e-5, 1e-6), "transcendental": (1e-4, 1e-5)}


def data_dir() -> Path:
    d = os.environ.get("TD_ONNX_NODE_DATA")
    return Path(d) if d else Path.home() / ".cache" / "tinydeploy-onnx-node" / onnx.__version__


def _write_value(path: Path, value, vi: onnx.ValueInfoProto) -> None:
    t = vi.type
    if t.HasField("sequence_type"):
        proto = numpy_helper.from_list(value, vi.name)
    elif t.HasField("optional_type"):
        proto = numpy_helper.from_optional(value, vi.name)
    elif t.HasField("map_type"):
        proto = numpy_helper.from_dict(value, vi.name)
    elif isinstance(value, onnx.TensorProto):
        proto = value
    else:
        proto = numpy_helper.from_array(np.asarray(value), vi.name)
    path.write_bytes(proto.SerializeToString())


def _generate(root: Path) -> None:
    from onnx.backend.test.case.node import collect_testcases
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    for c in cases:
        d = root / c.name
        d.mkdir()
        (d / "model.onnx").write_bytes(c.model.SerializeToString())
        for k, (ins, outs) in enumerate(c.data_sets or []):
            ds = d / f"test_data_set_{k}"
            ds.mkdir()
            for kind, values, infos in (("input", ins, c.model.graph.input), ("output", outs, c.model.graph.output)):
                for j, v in enumerate(values):
                    try:
                        _write_value(ds / f"{kind}_{j}.pb", v, infos[j])
                    except Exception:   # a value numpy_helper cannot serialise: the case stays unloadable
                        (ds / f"{kind}_{j}.pb").write_bytes(b"")
    (root / "MANIFEST").write_text("\n".join(sorted(c.name for c in cases)) + "\n")


_READY: list[Path] = []


def ensure_data() -> Path:
    """Write every node test case once (about 10 s) into a fresh directory renamed into place, so
    concurrent runs never see half a data set; later runs only read. Regenerated if incomplete."""
    root = data_dir()
    if root in _READY:      # checked once per process
        return root
    manifest = root / "MANIFEST"
    if manifest.exists() and all((root / n / "model.onnx").exists() for n in manifest.read_text().split()):
        _READY.append(root)
        return root
    if root.is_dir() and any(root.iterdir()) and not manifest.exists():   # never delete what is not ours
        raise RuntimeError(f"{root} holds files but no MANIFEST: not node-test data; "
                           f"point TD_ONNX_NODE_DATA at a new folder")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=root.name + ".", dir=root.parent))
    _generate(tmp)
    import shutil
    if root.exists():   # an incomplete data set of ours (it has a MANIFEST)
        shutil.rmtree(root, ignore_errors=True)
    try:
        tmp.rename(root)
    except OSError:   # another process won the race; its data is identical
        shutil.rmtree(tmp, ignore_errors=True)
    _READY.append(root)
    return root


def case_names() -> list[str]:
    return (ensure_data() / "MANIFEST").read_text().split()


@dataclass
class Case:
    name: str
    model: onnx.ModelProto
    inputs: list          # per graph input (numpy arrays when tensors)
    outputs: list


def _read_tensor(path: Path):
    t = onnx.TensorProto()
    t.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(t)


def load_model(name: str) -> onnx.ModelProto:
    return onnx.load(ensure_data() / name / "model.onnx")


def load_case(name: str, model: onnx.ModelProto | None = None) -> Case:
    model = model or load_model(name)
    ds = ensure_data() / name / "test_data_set_0"
    ins = [_read_tensor(ds / f"input_{j}.pb") for j in range(len(model.graph.input))]
    outs = [_read_tensor(ds / f"output_{j}.pb") for j in range(len(model.graph.output))]
    return Case(name, model, ins, outs)


# ---- static classification (before compiling) ---------------------------------------------------
_SMALL_TYPES = {"FLOAT16", "BFLOAT16", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ",
                "FLOAT8E8M0", "UINT4", "INT4", "FLOAT4E2M1", "UINT2", "INT2"}


def _types(model: onnx.ModelProto):
    g = model.graph
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        yield vi.type
    for init in g.initializer:
        yield init.data_type
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                yield a.t.data_type
            if a.name in ("to",) and a.type == onnx.AttributeProto.INT:
                yield a.i


def static_reason(model: onnx.ModelProto) -> str | None:
    """Why a case cannot be claimed, judged from the model alone (None: try it)."""
    g = model.graph
    for vi in list(g.input) + list(g.output):
        if not vi.type.HasField("tensor_type"):
            return "sequence/optional/map types"
    domains = {n.domain for n in g.node} - {"", "ai.onnx"}
    if domains:
        return "training or ML domain op (" + ", ".join(sorted(domains)) + ")"
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in g.node for a in n.attribute):
        return "control flow (subgraphs)"
    from tinydeploy.ops import registry
    registry.load_all()
    # Constant and the QOperator ops are rewritten by the frontend, never reach the registry
    missing = sorted({n.op_type for n in g.node} - set(registry.OPS) - {"Constant", "QLinearConv", "QLinearMatMul"})
    if missing:   # the op under test first, so one reason covers all of an op's cases
        name = (g.name or "").lower()
        missing.sort(key=lambda op: (op.lower() not in name.replace("_", ""), op))
        return f"op not supported: {missing[0]}"
    for t in _types(model):
        et = t.tensor_type.elem_type if isinstance(t, onnx.TypeProto) else t
        name = onnx.TensorProto.DataType.Name(et) if et else "UNDEFINED"
        if name in _SMALL_TYPES:
            return "float16/bfloat16/float8/int4 types"
        if name == "STRING":
            return "string"
        if name in ("COMPLEX64", "COMPLEX128"):
            return "complex types"
    return None


# ---- parameter folding ---------------------------------------------------------------------------
def fold_params(model: onnx.ModelProto, inputs: list) -> tuple[onnx.ModelProto, dict]:
    """(model with parameter inputs as initializers, remaining run-time inputs by name)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    params = {n.input[k] for n in g.node for k in PARAMS.get(n.op_type, ()) if k < len(n.input) and n.input[k]}
    # an *_expanded case is the op's function body: its graph inputs are the op's inputs, in order
    op = _op_named(g.name)
    params |= {g.input[k].name for k in PARAMS.get(op, ()) if k < len(g.input)}
    keep, feeds = [], {}
    for vi, v in zip(list(g.input), inputs):
        if vi.name in params:
            g.initializer.append(numpy_helper.from_array(np.asarray(v), vi.name))
        else:
            keep.append(vi)
            feeds[vi.name] = np.asarray(v)
    del g.input[:]
    g.input.extend(keep)
    return m, feeds


def _op_named(case: str) -> str | None:
    """The op a case name starts with (test_center_crop_pad_… → CenterCropPad), among PARAMS."""
    key = case.removeprefix("test_").replace("_", "").lower()
    hits = [op for op in PARAMS if key.startswith(op.lower())]
    return max(hits, key=len) if hits else None


# ---- compile + golden ---------------------------------------------------------------------------
def tolerance(model: onnx.ModelProto) -> tuple[float, float]:
    ops = {n.op_type for n in model.graph.node}
    return TOL["transcendental"] if ops & TRANSCENDENTAL else TOL["default"]


def compare(got, want, tol) -> str | None:
    """None if equal under the rule of this module, else a short description."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return f"shape {got.shape} != expected {want.shape}"
    if got.dtype != want.dtype:
        return f"dtype {got.dtype} != expected {want.dtype}"
    if want.dtype.kind in "fc":
        rtol, atol = tol
        g, w = got.astype(np.float64), want.astype(np.float64)
        with np.errstate(invalid="ignore"):   # inf - inf
            same = (g == w) | (np.isnan(g) & np.isnan(w)) | (np.abs(g - w) <= atol + rtol * np.abs(w))
        if not same.all():
            k = int(np.argmin(same.reshape(-1)))
            return f"float mismatch at {k}: {g.reshape(-1)[k]!r} vs {w.reshape(-1)[k]!r}"
        return None
    if not np.array_equal(got, want):
        k = int(np.argmax((got != want).reshape(-1)))
        return f"integer mismatch at {k}: {got.reshape(-1)[k]!r} vs {want.reshape(-1)[k]!r}"
    return None


@dataclass
class Result:
    name: str
    ok: bool
    stage: str = ""          # static | compile | golden | c
    reason: str = ""
    compiled: object = None
    feeds: dict = field(default_factory=dict)
    want: list = field(default_factory=list)
    tol: tuple = (0.0, 0.0)


def run_golden(name: str) -> Result:
    """Classify, fold parameters, compile and check the golden model against the expected data."""
    model = load_model(name)
    why = static_reason(model)
    if why:
        return Result(name, False, "static", why)
    try:
        case = load_case(name, model)
    except Exception as e:
        return Result(name, False, "static", f"cannot load test data ({type(e).__name__})")
    model, feeds = fold_params(case.model, case.inputs)
    shapes = {k: tuple(v.shape) for k, v in feeds.items()}   # static shapes from the test data
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            c = compile_graph(import_model(model, shapes))
            gold = run_graph(c.graph, feeds)
    except TinydeployError as e:
        return Result(name, False, "compile", str(e))
    except Exception as e:  # noqa: BLE001 - an internal error is a finding, reported per case
        return Result(name, False, "compile", f"internal error {type(e).__name__}: {e}")
    tol = tolerance(case.model)
    for o, want in zip(c.graph.outputs, case.outputs):
        bad = compare(gold[o], want, tol)
        if bad:
            return Result(name, False, "golden", f"{o}: {bad}", c, feeds, case.outputs, tol)
    return Result(name, True, "golden", "", c, feeds, case.outputs, tol)


from node_batch_c import run_c_batch  # noqa: E402  (batched host C build of many cases)


# ---- exclusions -----------------------------------------------------------------------------------
def read_exclusions(path: Path = EXCLUSIONS) -> list[tuple[str, str]]:
    """[(glob pattern, reason)] from lines `pattern  # reason`."""
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pat, _, reason = line.partition("#")
        out.append((pat.strip(), reason.strip()))
    return out


def excluded(name: str, rules) -> str | None:
    for pat, reason in rules:
        if fnmatch.fnmatchcase(name, pat):
            return reason
    return None


def claimed_cases() -> list[str]:
    rules = read_exclusions()
    return [n for n in case_names() if excluded(n, rules) is None]


def run_all(names: list[str], c: bool = True, cc: str = "gcc", extra=None, workers: int | None = None):
    """Golden for every case (in worker processes), then one batched C build of the golden passes."""
    from concurrent.futures import ProcessPoolExecutor
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers or os.cpu_count() or 2) as pool:
        results = list(pool.map(run_golden, names, chunksize=8))
    t1 = time.perf_counter()
    verdict = {}
    if c:
        passing = [r for r in results if r.ok]
        with tempfile.TemporaryDirectory() as tmp:
            verdict = run_c_batch(passing, Path(tmp), cc=cc, extra=extra)
    return results, verdict, {"golden_s": t1 - t0, "c_s": time.perf_counter() - t1}


if __name__ == "__main__":
    res, ver, secs = run_all(sys.argv[1:] or case_names())
    for r in res:
        print(r.name, "OK" if r.ok and not ver.get(r.name) else f"FAIL[{r.stage}] {r.reason or ver.get(r.name)}")
    print(secs)
