"""The data API handlers, called directly with real services: wire shapes, defaults, partial updates, errors."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.errors import Conflict, InvalidParams, NotFound, RuleViolation, from_storage_error
from sidecar.methods.table_data import DATA_METHODS
from sidecar.services import Services
from storage.errors import StorageError

pytestmark = pytest.mark.anyio

ISO_START = "2025-11-26T08:00:00.000Z"


async def call(services: Services, method: str, params: dict[str, Any] | None = None) -> Any:
    """The handler as dispatch runs it (after the schema check): storage's errors come out as the client sees them."""
    try:
        return await DATA_METHODS[method](services, params or {})
    except StorageError as exc:
        raise from_storage_error(exc) from exc


async def make_agent(services: Services, name: str = "Ada", **extra: Any) -> dict[str, Any]:
    return await call(
        services,
        "agents:create",
        {
            "name": name,
            "model": "demo",
            "llmConfigId": (await call(services, "llmConfigs:list"))[0]["id"],
            "roleId": (await call(services, "roles:list"))[0]["id"],
            "personalityId": (await call(services, "personalities:list"))[0]["id"],
            **extra,
        },
    )


def test_the_table_holds_every_data_method_of_the_contract() -> None:
    crud = {f"{ns}:{action}" for ns in ("llmConfigs", "roles", "personalities", "agents", "conversations")
            for action in ("list", "get", "create", "update", "delete")}  # fmt: skip
    extra = {
        "llmConfigs:setApiKey",
        "llmConfigs:test",
        "models:list",
        "conversationAgents:list",
        "conversationAgents:add",
        "conversationAgents:update",
        "conversationAgents:remove",
        "messages:list",
        "messages:create",
        "messages:updateInclusion",
        "messages:delete",
        "messages:update",
        "messages:versions",
        "messages:selectVersion",
        "messages:search",
        "conversations:export",
        "conversations:import",
        "conversations:usage",
        "conversations:contextUsage",
    }
    assert set(DATA_METHODS) == crud | extra


async def test_an_llm_config_is_created_with_defaults_and_never_shows_its_key(services: Services) -> None:
    row = await call(
        services, "llmConfigs:create", {"customName": "OpenAI", "provider": "openai", "apiKey": "sk-canary-1"}
    )
    assert row == {
        "id": row["id"],
        "customName": "OpenAI",
        "provider": "openai",
        "baseUrl": None,
        "useAuthHeader": True,
        "maxConcurrency": 8,
        "hasApiKey": True,
        "createdAt": ISO_START,
        "updatedAt": ISO_START,
    }
    assert await services.secrets.get(row["id"]) == "sk-canary-1"
    listed = await call(services, "llmConfigs:list")
    assert [(r["customName"], r["hasApiKey"]) for r in listed] == [("Demo (offline)", False), ("OpenAI", True)]
    assert "sk-canary-1" not in repr(listed)


async def test_llm_config_names_are_unique_after_trimming(services: Services) -> None:
    with pytest.raises(Conflict):
        await call(services, "llmConfigs:create", {"customName": "  Demo (offline) ", "provider": "demo"})
    other = await call(services, "llmConfigs:create", {"customName": "Other", "provider": "demo"})
    with pytest.raises(Conflict):
        await call(services, "llmConfigs:update", {"id": other["id"], "customName": "Demo (offline)"})
    with pytest.raises(RuleViolation):
        await call(services, "llmConfigs:update", {"id": other["id"], "customName": "   "})


async def test_an_llm_config_update_is_partial_bumps_updated_at_and_null_clears_the_base_url(
    services: Services, clock: Any
) -> None:
    row = await call(
        services, "llmConfigs:create", {"customName": "Local", "provider": "openai", "baseUrl": "http://x/v1"}
    )
    clock.advance(1500)
    updated = await call(services, "llmConfigs:update", {"id": row["id"], "useAuthHeader": False})
    assert (updated["baseUrl"], updated["useAuthHeader"], updated["customName"]) == ("http://x/v1", False, "Local")
    assert (updated["createdAt"], updated["updatedAt"]) == (ISO_START, "2025-11-26T08:00:01.500Z")
    cleared = await call(services, "llmConfigs:update", {"id": row["id"], "baseUrl": None})
    assert cleared["baseUrl"] is None
    assert await call(services, "llmConfigs:get", {"id": row["id"]}) == cleared


@pytest.mark.parametrize(
    ("given", "saved"),
    [
        ("https://api.anthropic.com/v1", "https://api.anthropic.com"),
        ("https://api.anthropic.com/v1/", "https://api.anthropic.com"),
        ("https://proxy.example/", "https://proxy.example"),
        ("https://proxy.example/anthropic", "https://proxy.example/anthropic"),
        ("   ", None),
    ],
)
async def test_an_anthropic_base_url_loses_a_trailing_v1_or_slash(
    services: Services, given: str, saved: str | None
) -> None:
    row = await call(services, "llmConfigs:create", {"customName": "Claude", "provider": "anthropic", "baseUrl": given})
    assert row["baseUrl"] == saved


async def test_an_openai_base_url_keeps_its_v1_until_the_provider_changes(services: Services) -> None:
    row = await call(
        services, "llmConfigs:create", {"customName": "Ollama", "provider": "openai", "baseUrl": "http://localhost:11434/v1"}
    )
    assert row["baseUrl"] == "http://localhost:11434/v1"
    switched = await call(services, "llmConfigs:update", {"id": row["id"], "provider": "anthropic"})
    assert switched["baseUrl"] == "http://localhost:11434"  # trimmed again when the provider changes


async def test_max_concurrency_is_8_unless_given_and_null_never_reaches_the_row(services: Services) -> None:
    row = await call(services, "llmConfigs:create", {"customName": "Busy key", "provider": "openai"})
    assert row["maxConcurrency"] == 8
    row = await call(services, "llmConfigs:update", {"id": row["id"], "maxConcurrency": 2})
    assert row["maxConcurrency"] == 2
    with pytest.raises(InvalidParams) as caught:  # the schema refuses null before a handler runs; storage too
        await call(services, "llmConfigs:update", {"id": row["id"], "maxConcurrency": None})
    assert caught.value.data == {"field": "maxConcurrency", "reason": "must not be null"}
    assert await call(services, "llmConfigs:get", {"id": row["id"]}) == row


async def test_set_api_key_and_removing_it_show_in_has_api_key(services: Services) -> None:
    demo = (await call(services, "llmConfigs:list"))[0]
    with_key = await call(
        services, "llmConfigs:setApiKey", {"id": demo["id"], "apiKey": "sk-canary-2", "persist": False}
    )
    assert with_key["hasApiKey"] is True and "apiKey" not in with_key
    without = await call(services, "llmConfigs:update", {"id": demo["id"], "apiKey": None})
    assert without["hasApiKey"] is False
    assert await services.secrets.get(demo["id"]) is None
    with pytest.raises(NotFound):
        await call(services, "llmConfigs:setApiKey", {"id": "missing", "apiKey": "sk-canary-3"})


async def test_deleting_an_llm_config_deletes_its_key(services: Services) -> None:
    row = await call(
        services, "llmConfigs:create", {"customName": "Gone", "provider": "anthropic", "apiKey": "sk-canary-4"}
    )
    assert await call(services, "llmConfigs:delete", {"id": row["id"]}) is None
    assert await services.secrets.get(row["id"]) is None
    with pytest.raises(NotFound):
        await call(services, "llmConfigs:get", {"id": row["id"]})
    with pytest.raises(NotFound):
        await call(services, "llmConfigs:delete", {"id": row["id"]})


async def test_roles_and_personalities_get_their_defaults_and_partial_updates(services: Services) -> None:
    role = await call(services, "roles:create", {"name": "Critic", "systemPrompt": "Criticise."})
    assert role == {"id": role["id"], "name": "Critic", "description": "", "systemPrompt": "Criticise."}
    role = await call(services, "roles:update", {"id": role["id"], "description": "Finds flaws"})
    assert (role["name"], role["description"], role["systemPrompt"]) == ("Critic", "Finds flaws", "Criticise.")
    with pytest.raises(RuleViolation):
        await call(services, "roles:create", {"name": "X", "systemPrompt": " \n "})
    personality = await call(services, "personalities:create", {"name": "Calm"})
    assert personality == {"id": personality["id"], "name": "Calm", "behaviors": {}, "customInstructions": ""}
    personality = await call(
        services, "personalities:update", {"id": personality["id"], "behaviors": {"humor": 80, "zest": 10}}
    )
    assert personality["behaviors"] == {"humor": 80, "zest": 10}  # an unknown trait is kept
    assert await call(services, "personalities:get", {"id": personality["id"]}) == personality
    assert await call(services, "roles:delete", {"id": role["id"]}) is None
    with pytest.raises(NotFound):
        await call(services, "roles:get", {"id": role["id"]})


async def test_an_agent_needs_existing_references_and_null_clears_its_optional_fields(services: Services) -> None:
    with pytest.raises(NotFound):
        await make_agent(services, roleId="missing")
    agent = await make_agent(services, systemPrompt="Be terse.", temperature=0.7, personalityBehaviors={"humor": -20})
    assert agent["timeoutMs"] == 60000 and agent["maxTokens"] is None and agent["topP"] is None
    assert (agent["systemPrompt"], agent["temperature"], agent["personalityBehaviors"]) == (
        "Be terse.",
        0.7,
        {"humor": -20},
    )
    agent = await call(
        services, "agents:update", {"id": agent["id"], "systemPrompt": None, "temperature": None, "maxTokens": 500}
    )
    assert (agent["systemPrompt"], agent["temperature"], agent["maxTokens"]) == (None, None, 500)
    assert agent["personalityBehaviors"] == {"humor": -20}  # not given, not changed
    with pytest.raises(NotFound):
        await call(services, "agents:update", {"id": agent["id"], "llmConfigId": "missing"})
    with pytest.raises(Conflict):
        await call(services, "roles:delete", {"id": agent["roleId"]})


async def test_conversations_default_and_list_newest_first(services: Services, clock: Any) -> None:
    first = await call(services, "conversations:create", {})
    assert first == {
        "id": first["id"],
        "title": "New Conversation",
        "chatMode": "manual",
        "autoSettings": {"maxMessages": 12, "delayMs": 0, "style": "sequential"},
        "createdAt": ISO_START,
        "updatedAt": ISO_START,
    }
    second = await call(services, "conversations:create", {"title": "Launch plan", "chatMode": "round-robin"})
    clock.advance(10)
    third = await call(services, "conversations:create", {"title": "Later"})
    assert [c["id"] for c in await call(services, "conversations:list")] == [third["id"], second["id"], first["id"]]
    renamed = await call(services, "conversations:update", {"id": first["id"], "title": "Renamed"})
    assert (renamed["title"], renamed["chatMode"], renamed["updatedAt"]) == (
        "Renamed",
        "manual",
        "2025-11-26T08:00:00.010Z",
    )
    with pytest.raises(RuleViolation):
        await call(services, "conversations:update", {"id": first["id"], "title": "\t"})
    with pytest.raises(NotFound):
        await call(services, "conversations:get", {"id": "missing"})


async def test_conversation_agents_are_listed_in_display_order_with_their_agent_name(services: Services) -> None:
    conversation = await call(services, "conversations:create", {})
    ada, bob = await make_agent(services, "Ada"), await make_agent(services, "Bob")
    added = await call(services, "conversationAgents:add", {"conversationId": conversation["id"], "agentId": ada["id"]})
    assert added == {
        "id": added["id"],
        "conversationId": conversation["id"],
        "agentId": ada["id"],
        "agentName": "Ada",
        "enabled": True,
        "displayOrder": 0,
        "color": "--agent-1",
        "addedAt": ISO_START,
    }
    bob_row = await call(
        services,
        "conversationAgents:add",
        {"conversationId": conversation["id"], "agentId": bob["id"], "enabled": False},
    )
    moved = await call(
        services, "conversationAgents:update", {"id": added["id"], "displayOrder": 7, "color": "--agent-5"}
    )
    assert (moved["displayOrder"], moved["color"], moved["enabled"], moved["agentName"]) == (
        7,
        "--agent-5",
        True,
        "Ada",
    )
    listed = await call(services, "conversationAgents:list", {"conversationId": conversation["id"]})
    assert [r["agentName"] for r in listed] == ["Bob", "Ada"] and listed[0] == bob_row
    await call(services, "agents:update", {"id": ada["id"], "name": "Ada Lovelace"})
    listed = await call(services, "conversationAgents:list", {"conversationId": conversation["id"]})
    assert listed[1]["agentName"] == "Ada Lovelace"
    with pytest.raises(Conflict):
        await call(services, "conversationAgents:add", {"conversationId": conversation["id"], "agentId": bob["id"]})
    with pytest.raises(NotFound):
        await call(services, "conversationAgents:add", {"conversationId": conversation["id"], "agentId": "missing"})
    assert await call(services, "conversationAgents:remove", {"id": added["id"]}) is None
    with pytest.raises(NotFound):
        await call(services, "conversationAgents:remove", {"id": added["id"]})
    with pytest.raises(NotFound):
        await call(services, "conversationAgents:list", {"conversationId": "missing"})


async def test_messages_are_created_listed_paged_and_toggled(services: Services) -> None:
    conversation = await call(services, "conversations:create", {})
    cid = conversation["id"]
    user = await call(services, "messages:create", {"conversationId": cid, "role": "user", "content": "Hello"})
    assert user == {
        "id": user["id"],
        "conversationId": cid,
        "conversationAgentId": None,
        "role": "user",
        "content": "Hello",
        "included": True,
        "status": "complete",
        "replyToId": None,
        "createdAt": ISO_START,
        "usage": None,
        "stopReason": None,
        "version": None,
        "versionCount": None,
        "active": True,
        "editedAt": None,
    }
    note = await call(
        services, "messages:create", {"conversationId": cid, "role": "system", "content": "Note", "included": False}
    )
    third = await call(services, "messages:create", {"conversationId": cid, "role": "user", "content": "Again"})
    assert [m["id"] for m in await call(services, "messages:list", {"conversationId": cid})] == [
        user["id"],
        note["id"],
        third["id"],
    ]
    page = await call(services, "messages:list", {"conversationId": cid, "limit": 1, "before": third["id"]})
    assert [m["id"] for m in page] == [note["id"]]
    with pytest.raises(NotFound):
        await call(services, "messages:list", {"conversationId": cid, "before": "missing"})
    toggled = await call(services, "messages:updateInclusion", {"id": note["id"], "included": True})
    assert toggled == {**note, "included": True}
    assert await call(services, "messages:delete", {"id": user["id"]}) is None
    assert len(await call(services, "messages:list", {"conversationId": cid})) == 2
    with pytest.raises(NotFound):
        await call(services, "messages:updateInclusion", {"id": user["id"], "included": False})


@pytest.mark.parametrize(
    ("content", "error"),
    [("  ", RuleViolation), ("a\x1bb", RuleViolation), ("x" * (8 * 1024 * 1024 + 1), InvalidParams)],
)
async def test_bad_message_content_is_refused_with_the_right_error(
    services: Services, content: str, error: type
) -> None:
    conversation = await call(services, "conversations:create", {})
    with pytest.raises(error) as caught:
        await call(
            services, "messages:create", {"conversationId": conversation["id"], "role": "user", "content": content}
        )
    assert caught.value.data.get("field") == "content"


async def test_a_message_for_an_unknown_conversation_is_not_found(services: Services) -> None:
    with pytest.raises(NotFound):
        await call(services, "messages:create", {"conversationId": "missing", "role": "user", "content": "Hi"})
