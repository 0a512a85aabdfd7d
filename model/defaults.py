"""RoboJam's served configuration and the constants shared by training, export and serving (no TensorFlow here)."""

SCALE = 10.0  # events are multiplied by this before the network; samples are divided by it
DIMENSION = 3  # x, y, dt
DEFAULT_UNITS = 512
DEFAULT_LAYERS = 2
DEFAULT_MIXTURES = 5
