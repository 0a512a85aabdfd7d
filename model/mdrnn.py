"""The RoboJam MDRNN in Keras 3: stacked LSTMs feeding a keras-mdn-layer MDN at every time step.

Inputs and outputs live in the scaled space (events * SCALE). The network's output at each step is the MDN's raw
parameter vector `concat(mus, sigmas, pi_logits)` of length 2*M*D + M.
"""

from __future__ import annotations

import keras
import keras_mdn_layer as mdn

from model.defaults import DEFAULT_LAYERS, DEFAULT_MIXTURES, DEFAULT_UNITS, DIMENSION, SCALE

__all__ = [
    "SCALE",
    "DIMENSION",
    "build_model",
    "compile_model",
    "load_keras_model",
    "architecture",
    "keras2_hard_sigmoid",
    "recurrent_activation_name",
]


def keras2_hard_sigmoid(x):
    """Keras 2's hard_sigmoid, clip(0.2 * x + 0.5, 0, 1): what Keras 2 LSTMs (IMPSY's, EMPI's, RoboJam's .h5 files)
    use by default and what an artifact's "hard_sigmoid" means. Keras 3's own hard_sigmoid is x / 6 + 0.5, clipped."""
    return keras.ops.clip(0.2 * x + 0.5, 0.0, 1.0)


# The artifact's names for the LSTM gate activations a Keras 3 model can be built with.
RECURRENT_ACTIVATIONS = {"sigmoid": "sigmoid", "hard_sigmoid": keras2_hard_sigmoid}


def output_size(mixtures: int, dimension: int = DIMENSION) -> int:
    return 2 * mixtures * dimension + mixtures


def build_model(
    units: int = DEFAULT_UNITS,
    layers: int = DEFAULT_LAYERS,
    mixtures: int = DEFAULT_MIXTURES,
    *,
    dimension: int = DIMENSION,
    recurrent_activation: str = "sigmoid",
    stateful: bool = False,
    batch_size: int | None = None,
    seq_len: int | None = None,
) -> keras.Model:
    """Build the MDRNN. `stateful=True` needs a fixed `batch_size` (RoboJam's original serving used 1 x 1).

    `dimension` and `recurrent_activation` (an artifact's name: "sigmoid" or Keras 2's "hard_sigmoid") build the
    Keras 3 twin of an imported model (IMPSY's, for the conformance tests); training uses the defaults."""
    if units < 1 or layers < 1 or mixtures < 1:
        raise ValueError(f"units, layers and mixtures must be positive, got {units}, {layers}, {mixtures}.")
    if stateful and batch_size is None:
        raise ValueError("a stateful model needs a fixed batch_size.")
    gates = RECURRENT_ACTIVATIONS[recurrent_activation]
    inputs = keras.Input(shape=(seq_len, dimension), batch_size=batch_size, name="events")
    x = inputs
    for i in range(layers):
        x = keras.layers.LSTM(
            units, recurrent_activation=gates, return_sequences=True, stateful=stateful, name=f"lstm_{i}"
        )(x)
    outputs = keras.layers.TimeDistributed(mdn.MDN(dimension, mixtures), name="mdn")(x)
    return keras.Model(inputs, outputs, name=f"robojam_mdrnn_{layers}x{units}_m{mixtures}")


def loss_function(mixtures: int):
    """Mean negative log-likelihood of the targets under the predicted mixture (keras-mdn-layer)."""
    return mdn.get_mixture_loss_func(DIMENSION, mixtures)


def compile_model(
    model: keras.Model, mixtures: int, learning_rate: float = 1e-3, clipnorm: float | None = 1.0
) -> keras.Model:
    """Adam on the mixture NLL; clipping the gradient norm keeps rare huge MDN gradients from derailing training."""
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=clipnorm)
    model.compile(loss=loss_function(mixtures), optimizer=optimizer)
    return model


def architecture(model: keras.Model) -> dict:
    """(units, layers, mixtures) read back from a built model."""
    lstms = [layer for layer in model.layers if isinstance(layer, keras.layers.LSTM)]
    head = model.get_layer("mdn").layer
    return {"units": lstms[0].units, "layers": len(lstms), "mixtures": head.num_mix}


def recurrent_activation_name(layer: keras.layers.LSTM) -> str:
    """The artifact's name for an LSTM's gate activation. Keras 3's own "hard_sigmoid" is not the artifact's (Keras
    2's), so it is named "keras3_hard_sigmoid", which every reader refuses instead of mis-running."""
    if layer.recurrent_activation is keras2_hard_sigmoid:
        return "hard_sigmoid"
    name = keras.activations.serialize(layer.recurrent_activation)
    return "keras3_hard_sigmoid" if name == "hard_sigmoid" else name


def load_keras_model(path) -> keras.Model:
    """Load a `.keras` checkpoint written by training (inference only: no optimizer, no loss)."""
    return keras.models.load_model(path, custom_objects={"MDN": mdn.MDN}, compile=False)
