"""Benchmarks (`make bench`): development tools that may import model/ and Keras; never part of the image."""
