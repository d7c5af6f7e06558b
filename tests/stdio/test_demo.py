"""`chat-sidecar demo`, the README's run command, works offline from a clean environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.sidecar_client import clean_env


def test_the_demo_runs_two_parallel_turns_offline_and_exits_0(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sidecar", "--data-dir", str(tmp_path), "demo"],
        capture_output=True, text=True, timeout=120, env=clean_env(),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert out.count("3/3 agents answered") == 2
    for name in ("Ada", "Blaise", "Cleo"):
        assert f"{name} (complete):" in out
    # The second turn quotes another agent: each agent sees the others' replies by name.
    second_turn = out.split("Reply to one another")[1]
    assert any(f"{name}: {name} here" in second_turn for name in ("Ada", "Blaise", "Cleo"))
