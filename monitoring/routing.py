"""WebSocket routes (mounted by config.asgi)."""

from django.urls import path

from monitoring.consumers import DashboardConsumer, EventsConsumer

websocket_urlpatterns = [
    path("ws/events/", EventsConsumer.as_asgi()),
    path("ws/dashboard/", DashboardConsumer.as_asgi()),
]
