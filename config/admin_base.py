"""Admin building blocks shared by the apps of the operator console."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """For models copied from a log (the event log, the seal stores): shown, never edited."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
