"""The embedded SQLite backend: schema.py (the file), writer.py (group commit,
compaction), store.py (the Store: reads, watch, lifecycle)."""
