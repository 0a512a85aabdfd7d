"""RoboJam's model side: the Keras 3 MDRNN, the corpus pipeline, training and export of the weights artifact."""
