"""Channel-layer messages sent from threads: the relay, the monitor, services.

Groups:
- `ledger.events.<CODE>`: the committed events of one ledger (sent by the relay), for
  `/ws/events/` connections on that ledger; `ledger.events.all`: the same, for connections on
  every ledger. Message: `{"type": "ledger.events", "ledger", "events": [[seq, type, accounts,
  event JSON], ...]}` in seq order.
- `monitoring.dashboard`: `dashboard.alert`, `dashboard.totals`, `dashboard.checkpoint` for
  `/ws/dashboard/`.

The in-memory layer (embedded mode) belongs to the server's event loop, so its messages are
handed to that loop, which the first consumer to connect registers; a process where nobody
has connected has nobody to send to. channels_redis (distributed mode) is driven from a private
event-loop thread of the sending process. Sending is best effort: WebSocket consumers read
whatever they missed from the log.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from channels.layers import InMemoryChannelLayer, get_channel_layer

log = logging.getLogger(__name__)

ALL_EVENTS_GROUP = "ledger.events.all"
DASHBOARD_GROUP = "monitoring.dashboard"
SEND_TIMEOUT_SECONDS = 5.0

_server_loop: asyncio.AbstractEventLoop | None = None
_own_loop: asyncio.AbstractEventLoop | None = None
_own_loop_lock = threading.Lock()


def events_group(ledger: str) -> str:
    return f"ledger.events.{ledger}"


def server_loop_register(loop: asyncio.AbstractEventLoop) -> None:
    """Called by consumers as they connect: the loop in-memory layer messages go to."""
    global _server_loop
    _server_loop = loop


def _private_loop() -> asyncio.AbstractEventLoop:
    global _own_loop
    with _own_loop_lock:
        if _own_loop is None or _own_loop.is_closed():
            _own_loop = asyncio.new_event_loop()
            threading.Thread(target=_own_loop.run_forever, name="channel-layer-sender",
                             daemon=True).start()
        return _own_loop


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def group_send(group: str, message: dict) -> bool:
    """Send to a group from a thread outside any event loop; False if it was not sent."""
    layer = get_channel_layer()
    if layer is None:
        return False
    if isinstance(layer, InMemoryChannelLayer):
        loop = _server_loop
        if loop is None or loop.is_closed():
            return False
    else:
        loop = _private_loop()
    try:
        if _running_loop() is loop:  # called on the loop itself: must not wait for it
            loop.create_task(layer.group_send(group, message))
            return True
        asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop).result(
            SEND_TIMEOUT_SECONDS
        )
        return True
    except Exception:
        log.warning("sending to channel group %s failed", group, exc_info=True)
        return False


def alert_changed(alert: dict) -> None:
    group_send(DASHBOARD_GROUP, {"type": "dashboard.alert", "alert": alert})


def totals_changed(totals: dict) -> None:
    group_send(DASHBOARD_GROUP, {"type": "dashboard.totals", "totals": totals})


def checkpoint_changed(checkpoint: dict) -> None:
    group_send(DASHBOARD_GROUP, {"type": "dashboard.checkpoint", "checkpoint": checkpoint})
