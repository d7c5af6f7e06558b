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
    # The demo quotes the last *user* message, never another agent's reply (CONTRACT §7).
    second_turn = out.split("You: Reply to one another")[1]
    assert second_turn.count('You said: "Reply to one another') == 3


def test_the_auto_mode_demo_converses_until_every_agent_skips_and_exits_0(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sidecar", "--data-dir", str(tmp_path), "demo", "--mode", "auto"],
        capture_output=True, text=True, timeout=120, env=clean_env(),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "[auto mode running]" in out and "[auto mode stopped: all_skipped]" in out
    assert out.count("(skips their turn)") == 3  # each speaks twice, then all three skip one round
    assert "6 replies in 3 rounds; stopped: all_skipped" in out
