"""The daemon: one frame's path and the loop that drives it.

preflight (the checks `edge check` and `edge run` share; the state folder) · pipeline
(FrameProcessor: read → decode → classify → decide → store, for one frame) · lifecycle (Daemon:
start, loop, stop, signals, hooks) · wiring (build: what runs, its hooks and their order).
"""
