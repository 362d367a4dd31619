"""The ledger: accounts, balance buckets, commands, the single writer and its event store."""
