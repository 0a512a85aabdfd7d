"""RoboJam's training defaults, and the constants training shares with export and serving (no TensorFlow here).

DIMENSION (x, y, dt) and SCALE (events are multiplied by it before the network, samples divided by it) are the
contract's (`robojam_format`), recorded in every artifact; the sizes are this package's defaults.
"""

from robojam_format.artifact import SCALE
from robojam_format.performance import DIMENSION

__all__ = ["SCALE", "DIMENSION", "DEFAULT_UNITS", "DEFAULT_LAYERS", "DEFAULT_MIXTURES"]

DEFAULT_UNITS = 512
DEFAULT_LAYERS = 2
DEFAULT_MIXTURES = 5
