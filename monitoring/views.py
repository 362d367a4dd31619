"""The compliance dashboard (`/dashboard/`, staff login): the page and its initial state.
Live updates come over `/ws/events/` and `/ws/dashboard/` (static/dashboard/dashboard.js)."""

from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import render

from monitoring.selectors import dashboard_state


@staff_member_required(login_url="dashboard-login")
def dashboard(request):
    alerts_allowed = request.user.has_perm("aml.view_alert")
    return render(request, "dashboard/index.html", {
        "state": dashboard_state(alerts=alerts_allowed),
        "alerts_allowed": alerts_allowed,
    })
