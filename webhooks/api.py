"""Ops API (DRF) for webhooks: `/api/ops/webhooks/` (subscriptions) and
`/api/ops/webhook-deliveries/` (the delivery log, and `POST .../{id}/redeliver/`).

Operators only: the model permissions of the webhooks app. A subscription's secret is shown in
the response that created it (generated when not given) and never again.
"""

from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from ops.permissions import ModelPermissionsWithView
from webhooks import services
from webhooks.models import Attempt, Delivery, Subscription
from webhooks.targets import TargetRefused


class SubscriptionSerializer(serializers.ModelSerializer):
    secret = serializers.CharField(
        write_only=True, required=False, min_length=16, max_length=200,
        help_text="Generated when not given; returned once, in the create response.",
    )

    class Meta:
        model = Subscription
        fields = ["id", "name", "url", "event_types", "ledger", "active", "secret",
                  "created_at", "updated_at"]

    def validate(self, attrs):
        url = attrs.get("url", getattr(self.instance, "url", None))
        event_types = attrs.get("event_types", getattr(self.instance, "event_types", []))
        try:
            attrs["event_types"] = services.subscription_validate(url=url,
                                                                  event_types=event_types)
        except TargetRefused as exc:
            raise serializers.ValidationError({"url": str(exc)}, code=exc.code) from None
        except services.EventTypesInvalid as exc:
            raise serializers.ValidationError({"event_types": str(exc)}, code=exc.code) from None
        return attrs

    def create(self, validated_data):
        subscription = super().create(validated_data)
        subscription.shown_secret = subscription.secret
        return subscription

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if hasattr(instance, "shown_secret"):
            data["secret"] = instance.shown_secret
        return data


class SubscriptionViewSet(viewsets.ModelViewSet):
    queryset = Subscription.objects.all()
    serializer_class = SubscriptionSerializer
    permission_classes = [ModelPermissionsWithView]

    def perform_create(self, serializer):
        serializer.save(created_by=self.request.user)


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Attempt
        fields = ["number", "started_at", "duration_ms", "status_code", "error"]


class DeliverySerializer(serializers.ModelSerializer):
    log = AttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = ["id", "subscription", "event_type", "ledger", "seq", "event_id", "status",
                  "attempts", "next_attempt_at", "last_status_code", "last_error",
                  "created_at", "delivered_at", "log"]


class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                      viewsets.GenericViewSet):
    """Filter with `?subscription=<id>` and `?status=pending|delivered|failed`."""

    serializer_class = DeliverySerializer
    permission_classes = [ModelPermissionsWithView]
    queryset = Delivery.objects.all()

    def get_queryset(self):
        deliveries = Delivery.objects.prefetch_related("log")
        for name in ("subscription", "status"):
            value = self.request.query_params.get(name)
            if value:
                deliveries = deliveries.filter(**{name: value})
        return deliveries

    @action(detail=True, methods=["post"])
    def redeliver(self, request, pk=None):
        if not request.user.has_perm("webhooks.change_delivery"):
            self.permission_denied(request, "redelivery needs webhooks.change_delivery")
        delivery = services.delivery_redeliver(delivery=self.get_object())
        return Response(self.get_serializer(delivery).data)
