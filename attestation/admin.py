"""Operator console: blocks, checkpoints and digest deliveries, read-only."""

from django.contrib import admin

from attestation.models import Block, Checkpoint, DigestDelivery
from config.admin_base import ReadOnlyAdmin


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ("ledger", "height", "tree_size", "state_sum", "root_hash", "created_at")
    list_filter = ("ledger",)
    search_fields = ("root_hash", "state_root")
    fields = (
        "ledger", "height", "tree_size", "root_hash", "state_root", "state_sum", "public_key",
        "note", "created_at",
    )


@admin.register(Block)
class BlockAdmin(ReadOnlyAdmin):
    list_display = (
        "ledger", "height", "first_seq", "last_seq", "tree_size", "state_sum", "created_at",
    )
    list_filter = ("ledger",)
    search_fields = ("header_hash", "tree_root")


@admin.register(DigestDelivery)
class DigestDeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "ledger", "sink", "status", "delivered_height", "failures", "last_attempt_at",
        "delivered_at",
    )
    list_filter = ("status", "sink", "ledger")
