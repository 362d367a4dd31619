"""API access: API clients and their keys, how requests authenticate with them, and the one
error shape every API answers with.

Other apps import from here: `apiaccess.auth` (ninja: `require_scope`), `apiaccess.drf` (DRF
authentication), `apiaccess.errors` (`ApiError`).
"""
