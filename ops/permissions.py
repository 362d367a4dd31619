"""Object permissions for the ops API: django-guardian behind DRF.

`ViewObjectPermissions` is DRF's `DjangoObjectPermissions` with `view_*` required for reads;
list reads are allowed to any authenticated user because `ObjectPermissionsFilter` narrows the
queryset to the objects the user may view (model-level permission: all of them). A user
asking for an object outside their set gets 404, as if it did not exist.
"""

from guardian.shortcuts import get_objects_for_user
from rest_framework import permissions
from rest_framework.filters import BaseFilterBackend

VIEW = "%(app_label)s.view_%(model_name)s"


class ViewObjectPermissions(permissions.DjangoObjectPermissions):
    perms_map = {
        **permissions.DjangoObjectPermissions.perms_map,
        "GET": [VIEW], "OPTIONS": [VIEW], "HEAD": [VIEW],
    }

    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated)
        return super().has_permission(request, view)


class ModelPermissionsWithView(permissions.DjangoModelPermissions):
    """Model-level permissions, reads included (for resources without per-object grants)."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": [VIEW], "OPTIONS": [VIEW], "HEAD": [VIEW],
    }


class ObjectPermissionsFilter(BaseFilterBackend):
    """Only the objects the user may view (the `view_*` permission, global or per object)."""

    def filter_queryset(self, request, queryset, view):
        if not request.user.is_authenticated:
            return queryset.none()
        meta = queryset.model._meta
        permission = VIEW % {"app_label": meta.app_label, "model_name": meta.model_name}
        return get_objects_for_user(request.user, permission, queryset,
                                    accept_global_perms=True)
