"""The Node client's generated files (clients/node/src/types.d.ts, methods.js) are in step with schema/.

A schema change that forgets `npm run generate` in clients/node fails here too, not only in the Node suite.
Skipped when `node` is not on PATH.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "clients" / "node"
NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not on PATH")
def test_node_client_types_are_fresh() -> None:
    assert NODE is not None
    done = subprocess.run(
        [NODE, "scripts/generate-types.mjs", "--check"],
        cwd=PACKAGE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr + "\nrun `npm run generate` in clients/node and commit the result"
