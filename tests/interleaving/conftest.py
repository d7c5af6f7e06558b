"""The interleaving suite: its two hypothesis profiles, its counts, and the marker.

`INTERLEAVING_PROFILE=quick` (default; CI: the whole folder well under 3 minutes on two shared cores) or
`INTERLEAVING_PROFILE=release` (at least 10,000 state-machine steps). quick is derandomised, so CI runs the same
sequences every time; release draws a fresh seed, printed in the summary (set `INTERLEAVING_SEED=<n>` to replay it).
Every promise is strict. `INTERLEAVING_TOLERATE=1` counts the breaches of the known classes in
trace.KNOWN_ENGINE_BUGS in the summary instead of failing (to look past one while a fix is under way).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

from tests.interleaving import counts
from tests.interleaving.trace import KNOWN_ENGINE_BUGS

PROFILE_ENV, SEED_ENV, TOLERATE_ENV = "INTERLEAVING_PROFILE", "INTERLEAVING_SEED", "INTERLEAVING_TOLERATE"
PROFILES = ("quick", "release")

_COMMON = {
    "deadline": None,  # every step talks to a subprocess
    "database": None,  # an interleaving depends on timing: replaying a saved example proves little
    "suppress_health_check": list(HealthCheck),
    # No shrinking: a subprocess run is not deterministic enough to shrink, and each replay costs seconds. A failure
    # prints the machine's own step log and the frames around the broken promise instead.
    "phases": [Phase.explicit, Phase.generate],
}
# 36 steps, not 40: an auto run lasts a few speakers, so steps take longer on average; CI time stays where it was.
settings.register_profile("interleaving-quick", max_examples=8, stateful_step_count=36, derandomize=True, **_COMMON)
settings.register_profile("interleaving-release", max_examples=200, stateful_step_count=60, **_COMMON)


def profile_name() -> str:
    name = os.environ.get(PROFILE_ENV, "quick")
    if name not in PROFILES:
        raise pytest.UsageError(f"{PROFILE_ENV} must be one of {PROFILES}, not {name!r}")
    return name


def profile_settings() -> settings:
    return settings.get_profile(f"interleaving-{profile_name()}")


def profile_seed() -> int | None:
    """The release profile's seed (None for the derandomised quick profile)."""
    if profile_name() == "quick":
        return None
    return int(os.environ.get(SEED_ENV) or random.SystemRandom().randrange(2**32))


def tolerated_bugs() -> frozenset[str]:
    """The known breach classes (trace.KNOWN_ENGINE_BUGS) counted instead of failed: none, unless
    `INTERLEAVING_TOLERATE=1`."""
    return frozenset(KNOWN_ENGINE_BUGS) if os.environ.get(TOLERATE_ENV) == "1" else frozenset()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.interleaving)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if counts.any_recorded():
        terminalreporter.write_sep("-", f"interleaving ({profile_name()} profile)")
        for line in counts.summary_lines():
            terminalreporter.write_line(line)
