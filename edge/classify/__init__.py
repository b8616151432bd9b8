"""Classify: the species model and what its scores mean.

labels (txt, csv or embedded in the .tflite) → model (bundle or .tflite, the runtime,
TFLiteModel and Classifier) → decision (thresholds, allow/deny → species, unknown or nothing).
Detection joins this package.
"""
