"""RoboJam serving: a Flask app (`service.app.create_app`) that answers MicroJam with NumPy-only inference.

Nothing in this package imports TensorFlow or Keras; it reads the framework-free weights artifact instead.
"""
