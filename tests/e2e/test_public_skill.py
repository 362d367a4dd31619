"""The integration guide's examples work: every ```bash block of the served /skill.md runs, in
order, in one bash shell against a live server, with a fresh API key in place of the
placeholder. A failing curl (HTTP error) or jq check fails the test."""

from __future__ import annotations

import re
import shutil
import subprocess

import httpx
import pytest

from tests.support.servers import LiveServer

KEY_PLACEHOLDER = "YOUR_API_KEY"


@pytest.fixture(scope="module")
def server(api_server: LiveServer) -> LiveServer:
    """Embedded, then distributed (conftest.py)."""
    return api_server


def test_the_guides_examples_run_against_a_live_server(server: LiveServer) -> None:
    for tool in ("bash", "curl", "jq"):
        assert shutil.which(tool), f"{tool} is needed (requirements-apt.txt)"
    guide = httpx.get(f"{server.url}/skill.md").text
    blocks = re.findall(r"^```bash\n(.*?)^```", guide, flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) >= 8
    assert f'export LEDGERFS_URL="{server.url}"' in blocks[0]
    assert KEY_PLACEHOLDER in blocks[0]
    key = server.api_key("guide-reader", "read,write,admin")
    script = "set -euo pipefail\n" + "\n".join(blocks).replace(KEY_PLACEHOLDER, key)
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert '"captured":1800' in done.stdout.replace(" ", "")
    assert '["linked_command_failed","insufficient_funds"]' in done.stdout
    assert done.stdout.rstrip().endswith("401")
