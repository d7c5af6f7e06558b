"""The reliability suite: its marker, its two profiles (quick by default, release on demand) and shared fixtures.

Pick the profile with ``--reliability-profile quick|release`` or ``RELIABILITY_PROFILE=release``. The option works
when pytest loads this conftest at start-up (``pytest tests/reliability ...``); a bare ``pytest`` loads it later, so
CI sets the environment variable instead (or tests/conftest.py declares the option; see docs/reliability.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

from tests.reliability import tally

PROFILES = ("quick", "release")
_OPTION = "--reliability-profile"


@dataclass(frozen=True)
class Profile:
    """How hard the suite pushes: example counts and turn counts; only `release` asserts resource thresholds."""

    name: str
    fuzz_examples: int
    frame_examples: int
    soak_turns: int
    soak_asserts_rss: bool


_PROFILES = {
    "quick": Profile("quick", fuzz_examples=200, frame_examples=500, soak_turns=100, soak_asserts_rss=False),
    "release": Profile("release", fuzz_examples=1500, frame_examples=1500, soak_turns=1000, soak_asserts_rss=True),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    try:
        parser.addoption(_OPTION, choices=PROFILES, default=None, help="reliability suite profile (default: quick)")
    except ValueError:
        pass  # already declared by a conftest higher up


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "reliability: fuzzing, crash, fault, load and leak tests (tests/reliability)")
    tally.reset(selected_profile(config))


def selected_profile(config: pytest.Config) -> str:
    try:
        chosen = config.getoption(_OPTION)
    except ValueError:
        chosen = None
    name = chosen or os.environ.get("RELIABILITY_PROFILE") or "quick"
    if name not in PROFILES:
        raise pytest.UsageError(f"reliability profile must be one of {PROFILES}, not {name!r}")
    return name


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.reliability)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if tally.any_recorded():
        terminalreporter.write_sep("-", f"reliability ({tally.profile_name()} profile)")
        for line in tally.summary_lines():
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def profile(pytestconfig: pytest.Config) -> Profile:
    return _PROFILES[selected_profile(pytestconfig)]


def hypothesis_settings(profile: Profile, examples: int) -> settings:
    """Bounded, no deadline (a subprocess round trip is slow); quick is derandomised so CI is repeatable."""
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=profile.name == "quick",
        suppress_health_check=list(HealthCheck),
        print_blob=True,
        # quick: no shrinking, so a failure costs CI seconds, not minutes; release shrinks to a minimal case.
        phases=[Phase.explicit, Phase.generate] if profile.name == "quick" else list(Phase),
    )
