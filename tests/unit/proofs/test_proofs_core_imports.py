"""`proofs.core` imports only the standard library and `cryptography` (never Django)."""

import subprocess
import sys
from pathlib import Path

import proofs.core

CORE_DIR = Path(proofs.core.__file__).parent
REPO_ROOT = CORE_DIR.parent.parent
# cryptography registers its compiled bindings as the top-level modules _openssl and
# _cffi_backend (from cffi).
ALLOWED_NON_STDLIB = {"proofs", "cryptography", "_openssl", "_cffi_backend", "cffi"}

PROBE = """
import sys
before = set(sys.modules)
import {modules}
print("\\n".join(sorted({{name.split(".")[0] for name in set(sys.modules) - before}})))
"""


def test_core_modules_import_nothing_but_stdlib_and_cryptography():
    modules = sorted(f"proofs.core.{path.stem}" for path in CORE_DIR.glob("*.py"))
    # A fresh interpreter: this test process has Django loaded by the suite's conftest.
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(modules=", ".join(modules))],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    imported = set(result.stdout.split())
    third_party = imported - set(sys.stdlib_module_names) - ALLOWED_NON_STDLIB
    assert not third_party, f"proofs.core pulled in {sorted(third_party)}"
    assert "django" not in imported and "cryptography" in imported
