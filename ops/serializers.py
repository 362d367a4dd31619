"""Serializers of the ops API. Keys are write-once: the raw key appears only in the response
that issued it. Documents are hashed as they are uploaded."""

import hashlib

from django.contrib.auth import get_user_model
from rest_framework import serializers

from apiaccess.keys import ApiKeyError, api_key_issue, scopes_parse
from apiaccess.models import ApiClient, ApiKey
from ledger.models import Account
from ledger.permissions import account_view_allowed, accounts_view_all
from ops.models import Document


class ApiClientSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(
        slug_field="username", queryset=get_user_model().objects.all(),
        help_text="The user the client acts as (its permissions apply).",
    )
    command_client = serializers.CharField(read_only=True)

    class Meta:
        model = ApiClient
        fields = ["id", "name", "user", "command_client", "created_at"]


class ApiKeySerializer(serializers.ModelSerializer):
    scopes = serializers.ListField(child=serializers.CharField(), allow_empty=False)
    key = serializers.CharField(read_only=True, help_text="Shown once, in the create response.")
    active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "client", "prefix", "scopes", "active", "created_at", "revoked_at",
                  "key"]
        read_only_fields = ["prefix", "created_at", "revoked_at"]

    def validate_scopes(self, value):
        try:
            return scopes_parse(value)
        except ApiKeyError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def create(self, validated_data):
        key, raw_key = api_key_issue(client=validated_data["client"],
                                     scopes=validated_data["scopes"])
        key.key = raw_key
        return key


class AccountSerializer(serializers.ModelSerializer):
    class Meta:
        model = Account
        fields = ["id", "ledger", "did", "kind", "status", "tags", "safeguarding", "available",
                  "held", "bonded", "fee", "promo", "opened_seq", "last_seq"]


class DocumentSerializer(serializers.ModelSerializer):
    account = serializers.PrimaryKeyRelatedField(
        queryset=Account.objects.all(), required=False, allow_null=True
    )
    uploaded_by = serializers.CharField(source="uploaded_by.username", read_only=True)

    class Meta:
        model = Document
        fields = ["id", "kind", "account", "event_id", "file", "filename", "size", "sha256",
                  "uploaded_by", "uploaded_at"]
        read_only_fields = ["filename", "size", "sha256", "uploaded_at"]

    def validate(self, attrs):
        user = self.context["request"].user
        account = attrs.get("account")
        if account is None and not attrs.get("event_id"):
            raise serializers.ValidationError("attach the document to an account or an event")
        if account is not None and not account_view_allowed(user, account.pk):
            raise serializers.ValidationError({"account": "you may not view this account"})
        if account is None and not accounts_view_all(user):
            raise serializers.ValidationError(
                {"account": "documents about a transaction alone need permission to view "
                            "every account; attach it to an account you may view"}
            )
        return attrs

    def create(self, validated_data):
        upload = validated_data["file"]
        digest = hashlib.sha256()
        for chunk in upload.chunks():
            digest.update(chunk)
        upload.seek(0)
        return Document.objects.create(
            **validated_data, filename=upload.name[:255], size=upload.size,
            sha256=digest.hexdigest(), uploaded_by=self.context["request"].user,
        )
