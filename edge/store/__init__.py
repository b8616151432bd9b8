"""Store: the edge's SQLite database, its one writer and its readers.

db (the one connection helper, read-only opening, `edge check`'s look) · schema (versions and
migrations) · writer (Store: one transaction per frame, returned as one typed Commit) · events
(which visit a frame joins, the species vote) · outbox (the MQTT outbox table) · queries
(counts, events, frames: rows) · times (the stored time format) · disk (what a full disk looks
like to a writer).
"""
