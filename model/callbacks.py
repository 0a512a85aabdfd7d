"""Keras callbacks of our own (the rest come from keras.callbacks)."""

from __future__ import annotations

import time

import keras


class TimeBudget(keras.callbacks.Callback):
    """Stop training after the epoch during which `seconds` of wall time ran out (CPU runs with a deadline).

    `used` is the wall time spent so far, in seconds; a resumed run starts it from the backup's figure, so the
    budget covers the whole run, not each attempt.
    """

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.used = 0.0
        self._since = 0.0

    def on_train_begin(self, logs=None):
        self._since = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        now = time.monotonic()
        self.used, self._since = self.used + now - self._since, now
        if self.used >= self.seconds:
            print(f"time budget of {self.seconds / 60:.1f} min reached after epoch {epoch + 1}; stopping.")
            self.model.stop_training = True
