"""The fleet collector: the devices' MQTT messages → one central database (docs/fleet.md).

It runs on a server, never on a Pi: `pip install 'trailcam[collector]'` (psycopg 3, paho 2).
Modules: `messages` (topic + payload → a row, pure), `sink` (rows → PostgreSQL or SQLite, one
transaction per batch, idempotent upserts), `service` (the MQTT client with manual
acknowledgement after commit), `importer` (the same handler over an `edge export events` file),
`devices` (the device list), `cli`.
"""
