from django.urls import path

from public import views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("skill.md", views.skill_md, name="skill-md"),
    path("robots.txt", views.robots_txt, name="robots-txt"),
    path("sitemap.xml", views.sitemap_xml, name="sitemap-xml"),
    path(".well-known/security.txt", views.security_txt, name="security-txt"),
    path("docs", views.api_docs, name="api-docs"),
]
