import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run slow tests (full suites)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config):
    """Which references quantized models are checked against on this CPU (probed once)."""
    from tinydeploy.testing import ort_status
    return ort_status()


def pytest_terminal_summary(terminalreporter, config):
    if config.get_verbosity() < 0:   # -q hides the header: say it at the end instead
        from tinydeploy.testing import ort_status
        terminalreporter.write_line(ort_status())
