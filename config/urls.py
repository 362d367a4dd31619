"""URL routing: the operator console under /admin/, everything else owned by the ledger app."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("ledger.urls")),
]
