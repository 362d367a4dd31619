"""Redis transports of the distributed mode: the command bus and the committed-event stream.

`keys` names every Redis key, `codec` turns requests, results and events into bytes, and
`redis_bus` / `redis_stream` implement the `ledger.bus.CommandBus` and `ledger.stream.EventStream`
ports. Nothing here decides anything about the ledger; the writer does.
"""
