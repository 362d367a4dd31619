from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.urls import path

from monitoring import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    # Its own staff login (AdminAuthenticationForm refuses non-staff users), so the dashboard
    # does not depend on the admin's login page.
    path("login/", auth_views.LoginView.as_view(
        template_name="dashboard/login.html", authentication_form=AdminAuthenticationForm,
        next_page="dashboard"), name="dashboard-login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="dashboard-login"),
         name="dashboard-logout"),
]
