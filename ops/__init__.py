"""The ops API (Django REST framework, browsable, at /api/ops/): API clients and keys, KYC/AML
documents, and read-only accounts, all behind django-guardian object permissions."""
