"""Live cameras: RTSP and HTTP MJPEG streams turned into frames the still pipeline counts.

    reader.py   StreamReader: one thread per camera, decodes the stream with PyAV (imported lazily),
                reconnects with backoff, runs the motion gate, opens and closes motion episodes
    motion.py   MotionGate: the difference of small grey frames against a learnt background
    writer.py   FrameWriter: a bounded hand-off (drops counted) and a thread that writes sampled
                frames as JPEG with their capture time, atomically, into the camera's folder
    cameras.py  LiveCameras: all of them for the daemon (start, stop, status, the empty frames
                removed after they are recorded, keep_days)

The written frames go through the ordinary path of a still (the folder watcher, the queue, the
store), so counting, dedup at a restart and crash safety are the ones stills have.
"""
