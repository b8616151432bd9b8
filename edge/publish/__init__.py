"""Publish: MQTT out of the outbox.

messages (topics and payloads) · outbox_writer (the store's outbox rows for each committed
frame, inside its transaction) · mqtt (the publisher thread: drain in order, delete on PUBACK)
· discovery (Home Assistant discovery configs).
"""
