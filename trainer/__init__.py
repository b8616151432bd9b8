"""trailcam trainer: build, tune, evaluate and export bird-species classifiers (TensorFlow/Keras)."""

__version__ = "0.1.0"
