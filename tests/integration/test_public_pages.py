"""Public pages: landing, skill.md, robots.txt, sitemap.xml, security.txt, /docs (offline)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

pytestmark = pytest.mark.django_db

BASE = "http://testserver"


def fetch(path: str):
    response = Client().get(path)
    assert response.status_code == 200, path
    return response


def test_landing_page_links_the_docs_and_the_guide() -> None:
    page = fetch("/")
    assert page["Content-Type"].startswith("text/html")
    for link in ('href="/docs"', 'href="/skill.md"', 'href="/api/v1/openapi.json"'):
        assert link.encode() in page.content


def test_skill_md_is_markdown_with_this_servers_url() -> None:
    guide = fetch("/skill.md")
    assert guide["Content-Type"].startswith("text/markdown")
    text = guide.content.decode()
    assert f'export LEDGERFS_URL="{BASE}"' in text
    assert text.count("```bash") >= 8 and "{%" not in text and "{{" not in text


def test_robots_txt_points_at_the_sitemap() -> None:
    text = fetch("/robots.txt").content.decode()
    assert "User-agent: *" in text and "Disallow: /admin/" in text
    assert f"Sitemap: {BASE}/sitemap.xml" in text


def test_sitemap_lists_the_public_pages() -> None:
    root = ElementTree.fromstring(fetch("/sitemap.xml").content)
    namespace = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    locations = [loc.text for loc in root.findall("s:url/s:loc", namespace)]
    assert locations == [f"{BASE}/", f"{BASE}/docs", f"{BASE}/skill.md"]


def test_security_txt_has_the_rfc_9116_fields() -> None:
    response = fetch("/.well-known/security.txt")
    assert response["Content-Type"].startswith("text/plain")
    fields = dict(line.split(": ", 1) for line in response.content.decode().splitlines() if line)
    assert fields["Contact"].startswith(("mailto:", "https://"))
    expires = datetime.strptime(fields["Expires"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    now = datetime.now(UTC)
    assert now < expires < now + timedelta(days=365)
    assert fields["Canonical"] == f"{BASE}/.well-known/security.txt"


def test_docs_work_without_the_internet() -> None:
    page = fetch("/docs").content.decode()
    assert "swagger-ui-bundle.js" in page and "/api/v1/openapi.json" in page
    assert not re.search(r'(src|href)="(https?:)?//', page), "the docs page loads from a CDN"
    assert '"validatorUrl": null' in page
    for asset in re.findall(r'(?:src|href)="/static/([^"]+)"', page):
        assert finders.find(asset), asset


def test_openapi_schema_is_served() -> None:
    schema = fetch("/api/v1/openapi.json").json()
    assert schema["info"]["title"] == "LedgerFS API"
    assert {"/api/v1/transfers", "/api/v1/balances", "/api/v1/accounts"} <= set(schema["paths"])
