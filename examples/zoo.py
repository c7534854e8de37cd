"""The test model set, importable from the examples folder.

The code lives in `tinydeploy.testing` (so tests import it without path tricks);
this module re-exports it for scripts run from a checkout:

    import sys; sys.path.insert(0, "examples")
    import zoo
    model = zoo.cnn()
    qmodel = zoo.quantize(model, fmt="qdq", activation="uint8", weight="int8", per_channel=True)
    outputs = zoo.reference(qmodel, zoo.random_inputs(qmodel)[0])
"""

import os
import sys

try:
    from tinydeploy.testing import *  # noqa: F401,F403
    from tinydeploy.testing import __all__  # noqa: F401
except ImportError:  # a checkout without `pip install -e .`
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    from tinydeploy.testing import *  # noqa: F401,F403
    from tinydeploy.testing import __all__  # noqa: F401
