from django.urls import include, path
from rest_framework.routers import DefaultRouter

from aml import api as aml_api
from ops import views
from webhooks import api as webhooks_api

router = DefaultRouter()
router.register("accounts", views.AccountViewSet, basename="ops-account")
router.register("clients", views.ApiClientViewSet, basename="ops-client")
router.register("keys", views.ApiKeyViewSet, basename="ops-key")
router.register("documents", views.DocumentViewSet, basename="ops-document")
router.register("webhooks", webhooks_api.SubscriptionViewSet, basename="ops-webhook")
router.register("webhook-deliveries", webhooks_api.DeliveryViewSet,
                basename="ops-webhook-delivery")
router.register("aml-alerts", aml_api.AlertViewSet, basename="ops-aml-alert")
router.register("aml-checks", aml_api.AmlCheckViewSet, basename="ops-aml-check")

urlpatterns = [
    *router.urls,
    # Log in and out links of the browsable API (session authentication).
    path("auth/", include("rest_framework.urls")),
]
