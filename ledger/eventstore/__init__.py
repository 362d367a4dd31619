"""Persistence of a shard's event log: the port and its memory and RocksDB implementations."""
