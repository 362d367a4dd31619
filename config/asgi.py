"""ASGI entry point, served by uvicorn: `uvicorn config.asgi:application`.

HTTP goes to Django, behind the fast lane for transfers and balance reads
(`ledger.api.fastlane`, unless `LEDGERFS_FAST_LANE=0`); WebSockets (`/ws/events/`,
`/ws/dashboard/`) to the Channels consumers of `monitoring`, behind the Origin check and
session or API-key authentication.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)

# Imported once Django is set up: the handler loads the middleware.
from config.asgi_http import SyncChainASGIHandler  # noqa: E402
from ledger.interpreter import tune_for_throughput  # noqa: E402
from ledger.runtime import open_followers  # noqa: E402

tune_for_throughput()
open_followers()

django_application = SyncChainASGIHandler()

from django.urls import get_resolver  # noqa: E402

# Django imports the URLconf (the API's routers, the admin) for the first request it handles:
# a quarter of a second on an idle machine, more under load, and every request of this process
# waited behind it (a worker whose first balance read came mid-run, `python -m bench
# http-distributed`). Done here, before the server accepts connections.
get_resolver().resolve("/")

from django.conf import settings  # noqa: E402

from ledger.api.fastlane import FastLane  # noqa: E402

http_application = (
    FastLane(django_application) if settings.LEDGERFS_FAST_LANE else django_application
)

# Imported once Django is set up (they import models).
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from monitoring.routing import websocket_urlpatterns  # noqa: E402
from monitoring.wsauth import ApiKeyAuthMiddleware, BrowserOriginValidator  # noqa: E402

application = ProtocolTypeRouter({
    "http": http_application,
    "websocket": BrowserOriginValidator(
        AuthMiddlewareStack(ApiKeyAuthMiddleware(URLRouter(websocket_urlpatterns)))
    ),
})
