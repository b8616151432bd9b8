"""Push notifications ([notify]): which visits earn one (rules.py, inside the frame's transaction),
what they say (render.py), the Apprise targets (targets.py, Apprise imported lazily) and the
delivery thread (delivery.py). The durable queue itself is the store's (edge/store/notifications.py)."""
