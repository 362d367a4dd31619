"""URL routing: the operator console under /admin/, the ledger API under /api/v1/, the ops API
under /api/ops/, the public pages at the root, everything else owned by the ledger app."""

from django.contrib import admin
from django.urls import include, path

from config.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("api/ops/", include("ops.urls")),
    path("", include("public.urls")),
    path("", include("ledger.urls")),
]
