"""The Node client's generated files (clients/node/src/generated/, the generated block of src/preload.cjs) are in
step with schema/.

A schema change that forgets `npm run generate` in clients/node fails here too, not only in the Node suite. The
generator needs its node_modules (json-schema-to-typescript) to regenerate; before `npm ci` has run (CI runs this
suite first) it compares the schema digest each generated file records instead (`--check-inputs`). Skipped when
`node` is not on PATH.
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
    installed = (PACKAGE_DIR / "node_modules" / "json-schema-to-typescript" / "package.json").is_file()
    done = subprocess.run(
        [NODE, "scripts/generate-types.mjs", "--check" if installed else "--check-inputs"],
        cwd=PACKAGE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr + "\nrun `npm run generate` in clients/node and commit the result"
