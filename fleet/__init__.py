"""The fleet's central database: one schema for PostgreSQL and SQLite, shared by the collector
(which writes it from the devices' MQTT messages) and the edge's readers (`edge counts --db
postgresql://...`). Nothing here imports psycopg at module level: a Pi never installs it."""
