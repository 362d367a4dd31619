"""Public pages: landing page, integration guide (skill.md), robots.txt, sitemap.xml,
security.txt (RFC 9116) and the interactive API docs. No authentication, no database."""
