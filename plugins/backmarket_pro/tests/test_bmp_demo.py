"""``cartplugin backmarket-pro demo`` (what ``make demo`` runs) walks the setup to its real outcome."""

from __future__ import annotations

import re
import subprocess
import sys


def test_the_demo_imports_the_orders_and_the_channel_accepts_both_trackings() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "host", "backmarket-pro", "demo", "--orders", "12"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    imported = re.search(r"^(\d+) orders imported$", out, re.MULTILINE)
    assert imported and int(imported.group(1)) > 0, out
    assert re.search(rf"^  orders imported:\s+{imported.group(1)}$", out, re.MULTILINE), out
    # counted on the sandbox's side: the shipments the channel itself recorded
    assert re.search(r"^  tracking accepted by channel:\s+2 of 2$", out, re.MULTILINE), out
    assert re.search(r"^  Source Updated for Shipping:\s+2$", out, re.MULTILINE), out
    assert "sandbox-key" not in out  # the x-api-key is given from a file and shown masked


def test_the_host_has_no_demo_command_of_its_own() -> None:
    result = subprocess.run([sys.executable, "-m", "host", "demo"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "No such command" in result.stderr
