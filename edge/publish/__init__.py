"""Publish: MQTT out of the outbox.

messages (topics and payloads) · outbox_writer (the store's outbox rows for each committed
frame, inside its transaction) · mqtt (the publisher thread: drain in order, delete on PUBACK)
· retained (its retained health, info and best-crop topics) · day_snapshot (its day's counts
snapshot) · announce (its known species, announced to Home Assistant) · discovery (Home
Assistant discovery configs).
"""
