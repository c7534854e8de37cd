"""The target interface: the folders are the registry, the CLI's choices come from it, nothing outside
targets/ names a target, and each target's budget check names bytes needed and available."""
import re
from pathlib import Path

import pytest

from tinydeploy import cli, targets
from tinydeploy.compiler import Footprint
from tinydeploy.errors import BudgetError, TinydeployError
from tinydeploy.targets.base import Target

SRC = Path(targets.__file__).resolve().parents[1]


def test_target_folders_are_the_registry():
    folders = sorted(p.name for p in Path(targets.__file__).parent.iterdir() if (p / "__init__.py").is_file())
    assert set(targets.names()) <= set(folders) and {"host", "rv32", "golden"} <= set(targets.names())
    for name in targets.names():
        t = targets.get(name)
        assert isinstance(t, Target) and t.name == name and t.levels and t.report()["target"] == name
    assert set(targets.names(programs=True)) < set(folders)   # golden runs no generated main


def test_cli_target_choices_come_from_the_registry():
    def choices(cmd):
        return next(p.type.choices for p in cli.main.commands[cmd].params if p.name == "target")
    for cmd in ("compile", "run", "inspect"):
        assert list(choices(cmd)) == targets.names()
    assert list(choices("generate")) == targets.names(programs=True)


def test_no_target_name_outside_targets():
    """A target name as a string literal outside targets/ is a branch on it waiting to happen."""
    names = "|".join(map(re.escape, targets.names()))
    found = [f"{p.relative_to(SRC)}:{i}" for p in SRC.rglob("*.py") if "targets" not in p.relative_to(SRC).parts
             for i, line in enumerate(p.read_text().splitlines(), 1) if re.search(rf"[\"']({names})[\"']", line)]
    assert not found


def test_budget_check_names_bytes_per_level():
    fp = Footprint(weights=300_000, state=200_000, arena=30_000, scratch=10_000)
    for name in targets.names():   # unlimited levels never refuse
        t = targets.get(name)
        if all(v is None for v in t.levels.values()):
            t.check_budget(fp)
    rv = targets.get("rv32")
    with pytest.raises(BudgetError, match=r"needs 538,192 bytes of SRAM .*scratch 10,000.*stack 8,192.* has 524,288"):
        rv.check_budget(fp)
    rv.check_budget(Footprint(weights=300_000, state=200_000, arena=8_000, scratch=0))
    with pytest.raises(BudgetError, match="program needs .*tokenizer 9"):
        rv.check_budget(Footprint(300_000, 200_000, 30_000, 0, {"tokenizer": 9}))


def test_target_config_is_parsed_by_the_target(tmp_path):
    (tmp_path / "b.toml").write_text('sram_bytes = "256KiB"\nclock_hz = 100e6\n')
    rv = targets.get("rv32", tmp_path / "b.toml")
    assert rv.levels == {"SRAM": 256 * 1024} and rv.clock_hz == 100_000_000 == rv.report()["clock_hz"]
    with pytest.raises(TinydeployError, match="takes no configuration"):
        targets.get("host", tmp_path / "b.toml")
    with pytest.raises(TinydeployError, match="unknown target"):
        targets.get("npu")


@pytest.mark.parametrize("text", ['[1]', '"x"', '{"rv32": 5}', '{"clock_hz": 1e400}', '{"clock_hz": "inf"}',
                                  '{"clock_hz": 2.5}', '{"clock_hz": true}', '{"sram_bytes": [1]}',
                                  '{"stack_bytes": null}'])
def test_a_hostile_target_config_is_one_error(text, tmp_path):
    (tmp_path / "c.json").write_text(text)
    with pytest.raises(TinydeployError, match="^rv32: "):
        targets.get("rv32", tmp_path / "c.json")
