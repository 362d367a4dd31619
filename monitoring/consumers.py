"""WebSocket consumers: authentication, group membership and forwarding; nothing else.

`/ws/events/` streams committed events (what and in which order is `monitoring.feeds`'s
business); `/ws/dashboard/` forwards the dashboard's alerts, totals and checkpoints to staff.
Anonymous handshakes are refused (HTTP 403).
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from ledger.runtime import runtime
from monitoring.broadcast import DASHBOARD_GROUP, server_loop_register
from monitoring.feeds import Feed, FeedBroken, FeedRefused, feed_filter_parse

log = logging.getLogger(__name__)


def _feed_open(user, query_string: bytes) -> Feed:
    return Feed(user, feed_filter_parse(query_string), runtime().shards)


class EventsConsumer(AsyncWebsocketConsumer):
    feed: Feed | None = None
    joined: tuple[str, ...] = ()

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()
            return
        try:
            feed = await database_sync_to_async(_feed_open)(user, self.scope["query_string"])
        except FeedRefused as refused:
            await self.accept()
            await self.send(text_data=refused.frame())
            await self.close(code=refused.close_code)
            return
        server_loop_register(asyncio.get_running_loop())
        for group in feed.groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.joined = tuple(feed.groups)
        await self.accept()
        await database_sync_to_async(feed.start)()
        backlog = sync_to_async(feed.backlog_frame, thread_sensitive=False)
        try:
            while (frame := await backlog()) is not None:
                await self.send(text_data=frame)
        except FeedBroken as broken:
            await self._broken(broken)
            return
        self.feed = feed
        await self.send(text_data=feed.ready_frame())

    async def ledger_events(self, message: dict) -> None:
        feed = self.feed
        if feed is None:
            return
        try:
            if feed.needs_io(message):
                frames = await sync_to_async(feed.live_frames, thread_sensitive=False)(message)
            else:
                frames = feed.live_frames(message)
        except FeedBroken as broken:
            await self._broken(broken)
            return
        for frame in frames:
            await self.send(text_data=frame)

    async def _broken(self, broken: FeedBroken) -> None:
        log.warning("closing an event feed: %s", broken)
        self.feed = None
        error = {"type": "error", "code": "log_unavailable", "message": str(broken)}
        await self.send(text_data=orjson.dumps(error).decode())
        await self.close(code=1011)

    async def disconnect(self, code: int) -> None:
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)


class DashboardConsumer(AsyncWebsocketConsumer):
    """Staff only; alerts only for users who may view them."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_staff:
            await self.close()
            return
        self.alerts_allowed = await database_sync_to_async(user.has_perm)("aml.view_alert")
        server_loop_register(asyncio.get_running_loop())
        await self.channel_layer.group_add(DASHBOARD_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(DASHBOARD_GROUP, self.channel_name)

    async def dashboard_alert(self, message: dict) -> None:
        if self.alerts_allowed:
            await self._forward("alert", message["alert"])

    async def dashboard_totals(self, message: dict) -> None:
        await self._forward("totals", message["totals"])

    async def dashboard_checkpoint(self, message: dict) -> None:
        await self._forward("checkpoint", message["checkpoint"])

    async def _forward(self, kind: str, payload: dict) -> None:
        await self.send(text_data=orjson.dumps({"type": kind, kind: payload}).decode())
