"""Ops API viewsets. Account and document reads are filtered by guardian object permissions;
API clients and keys need the model permissions of the apiaccess app (operators)."""

from django.db.models import Q
from django.http import FileResponse
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from apiaccess.keys import api_key_revoke
from apiaccess.models import ApiClient, ApiKey
from ledger.models import Account
from ledger.permissions import accounts_view_all, accounts_visible
from ops.models import Document
from ops.permissions import ModelPermissionsWithView, ObjectPermissionsFilter, ViewObjectPermissions
from ops.serializers import (
    AccountSerializer,
    ApiClientSerializer,
    ApiKeySerializer,
    DocumentSerializer,
)


class AccountViewSet(viewsets.ReadOnlyModelViewSet):
    """Accounts (the projected read model) the user may view."""

    queryset = Account.objects.select_related("ledger")
    serializer_class = AccountSerializer
    permission_classes = [ViewObjectPermissions]
    filter_backends = [ObjectPermissionsFilter]


class ApiClientViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    queryset = ApiClient.objects.select_related("user")
    serializer_class = ApiClientSerializer
    permission_classes = [ModelPermissionsWithView]


class ApiKeyViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """API keys: create one (the response shows it once), revoke it; never edit or delete."""

    queryset = ApiKey.objects.select_related("client")
    serializer_class = ApiKeySerializer
    permission_classes = [ModelPermissionsWithView]

    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        if not request.user.has_perm("apiaccess.change_apikey"):
            self.permission_denied(request, "revoking keys needs apiaccess.change_apikey")
        key = self.get_object()
        api_key_revoke(key=key)
        return Response(self.get_serializer(key).data)


class DocumentViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """KYC/AML documents, visible with the account they are attached to."""

    serializer_class = DocumentSerializer
    permission_classes = [ModelPermissionsWithView]
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self):
        documents = Document.objects.select_related("uploaded_by")
        user = self.request.user
        if accounts_view_all(user):
            return documents
        return documents.filter(Q(account__in=accounts_visible(user)))

    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        document = self.get_object()
        return FileResponse(document.file.open("rb"), as_attachment=True,
                            filename=document.filename)
