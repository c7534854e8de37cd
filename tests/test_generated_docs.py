"""Result files that are cheap to regenerate must match what their generator writes today."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load(script: str):
    spec = importlib.util.spec_from_file_location(Path(script).stem, ROOT / script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_op_coverage_is_current():
    gen = _load("benchmarks/op_coverage.py")
    assert gen.OUT.read_text() == gen.render(), "docs/op_coverage.md is stale: run python benchmarks/op_coverage.py"
