"""Pure ledger core: commands, events, result codes, canonical encoding and the state machine.

Nothing here imports Django or does I/O. The writer feeds commands in and gets events and
results out; the event store persists them; replaying the events rebuilds the same state.
"""
