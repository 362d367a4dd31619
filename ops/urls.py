from django.urls import include, path
from rest_framework.routers import DefaultRouter

from ops import views

router = DefaultRouter()
router.register("accounts", views.AccountViewSet, basename="ops-account")
router.register("clients", views.ApiClientViewSet, basename="ops-client")
router.register("keys", views.ApiKeyViewSet, basename="ops-key")
router.register("documents", views.DocumentViewSet, basename="ops-document")

urlpatterns = [
    *router.urls,
    # Log in and out links of the browsable API (session authentication).
    path("auth/", include("rest_framework.urls")),
]
