"""trailcam edge: the field daemon that turns camera frames into species counts.

Runs on Raspberry Pi class devices with ai-edge-litert or tflite-runtime; never imports
TensorFlow (a test enforces it).
"""

__version__ = "0.1.0"
