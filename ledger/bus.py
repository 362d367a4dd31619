"""The command bus: how commands reach the writer of their ledger.

One interface, two transports. `InProcessBus` hands requests straight to writer threads in this
process (embedded mode); `ledger.transport.redis_bus.RedisBus` sends them over Redis to the
writer process of the ledger (distributed mode). Callers get one `Result` per command, once the
outcome is durable. `tests/integration/test_bus_contract.py` is the contract both pass.

Errors that are not the ledger's answer are exceptions, all `WriterError`s and all retryable:
nothing is known to have been applied, and resending the same commands with the same
idempotency keys is always safe (a command whose outcome was recorded is answered again,
marked replayed, and changes nothing). A timeout (`TimeoutError`) means the same.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from concurrent.futures import Future

from ledger.core.commands import Request
from ledger.core.machine import Result
from ledger.shards import ShardRegistry
from ledger.writer import WriterError, WriterStopped

DEFAULT_TIMEOUT_SECONDS = 30.0


class BusUnavailable(WriterError):
    """The bus's broker cannot be reached, or was lost while waiting for the reply."""


class WriterUnavailable(WriterStopped):
    """No writer serves this ledger right now; nothing was sent."""


class CommandBus(ABC):
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    """How long `execute` waits for the writer by default."""

    @abstractmethod
    def submit(self, ledger: str, request: Request) -> Future[list[Result]]:
        """Send a request to the writer of `ledger`; the future resolves when it is durable."""

    def execute(
        self, ledger: str, request: Request, timeout: float | None = None
    ) -> list[Result]:
        return self.submit(ledger, request).result(timeout or self.timeout_seconds)

    @abstractmethod
    def close(self) -> None:
        """Release connections and threads (the writers are not the bus's to stop)."""


class InProcessBus(CommandBus):
    def __init__(self, registry: ShardRegistry) -> None:
        self.registry = registry

    def submit(self, ledger: str, request: Request) -> Future[list[Result]]:
        return self.registry.get(ledger).writer.submit(request)

    def close(self) -> None:
        pass  # the registry owns the writers
