"""Random small models from the zoo (tinydeploy.testing.random_model), quantized in a rotating
choice of the twelve onnxruntime configurations: 100 % must compile, give golden == host C on
integer paths, and stay within the depth rule of docs/tolerance.md from onnxruntime."""
import pytest

import tinydeploy.testing as T
from model_check import allowed_lsb, check_model
from tinydeploy.ops import registry

registry.load_all()
pytestmark = pytest.mark.skipif(not {"Flatten", "Reshape", "Transpose", "Concat"} <= set(registry.OPS),
                                reason="needs the data-movement ops (ops/shape.py)")

FAST = range(60)            # fixed seeds, every run
SLOW = range(60, 400)       # --runslow


def _check(seed):
    cfg = T.QUANT_CONFIGS[seed % len(T.QUANT_CONFIGS)]
    q = T.quantize(T.random_model(seed), fmt=cfg[0], activation=cfg[1], weight=cfg[2], per_channel=cfg[3])
    feeds = T.random_inputs(q, seed=seed + 1000)[0]
    _, stats = check_model(q, feeds, tol=allowed_lsb)
    return stats


def _check_all(seeds):
    for seed in seeds:
        try:
            _check(seed)
        except AssertionError as e:
            raise AssertionError(f"random_model({seed}): {e}") from None


@pytest.mark.parametrize("batch", range(6))
def test_random_models(batch):
    """60 seeds in 6 batches of 10 (fewer pytest items, same coverage)."""
    _check_all(FAST[batch::6])


@pytest.mark.slow
@pytest.mark.parametrize("batch", range(17))
def test_random_models_slow(batch):
    """340 more seeds, 20 per item."""
    _check_all(SLOW[batch::17])
