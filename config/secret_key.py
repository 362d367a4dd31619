"""Secret key kept in the data directory when DJANGO_SECRET_KEY is not set.

The key is written to a private temporary file and hard-linked into place, so the file is never
seen half-written and concurrent first start-ups agree on one key; sessions survive restarts.
"""

import contextlib
import os
import tempfile
from pathlib import Path

from django.core.management.utils import get_random_secret_key


def secret_key_load_or_create(path: Path) -> str:
    if not path.exists():
        descriptor, temporary_name = tempfile.mkstemp(dir=path.parent, prefix=".secret_key.")
        try:
            with os.fdopen(descriptor, "w", encoding="ascii") as file:
                file.write(get_random_secret_key() + "\n")
                file.flush()
                os.fsync(file.fileno())
            # If another process won the race, its key stands and ours is discarded.
            with contextlib.suppress(FileExistsError):
                os.link(temporary_name, path)
        finally:
            os.unlink(temporary_name)
    key = path.read_text(encoding="ascii").strip()
    if not key:
        raise RuntimeError(f"Secret key file {path} is empty; delete it to generate a new key.")
    return key
