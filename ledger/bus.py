"""The command bus: how commands reach the writer of their ledger.

One interface, several transports. `InProcessBus` hands requests straight to writer threads in
this process (embedded mode). A Redis transport for the distributed mode implements the same
interface. Callers get one `Result` per command, once the outcome is durable.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from concurrent.futures import Future

from ledger.core.commands import Request
from ledger.core.machine import Result
from ledger.shards import ShardRegistry

DEFAULT_TIMEOUT_SECONDS = 30.0


class CommandBus(ABC):
    @abstractmethod
    def submit(self, ledger: str, request: Request) -> Future[list[Result]]:
        """Send a request to the writer of `ledger`; the future resolves when it is durable."""

    def execute(
        self, ledger: str, request: Request, timeout: float = DEFAULT_TIMEOUT_SECONDS
    ) -> list[Result]:
        return self.submit(ledger, request).result(timeout)


class InProcessBus(CommandBus):
    def __init__(self, registry: ShardRegistry) -> None:
        self.registry = registry

    def submit(self, ledger: str, request: Request) -> Future[list[Result]]:
        return self.registry.get(ledger).writer.submit(request)
