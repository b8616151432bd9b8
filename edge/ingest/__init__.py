"""Ingest: noticing frames and reading them safely.

watcher (inotify, polling, backlog, rescans, the frame queue) → frame_file (open without
blocking or following symlinks, bounded reads) → imaging (decode, orientation, draft, resize)
and capture_time (EXIF time → UTC). Knows nothing of models or the database.
"""
