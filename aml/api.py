"""Ops API (DRF) for AML: `/api/ops/aml-alerts/` (list, detail, and `POST .../{id}/status/`
with `{"status"?, "note"?}` to work an alert) and `/api/ops/aml-checks/{event id}/` (the check
record of one transaction, visible with the accounts it touches)."""

from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response

from aml import services
from aml.models import Alert, AlertAction
from aml.selectors import aml_check_get
from ledger.permissions import account_view_allowed
from ops.permissions import ModelPermissionsWithView


class AlertActionSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", default=None, read_only=True)

    class Meta:
        model = AlertAction
        fields = ["created_at", "user", "from_status", "to_status", "note"]


class AlertSerializer(serializers.ModelSerializer):
    actions = AlertActionSerializer(many=True, read_only=True)

    class Meta:
        model = Alert
        fields = ["id", "ledger", "rule", "status", "account", "event_id", "seq", "amount",
                  "detail", "created_at", "updated_at", "actions"]


class AlertUpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Alert.Status.choices, required=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=10_000)


class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Filter with `?status=open|investigating|closed` and `?ledger=`."""

    serializer_class = AlertSerializer
    permission_classes = [ModelPermissionsWithView]
    queryset = Alert.objects.all()

    def get_queryset(self):
        alerts = Alert.objects.prefetch_related("actions__user")
        for name in ("status", "ledger", "rule"):
            value = self.request.query_params.get(name)
            if value:
                alerts = alerts.filter(**{name: value})
        return alerts

    @action(detail=True, methods=["post"], url_path="status")
    def update_status(self, request, pk=None):
        if not request.user.has_perm("aml.change_alert"):
            self.permission_denied(request, "changing alerts needs aml.change_alert")
        alert = self.get_object()
        change = AlertUpdateSerializer(data=request.data)
        change.is_valid(raise_exception=True)
        services.alert_update(alert_id=alert.pk, user=request.user, **change.validated_data)
        return Response(self.get_serializer(self.get_queryset().get(pk=alert.pk)).data)


class AmlCheckViewSet(viewsets.ViewSet):
    lookup_field = "event_id"
    lookup_value_regex = "[^/]+"

    def retrieve(self, request, event_id=None):
        check = aml_check_get(event_id=event_id)
        if check is None:
            raise NotFound(f"no AML check for event {event_id!r}")
        accounts = [a for a in (check["payer"], check["payee"]) if a]
        if not any(account_view_allowed(request.user, a) for a in accounts):
            raise PermissionDenied("you may not view the accounts of this transaction")
        return Response(check)
