"""Keras callbacks of our own (the rest come from keras.callbacks)."""

from __future__ import annotations

import time

import keras


class TimeBudget(keras.callbacks.Callback):
    """Stop training after the epoch during which `seconds` of wall time ran out (CPU runs with a deadline)."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self._start = 0.0

    def on_train_begin(self, logs=None):
        self._start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if time.monotonic() - self._start >= self.seconds:
            print(f"time budget of {self.seconds / 60:.1f} min reached after epoch {epoch + 1}; stopping.")
            self.model.stop_training = True
