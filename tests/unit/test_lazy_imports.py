"""What the start-up path imports: everything `serve` needs before it can answer `initialize`, and no more.

The chat engine (and the provider SDKs behind it), peewee with the models and repositories, and platformdirs
cost ~90 ms together at start-up; they are imported on first use, or by the database opener's worker thread
after the transport is up. The modules added for contract v2 (`V2_MODULES`) are held to the same rule, and none
of them pulls in a provider SDK by being imported. Checked in a fresh interpreter, since this test process has
imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sidecar.lifecycle import Lifecycle
from sidecar.secrets import SecretStore
from sidecar.services import Services
from sidecar.settings import Settings
from storage.ids import IdFactory
from storage.setup import open_database

# What `chat-sidecar` imports before `anyio.run(serve, ...)` (sidecar.cli.serve_stdio).
START_UP_IMPORTS = [
    "sidecar.cli",
    "sidecar.transport.stdio",
    "sidecar.app",
    "sidecar.warmup",
    "sidecar.logs",
    "storage.migrations",
]
# Added for contract v2. The data API's arrive with the data modules (imported by the database opener's thread
# after `initialize`); the engine's with the chat engine. `storage.errors` (the error table) and
# `sidecar.providers.names` (the names in `initialize`) are start-up imports on purpose, and stdlib-only.
V2_DATA_API_MODULES = [
    "sidecar.catalogue",
    "sidecar.model_listing",
    "sidecar.methods.models",
    "sidecar.methods.conversation_files",
    "sidecar.conversation_export",
    "sidecar.conversation_import",
    "sidecar.chat.cost",
    "sidecar.chat.tokens",
    "storage.repositories.usage",
    "storage.repositories.search",
    "storage.repositories.transfer",
    "sidecar.providers.spec",
]
V2_ENGINE_MODULES = [
    "sidecar.chat.agent_call",
    "sidecar.chat.auto",
    "sidecar.chat.budget",
    "sidecar.chat.call_plans",
    "sidecar.chat.context_usage",
    "sidecar.chat.history",
    "sidecar.chat.provider_pool",
    "sidecar.chat.pump",
    "sidecar.chat.runs",
    "sidecar.chat.settle",
    "sidecar.chat.speakers",
    "storage.repositories.history_reads",
]
V2_MODULES = V2_DATA_API_MODULES + V2_ENGINE_MODULES
PROVIDER_SDKS = ["openai", "anthropic", "keyring"]
LOADED_ON_FIRST_USE = [
    *V2_MODULES,
    "sidecar.chat.orchestrator",
    "sidecar.providers.factory",
    "sidecar.providers.registry",
    "openai",
    "anthropic",
    "keyring",
    "peewee",
    "storage.models",
    "storage.repositories.turns",
    "sidecar.methods.llm_configs",
    "platformdirs",
    "loguru",  # loaded by the warm-up (sidecar.logs keeps what is logged before)
]


def _loaded_after(script: str) -> set[str]:
    probe = f"{script}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_the_start_up_path_leaves_the_engine_storage_and_sdks_unloaded() -> None:
    loaded = _loaded_after("\n".join(f"import {name}" for name in START_UP_IMPORTS))
    assert sorted(loaded & set(LOADED_ON_FIRST_USE)) == []


@pytest.mark.parametrize(
    ("first_use", "now_loaded"),
    [
        ("from sidecar.methods.table import METHODS", []),
        ("from storage.setup import prepare_sqlite",
         ["peewee", "storage.models", "storage.repositories.turns", "storage.repositories.history_reads"]),
        ("from sidecar.settings import default_data_dir; default_data_dir()", ["platformdirs"]),
        # What the database opener's thread imports once `initialize` is answered: the data API, no engine, no SDK.
        (
            "from importlib import import_module\nfrom sidecar.methods.table_data import DATA_MODULES\n"
            "for module in DATA_MODULES: import_module(module)",
            [*V2_DATA_API_MODULES, "peewee", "storage.models", "sidecar.methods.llm_configs",
             "sidecar.providers.factory", "sidecar.providers.registry"],
        ),
        # The chat engine (loaded by the first chat call, or the warm-up): the v2 engine modules, still no SDK.
        (
            "import sidecar.chat.orchestrator",
            [*V2_ENGINE_MODULES, "sidecar.catalogue", "sidecar.chat.cost", "sidecar.chat.tokens",
             "sidecar.providers.spec", "sidecar.chat.orchestrator", "sidecar.providers.factory",
             "sidecar.providers.registry", "peewee", "storage.models", "storage.repositories.turns"],
        ),
    ],
)
def test_each_deferred_module_arrives_with_its_first_use(first_use: str, now_loaded: list[str]) -> None:
    loaded = _loaded_after("\n".join(f"import {name}" for name in START_UP_IMPORTS) + "\n" + first_use)
    assert sorted(loaded & set(LOADED_ON_FIRST_USE)) == sorted(now_loaded)


SDKS_EACH_IMPORT_ADDS = """
import importlib, json, sys
report = {}
for name in MODULES:
    importlib.import_module(name)
    report[name] = sorted(sdk for sdk in SDKS if sdk in sys.modules)
print(json.dumps(report))
"""


def test_no_v2_module_pulls_in_a_provider_sdk_when_imported() -> None:
    """Each imported in turn in one fresh interpreter: the first that brought an SDK along would be named."""
    script = f"MODULES = {V2_MODULES!r}\nSDKS = {PROVIDER_SDKS!r}\n{SDKS_EACH_IMPORT_ADDS}"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {name: [] for name in V2_MODULES}


ENGINE_ON_FIRST_CHAT_CALL = """
import sys
import anyio
from storage.errors import RowNotFound
from sidecar.lifecycle import Lifecycle
from sidecar.methods.table import METHODS
from sidecar.secrets import SecretStore
from sidecar.services import Services
from sidecar.settings import Settings
from storage.ids import IdFactory
from storage.setup import open_database

async def main():
    ids = IdFactory()
    settings = Settings(data_dir=DATA_DIR)
    lifecycle = Lifecycle(settings, "memory", spawn=lambda *args: None)
    services = Services(settings, open_database(DATA_DIR, ids), ids, SecretStore("memory"),
                        emit=None, lifecycle=lifecycle)
    seen = []
    await METHODS["llmConfigs:list"](services, {})
    seen.append("sidecar.chat.orchestrator" in sys.modules)
    assert (await METHODS["chat:cancel"](services, {"conversationId": "c"})) == {"cancelled": 0}
    seen.append("sidecar.chat.orchestrator" in sys.modules)
    try:
        await METHODS["buildAgentContext"](services, {"conversationId": "c", "agentId": "a"})
    except RowNotFound:
        pass
    seen.append("sidecar.chat.orchestrator" in sys.modules and services.chat is not None)
    print(seen)

anyio.run(main)
"""


def test_the_chat_engine_is_imported_by_the_first_chat_call_that_needs_it(tmp_path: Path) -> None:
    script = f"from pathlib import Path\nDATA_DIR = Path({str(tmp_path)!r})\n{ENGINE_ON_FIRST_CHAT_CALL}"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    # after a data call: not loaded; after chat:cancel with nothing running: not loaded; after buildAgentContext: loaded
    assert done.stdout.strip() == "[False, False, True]"


WARM_UP_AFTER_THE_OPEN = """
import sys
import anyio
from sidecar.lifecycle import Lifecycle
from sidecar.secrets import SecretStore
from sidecar.services import Services
from sidecar.settings import Settings
from sidecar.warmup import warm_up
from storage.ids import IdFactory
from storage.repositories.llm_configs import create_llm_config
from storage.setup import open_database

async def main():
    ids = IdFactory()
    settings = Settings(data_dir=DATA_DIR)
    database = open_database(DATA_DIR, ids)
    for n, provider in enumerate(PROVIDERS):
        database.run_sync(create_llm_config, ids, {"customName": f"c{n}", "provider": provider})
    lifecycle = Lifecycle(settings, "memory", spawn=lambda *args: None)
    await warm_up(Services(settings, database, ids, SecretStore("memory"), emit=None, lifecycle=lifecycle))
    watched = ("sidecar.chat.orchestrator", "openai", "anthropic", "loguru")
    print(sorted(name for name in watched if name in sys.modules))

anyio.run(main)
"""


@pytest.mark.parametrize(
    ("stored_providers", "loaded"),
    [
        ([], ["loguru", "sidecar.chat.orchestrator"]),  # only the seeded demo config: no SDK
        (["openai"], ["loguru", "openai", "sidecar.chat.orchestrator"]),
        (["anthropic", "demo"], ["anthropic", "loguru", "sidecar.chat.orchestrator"]),
        (["openai", "anthropic"], ["anthropic", "loguru", "openai", "sidecar.chat.orchestrator"]),
    ],
)
def test_the_warm_up_loads_loguru_the_engine_and_only_the_sdks_stored_configs_use(
    tmp_path: Path, stored_providers: list[str], loaded: list[str]
) -> None:
    script = f"from pathlib import Path\nDATA_DIR = Path({str(tmp_path)!r})\nPROVIDERS = {stored_providers!r}\n"
    done = subprocess.run([sys.executable, "-c", script + WARM_UP_AFTER_THE_OPEN], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr(loaded)


@pytest.mark.anyio
async def test_a_chat_engine_that_finishes_loading_after_shutdown_claims_its_turn_cancelled(tmp_path: Path) -> None:
    """`shutdown` during the engine's first import had nothing to cancel: the turn that loaded it still answers,
    its agent claimed already cancelled (`thinking`, then `cancelled`), and no provider is ever called."""
    ids = IdFactory()
    settings = Settings(data_dir=tmp_path)
    lifecycle = Lifecycle(settings, "memory", spawn=lambda *args: None)
    database = open_database(tmp_path, ids)
    conversation_id = database.run_sync(_room_with_one_demo_agent, ids)
    sent: list[tuple[str, dict[str, Any]]] = []

    async def emit(method: str, params: dict[str, Any]) -> None:
        sent.append((method, params))

    services = Services(settings, database, ids, SecretStore("memory"), emit=emit, lifecycle=lifecycle)
    await lifecycle.shutdown(own_request=False)
    engine = await services.chat_engine()
    result = await engine.process_user_message(conversation_id, None, "Still there?")
    assert (result["totalAgents"], result["cancelledAgents"]) == (1, 1)
    assert [(m, p.get("status")) for m, p in sent] == [
        ("agent:update", "thinking"),
        ("agent:update", "cancelled"),
        ("all:complete", None),
    ]
    database.close()


def _room_with_one_demo_agent(ids: IdFactory) -> str:
    from storage.repositories import agents, conversation_agents, conversations, llm_configs, personalities, roles

    config = next(c for c in llm_configs.list_llm_configs() if c["provider"] == "demo")
    agent = agents.create_agent(
        ids,
        {
            "name": "Ada",
            "llmConfigId": config["id"],
            "model": "demo-slow",
            "roleId": roles.list_roles()[0]["id"],
            "personalityId": personalities.list_personalities()[0]["id"],
        },
    )
    conversation = conversations.create_conversation(ids, {})
    conversation_agents.add_conversation_agent(ids, {"conversationId": conversation["id"], "agentId": agent["id"]})
    return conversation["id"]
