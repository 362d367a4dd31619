"""URL routing: the operator console under /admin/, the ledger API under /api/v1/, the ops API
under /api/ops/, the compliance dashboard under /dashboard/, the public pages at the root,
everything else owned by the ledger app. WebSockets are routed in config.asgi."""

from django.contrib import admin
from django.urls import include, path

from config.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("api/ops/", include("ops.urls")),
    path("dashboard/", include("monitoring.urls")),
    path("", include("public.urls")),
    path("", include("ledger.urls")),
]
