"""The layering of pyproject.toml's import-linter contracts holds (`lint-imports`), and the tool does
fail on a broken contract."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint(*args):
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports not found: pip install -e '.[test]' (import-linter)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([exe, "--no-cache", *args], cwd=ROOT, env=env, capture_output=True, text=True)


def test_import_contracts_are_kept():
    r = _lint()
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-1000:]
    assert "0 broken" in r.stdout


def test_a_broken_contract_fails(tmp_path):
    """ops import the IR, so the IR placed above the ops is a broken contract."""
    cfg = tmp_path / "broken.toml"
    cfg.write_text('[tool.importlinter]\nroot_package = "tinydeploy"\n\n[[tool.importlinter.contracts]]\n'
                   'name = "inverted"\ntype = "layers"\nlayers = ["tinydeploy.ir", "tinydeploy.ops"]\n')
    r = _lint("--config", str(cfg))
    assert r.returncode != 0 and "BROKEN" in r.stdout
