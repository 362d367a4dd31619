"""The public pages. URLs in them are absolute, built from the request's host, so the guide's
examples and the sitemap are right wherever the server runs."""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.http import require_safe

from config.api import api
from config.version import VERSION

SECURITY_TXT_VALIDITY = timedelta(days=180)
"""RFC 9116 asks for an Expires less than a year ahead; the file is generated, so it never
goes stale."""

SITEMAP_PATHS = ("/", "/docs", "/skill.md")


def _base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def _text(content: str, content_type: str) -> HttpResponse:
    return HttpResponse(content, content_type=f"{content_type}; charset=utf-8")


@require_safe
def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "public/landing.html", {"version": VERSION})


@require_safe
def skill_md(request: HttpRequest) -> HttpResponse:
    content = render_to_string("public/skill.md", {"base_url": _base_url(request)})
    return _text(content, "text/markdown")


@require_safe
def robots_txt(request: HttpRequest) -> HttpResponse:
    lines = [
        "User-agent: *", "Allow: /$", "Allow: /docs", "Allow: /skill.md",
        "Disallow: /admin/", "Disallow: /api/", "",
        f"Sitemap: {_base_url(request)}/sitemap.xml", "",
    ]
    return _text("\n".join(lines), "text/plain")


@require_safe
def sitemap_xml(request: HttpRequest) -> HttpResponse:
    base = _base_url(request)
    urls = "".join(f"<url><loc>{base}{path}</loc></url>" for path in SITEMAP_PATHS)
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>\n'
    )
    return _text(content, "application/xml")


@require_safe
def security_txt(request: HttpRequest) -> HttpResponse:
    expires = (datetime.now(UTC) + SECURITY_TXT_VALIDITY).replace(microsecond=0)
    base = _base_url(request)
    lines = [
        f"Contact: {settings.LEDGERFS_SECURITY_CONTACT}",
        f"Expires: {expires.isoformat().replace('+00:00', 'Z')}",
        "Preferred-Languages: en",
        f"Canonical: {base}/.well-known/security.txt",
        "",
    ]
    return _text("\n".join(lines), "text/plain")


@require_safe
def api_docs(request: HttpRequest) -> HttpResponse:
    """Swagger UI for the ledger API, from ninja's bundled files (no CDN)."""
    return api.docs.render_page(request, api)
