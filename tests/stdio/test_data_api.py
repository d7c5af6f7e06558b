"""The data API over the real subprocess, in both framings: every data method, its defaults, orderings, paging,
cascades and error kinds (CONTRACT §3–§4). Every result is checked against schema/ by the client.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.sidecar_client import Sidecar

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UNKNOWN_ID = "01900000-0000-7000-8000-000000000000"
NOT_FOUND, CONFLICT, VALIDATION, INVALID_PARAMS = -32010, -32011, -32012, -32602


# --- helpers -------------------------------------------------------------------------------------------------


def _demo_config(sidecar: Sidecar) -> dict[str, Any]:
    return next(c for c in sidecar.call("llmConfigs:list") if c["provider"] == "demo")


def _agent(sidecar: Sidecar, name: str, **fields: Any) -> dict[str, Any]:
    params = {
        "name": name,
        "llmConfigId": _demo_config(sidecar)["id"],
        "model": "demo",
        "roleId": sidecar.call("roles:list")[0]["id"],
        "personalityId": sidecar.call("personalities:list")[0]["id"],
        **fields,
    }
    return sidecar.call("agents:create", params)


def _user_message(sidecar: Sidecar, conversation_id: str, content: str) -> dict[str, Any]:
    return sidecar.call("messages:create", {"conversationId": conversation_id, "role": "user", "content": content})


def _snapshot(sidecar: Sidecar) -> dict[str, Any]:
    """Everything the client can list, so a rejected request can be shown to change nothing."""
    state: dict[str, Any] = {
        name: sidecar.call(f"{name}:list") for name in ("llmConfigs", "roles", "personalities", "agents")
    }
    conversations = sidecar.call("conversations:list")
    state["conversations"] = conversations
    for conversation in conversations:
        params = {"conversationId": conversation["id"]}
        state[conversation["id"]] = (
            sidecar.call("conversationAgents:list", params),
            sidecar.call("messages:list", params),
        )
    return state


def _fail(sidecar: Sidecar, method: str, params: dict[str, Any], code: int) -> dict[str, Any]:
    """Call a method that must fail with `code`, check the failure changed nothing, and return `error.data`."""
    before = _snapshot(sidecar)
    error = sidecar.call_error(method, params)
    assert error.code == code, f"{method} {params}: {error}"
    assert error.message
    assert _snapshot(sidecar) == before, f"a rejected {method} changed the data"
    return error.data


def _members(sidecar: Sidecar) -> dict[str, Any]:
    """A conversation with two agents and a user message: something for a rejected request to leave alone."""
    conversation = sidecar.call("conversations:create", {"title": "World"})
    ada, bob = _agent(sidecar, "Ada"), _agent(sidecar, "Bob")
    members = [
        sidecar.call("conversationAgents:add", {"conversationId": conversation["id"], "agentId": a["id"]})
        for a in (ada, bob)
    ]
    _user_message(sidecar, conversation["id"], "Hello, both")
    return {"conversation": conversation, "agents": [ada, bob], "members": members}


def _world(sidecar: Sidecar) -> dict[str, Any]:
    """`_members`, then a demo turn: both agents reply to a second user message."""
    world = _members(sidecar)
    params = {"conversationId": world["conversation"]["id"], "content": "Tell me more"}
    result = sidecar.call("processUserMessage", params)
    assert result["successfulAgents"] == 2, result
    return {**world, "turn": result}


# --- lifecycle -----------------------------------------------------------------------------------------------


def test_initialize_reports_the_server_protocol_version_and_data_dir(sidecar: Sidecar) -> None:
    result = sidecar.call("initialize", {"clientInfo": {"name": "tests", "version": "1"}, "processId": None})
    assert result["serverInfo"]["name"] == "chat-sidecar" and result["serverInfo"]["version"]
    assert result["protocolVersion"] == "1"
    assert isinstance(result["capabilities"], dict)
    assert Path(result["dataDir"]) == sidecar.data_dir.resolve()
    assert result["secretStorage"] == "memory"
    assert sidecar.call("initialize") == result, "calling initialize twice answers the same"


def test_ping_answers_an_empty_object_with_or_without_params(sidecar: Sidecar) -> None:
    assert sidecar.call("ping") == {}
    assert sidecar.call("ping", {}) == {}


def test_every_data_method_works_without_initialize(sidecar: Sidecar) -> None:
    assert isinstance(sidecar.call("conversations:list"), list)


# --- seeding -------------------------------------------------------------------------------------------------


def test_the_first_start_seeds_the_offline_demo_config(sidecar: Sidecar) -> None:
    [demo] = sidecar.call("llmConfigs:list")
    assert demo["customName"] == "Demo (offline)" and demo["provider"] == "demo"
    assert demo["hasApiKey"] is False and demo["useAuthHeader"] is True
    assert "apiKey" not in demo


def test_the_first_start_seeds_built_in_roles_and_personalities_with_traits(sidecar: Sidecar) -> None:
    roles, personalities = sidecar.call("roles:list"), sidecar.call("personalities:list")
    assert 6 <= len(roles) <= 12 and 4 <= len(personalities) <= 10
    assert len({r["name"] for r in roles}) == len(roles) and all(r["systemPrompt"].strip() for r in roles)
    assert len({p["name"] for p in personalities}) == len(personalities)
    for personality in personalities:
        assert personality["behaviors"], f"{personality['name']} has no behaviour traits"
        assert all(isinstance(v, int) and 0 <= v <= 100 for v in personality["behaviors"].values())


def test_seeding_happens_once_and_deleted_built_ins_stay_deleted(
    spawn_sidecar: Callable[..., Sidecar], tmp_path: Path
) -> None:
    first = spawn_sidecar(tmp_path / "seeded")
    demo = _demo_config(first)
    first.call("llmConfigs:delete", {"id": demo["id"]})
    roles = first.call("roles:list")
    assert first.stop() == 0
    second = spawn_sidecar(tmp_path / "seeded")
    assert second.call("llmConfigs:list") == []
    assert second.call("roles:list") == roles


# --- ids and timestamps --------------------------------------------------------------------------------------


def test_ids_look_like_uuidv7_and_timestamps_have_milliseconds(sidecar: Sidecar) -> None:
    world = _world(sidecar)
    rows: list[dict[str, Any]] = [
        *sidecar.call("llmConfigs:list"),
        *sidecar.call("roles:list"),
        *sidecar.call("personalities:list"),
        *world["agents"],
        world["conversation"],
        *world["members"],
        *sidecar.call("messages:list", {"conversationId": world["conversation"]["id"]}),
    ]
    for row in rows:
        assert UUID7.match(row["id"]), row
        for key in ("createdAt", "updatedAt", "addedAt"):
            if key in row:
                assert TIMESTAMP.match(row[key]), (key, row)


# --- llmConfigs ----------------------------------------------------------------------------------------------


def test_llm_config_create_applies_defaults_and_get_and_list_return_it(sidecar: Sidecar) -> None:
    created = sidecar.call("llmConfigs:create", {"customName": "Local", "provider": "openai"})
    assert created["useAuthHeader"] is True and created["hasApiKey"] is False
    assert created.get("baseUrl") is None
    assert created["createdAt"] == created["updatedAt"]
    assert sidecar.call("llmConfigs:get", {"id": created["id"]}) == created
    assert created in sidecar.call("llmConfigs:list")


def test_llm_config_update_changes_the_given_fields_only(sidecar: Sidecar) -> None:
    created = sidecar.call("llmConfigs:create", {"customName": "Claude", "provider": "anthropic"})
    updated = sidecar.call(
        "llmConfigs:update",
        {"id": created["id"], "customName": "Claude 2", "baseUrl": "https://proxy.example/v1/", "useAuthHeader": False},
    )
    assert updated["customName"] == "Claude 2" and updated["useAuthHeader"] is False
    assert updated["baseUrl"] == "https://proxy.example", "an Anthropic base URL loses its trailing /v1"
    assert updated["provider"] == "anthropic" and updated["createdAt"] == created["createdAt"]
    assert updated["updatedAt"] >= created["updatedAt"]
    assert sidecar.call("llmConfigs:get", {"id": created["id"]}) == updated


@pytest.mark.parametrize(
    ("namespace", "create"),
    [
        ("llmConfigs", {"customName": "Same", "provider": "openai", "baseUrl": "http://127.0.0.1:1/v1"}),
        ("roles", {"name": "Same", "description": "d", "systemPrompt": "p"}),
        ("personalities", {"name": "Same", "behaviors": {"humor": 5}, "customInstructions": "c"}),
        ("conversations", {"title": "Same", "chatMode": "round-robin"}),
    ],
)
def test_an_update_with_only_the_id_changes_no_field(sidecar: Sidecar, namespace: str, create: dict[str, Any]) -> None:
    created = sidecar.call(f"{namespace}:create", create)
    updated = sidecar.call(f"{namespace}:update", {"id": created["id"]})
    assert updated == created  # updatedAt included: nothing changed, so nothing moves


def test_an_openai_base_url_keeps_its_v1(sidecar: Sidecar) -> None:
    created = sidecar.call(
        "llmConfigs:create", {"customName": "Ollama", "provider": "openai", "baseUrl": "http://localhost:11434/v1"}
    )
    assert created["baseUrl"] == "http://localhost:11434/v1"


def test_has_api_key_follows_create_set_api_key_and_removal_and_the_key_is_never_returned(sidecar: Sidecar) -> None:
    with_key = sidecar.call("llmConfigs:create", {"customName": "K", "provider": "openai", "apiKey": "sk-test-1234"})
    assert with_key["hasApiKey"] is True
    removed = sidecar.call("llmConfigs:update", {"id": with_key["id"], "apiKey": None})
    assert removed["hasApiKey"] is False
    set_again = sidecar.call("llmConfigs:setApiKey", {"id": with_key["id"], "apiKey": "sk-test-5678"})
    assert set_again["hasApiKey"] is True
    assert sidecar.call("llmConfigs:get", {"id": with_key["id"]})["hasApiKey"] is True
    assert b"sk-test-" not in bytes(sidecar.stdout_bytes)


def test_set_api_key_on_an_unknown_config_is_not_found(sidecar: Sidecar) -> None:
    data = _fail(sidecar, "llmConfigs:setApiKey", {"id": UNKNOWN_ID, "apiKey": "sk-test-1234"}, NOT_FOUND)
    assert data["kind"] == "not_found"


def test_llm_config_delete_removes_it(sidecar: Sidecar) -> None:
    created = sidecar.call("llmConfigs:create", {"customName": "Gone", "provider": "openai"})
    assert sidecar.call("llmConfigs:delete", {"id": created["id"]}) is None
    assert sidecar.call_error("llmConfigs:get", {"id": created["id"]}).kind == "not_found"
    assert created["id"] not in [c["id"] for c in sidecar.call("llmConfigs:list")]


def test_a_duplicate_custom_name_is_a_conflict_on_create_and_on_update(sidecar: Sidecar) -> None:
    other = sidecar.call("llmConfigs:create", {"customName": "Other", "provider": "openai"})
    data = _fail(sidecar, "llmConfigs:create", {"customName": "Demo (offline)", "provider": "openai"}, CONFLICT)
    assert data["kind"] == "conflict"
    data = _fail(sidecar, "llmConfigs:update", {"id": other["id"], "customName": "Demo (offline)"}, CONFLICT)
    assert data["kind"] == "conflict"


# --- roles and personalities ---------------------------------------------------------------------------------


def test_role_crud_with_the_description_defaulting_to_empty(sidecar: Sidecar) -> None:
    created = sidecar.call("roles:create", {"name": "Critic", "systemPrompt": "Criticise."})
    assert created["description"] == "" and created["systemPrompt"] == "Criticise."
    assert sidecar.call("roles:get", {"id": created["id"]}) == created
    updated = sidecar.call("roles:update", {"id": created["id"], "description": "Finds flaws"})
    assert updated == {**created, "description": "Finds flaws"}
    assert updated in sidecar.call("roles:list")
    assert sidecar.call("roles:delete", {"id": created["id"]}) is None
    assert sidecar.call_error("roles:get", {"id": created["id"]}).code == NOT_FOUND


def test_personality_crud_with_defaults_and_behaviours_replaced_whole(sidecar: Sidecar) -> None:
    created = sidecar.call("personalities:create", {"name": "Plain"})
    assert created["behaviors"] == {} and created["customInstructions"] == ""
    with_traits = sidecar.call(
        "personalities:update", {"id": created["id"], "behaviors": {"humor": 80, "my_trait": 3}}
    )
    assert with_traits["behaviors"] == {"humor": 80, "my_trait": 3}, "an unknown trait is kept"
    replaced = sidecar.call(
        "personalities:update", {"id": created["id"], "behaviors": {"brevity": 10}, "customInstructions": "Be short."}
    )
    assert replaced["behaviors"] == {"brevity": 10} and replaced["customInstructions"] == "Be short."
    assert sidecar.call("personalities:get", {"id": created["id"]}) == replaced
    assert replaced in sidecar.call("personalities:list")
    assert sidecar.call("personalities:delete", {"id": created["id"]}) is None
    assert sidecar.call_error("personalities:get", {"id": created["id"]}).code == NOT_FOUND


# --- agents --------------------------------------------------------------------------------------------------


def test_agent_create_applies_the_default_timeout_and_leaves_overrides_unset(sidecar: Sidecar) -> None:
    agent = _agent(sidecar, "Ada")
    assert agent["timeoutMs"] == 60000
    for key in ("systemPrompt", "personalityBehaviors", "temperature", "maxTokens", "topP"):
        assert agent.get(key) is None, key
    assert agent["createdAt"] == agent["updatedAt"]
    assert sidecar.call("agents:get", {"id": agent["id"]}) == agent
    assert sidecar.call("agents:list") == [agent]


def test_agent_update_sets_and_clears_overrides(sidecar: Sidecar) -> None:
    agent = _agent(sidecar, "Ada", temperature=0.5, topP=0.9)
    role = sidecar.call("roles:list")[1]
    updated = sidecar.call(
        "agents:update",
        {"id": agent["id"], "name": "Ada L.", "roleId": role["id"], "temperature": None, "maxTokens": 500,
         "personalityBehaviors": {"humor": -20}, "timeoutMs": 5000},
    )
    assert updated["name"] == "Ada L." and updated["roleId"] == role["id"]
    assert updated.get("temperature") is None and updated["topP"] == 0.9 and updated["maxTokens"] == 500
    assert updated["personalityBehaviors"] == {"humor": -20} and updated["timeoutMs"] == 5000
    assert sidecar.call("agents:get", {"id": agent["id"]}) == updated


@pytest.mark.parametrize("reference", ["llmConfigId", "roleId", "personalityId"])
def test_an_agent_must_reference_rows_that_exist(sidecar: Sidecar, reference: str) -> None:
    params = {
        "name": "Orphan",
        "llmConfigId": _demo_config(sidecar)["id"],
        "model": "demo",
        "roleId": sidecar.call("roles:list")[0]["id"],
        "personalityId": sidecar.call("personalities:list")[0]["id"],
        reference: UNKNOWN_ID,
    }
    assert _fail(sidecar, "agents:create", params, NOT_FOUND)["kind"] == "not_found"
    agent = _agent(sidecar, "Real")
    assert _fail(sidecar, "agents:update", {"id": agent["id"], reference: UNKNOWN_ID}, NOT_FOUND)["kind"] == "not_found"


def test_agent_delete_removes_it(sidecar: Sidecar) -> None:
    agent = _agent(sidecar, "Short-lived")
    assert sidecar.call("agents:delete", {"id": agent["id"]}) is None
    assert sidecar.call("agents:list") == []


# --- deleting what is in use ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "reference"),
    [("llmConfigs:delete", "llmConfigId"), ("roles:delete", "roleId"), ("personalities:delete", "personalityId")],
)
def test_deleting_something_an_agent_uses_is_a_conflict_until_the_agent_is_gone(
    sidecar: Sidecar, method: str, reference: str
) -> None:
    agent = _agent(sidecar, "User")
    assert _fail(sidecar, method, {"id": agent[reference]}, CONFLICT)["kind"] == "conflict"
    sidecar.call("agents:delete", {"id": agent["id"]})
    assert sidecar.call(method, {"id": agent[reference]}) is None


def test_deleting_an_agent_still_in_a_conversation_is_a_conflict_until_it_is_removed(sidecar: Sidecar) -> None:
    agent = _agent(sidecar, "Member")
    conversation = sidecar.call("conversations:create", {})
    member = sidecar.call("conversationAgents:add", {"conversationId": conversation["id"], "agentId": agent["id"]})
    assert _fail(sidecar, "agents:delete", {"id": agent["id"]}, CONFLICT)["kind"] == "conflict"
    assert sidecar.call("conversationAgents:remove", {"id": member["id"]}) is None
    assert sidecar.call("agents:delete", {"id": agent["id"]}) is None


# --- conversations -------------------------------------------------------------------------------------------


def test_a_new_conversation_is_titled_new_conversation_in_manual_mode(sidecar: Sidecar) -> None:
    conversation = sidecar.call("conversations:create")
    assert conversation["title"] == "New Conversation" and conversation["chatMode"] == "manual"
    assert conversation["createdAt"] == conversation["updatedAt"]
    assert sidecar.call("conversations:get", {"id": conversation["id"]}) == conversation


def test_conversations_are_listed_newest_first(sidecar: Sidecar) -> None:
    created = [sidecar.call("conversations:create", {"title": f"c{n}"}) for n in range(5)]
    assert [c["id"] for c in sidecar.call("conversations:list")] == [c["id"] for c in reversed(created)]


def test_conversation_update_changes_title_and_mode(sidecar: Sidecar) -> None:
    conversation = sidecar.call("conversations:create", {"title": "Before", "chatMode": "round-robin"})
    assert conversation["chatMode"] == "round-robin"
    updated = sidecar.call("conversations:update", {"id": conversation["id"], "title": "After", "chatMode": "manual"})
    assert (updated["title"], updated["chatMode"]) == ("After", "manual")
    assert updated["createdAt"] == conversation["createdAt"] and updated["updatedAt"] >= conversation["updatedAt"]
    assert sidecar.call("conversations:list") == [updated]


def test_deleting_a_conversation_takes_its_agents_and_messages_with_it(sidecar: Sidecar) -> None:
    world = _world(sidecar)
    keep = sidecar.call("conversations:create", {"title": "Keep"})
    _user_message(sidecar, keep["id"], "stays")
    conversation_id = world["conversation"]["id"]
    assert sidecar.call("conversations:delete", {"id": conversation_id}) is None
    assert sidecar.call_error("conversations:get", {"id": conversation_id}).kind == "not_found"
    assert sidecar.call_error("messages:list", {"conversationId": conversation_id}).kind == "not_found"
    assert sidecar.call_error("conversationAgents:list", {"conversationId": conversation_id}).kind == "not_found"
    for member in world["members"]:
        assert sidecar.call_error("conversationAgents:update", {"id": member["id"]}).kind == "not_found"
    for agent in world["agents"]:  # no conversation agent row is left to hold them
        assert sidecar.call("agents:delete", {"id": agent["id"]}) is None
    assert [m["content"] for m in sidecar.call("messages:list", {"conversationId": keep["id"]})] == ["stays"]


# --- conversation agents -------------------------------------------------------------------------------------


def test_adding_an_agent_applies_the_defaults_and_names_it(sidecar: Sidecar) -> None:
    agent = _agent(sidecar, "Ada")
    conversation = sidecar.call("conversations:create")
    member = sidecar.call("conversationAgents:add", {"conversationId": conversation["id"], "agentId": agent["id"]})
    assert member["conversationId"] == conversation["id"] and member["agentId"] == agent["id"]
    assert member["agentName"] == "Ada" and member["enabled"] is True
    assert member["color"] == "--agent-1" and member["displayOrder"] == 0
    assert sidecar.call("conversationAgents:list", {"conversationId": conversation["id"]}) == [member]


def test_the_default_colour_is_the_first_unused_then_cycles_by_count(sidecar: Sidecar) -> None:
    conversation = sidecar.call("conversations:create")
    agents = [_agent(sidecar, f"Agent {n}") for n in range(10)]

    def add(agent: dict[str, Any], **fields: Any) -> str:
        params = {"conversationId": conversation["id"], "agentId": agent["id"], **fields}
        return sidecar.call("conversationAgents:add", params)["color"]

    assert add(agents[0]) == "--agent-1"
    assert add(agents[1], color="--agent-2") == "--agent-2"
    assert add(agents[2], color="--agent-4") == "--agent-4"
    assert [add(a) for a in agents[3:8]] == ["--agent-3", "--agent-5", "--agent-6", "--agent-7", "--agent-8"]
    assert add(agents[8]) == "--agent-1", "8 agents already there: --agent-{(8 % 8) + 1}"
    assert add(agents[9]) == "--agent-2", "9 agents already there: --agent-{(9 % 8) + 1}"


def test_conversation_agents_are_ordered_by_display_order_then_added_at(sidecar: Sidecar) -> None:
    conversation = sidecar.call("conversations:create")
    ada, bob, cyd, dee = (_agent(sidecar, n) for n in ("Ada", "Bob", "Cyd", "Dee"))

    def add(agent: dict[str, Any], **fields: Any) -> dict[str, Any]:
        return sidecar.call("conversationAgents:add", {"conversationId": conversation["id"], "agentId": agent["id"],
                                                       **fields})

    add(ada, displayOrder=5)
    add(bob, displayOrder=1)
    add(cyd, displayOrder=5)
    assert add(dee)["displayOrder"] == 6, "the default goes after the last"
    listed = sidecar.call("conversationAgents:list", {"conversationId": conversation["id"]})
    assert [m["agentName"] for m in listed] == ["Bob", "Ada", "Cyd", "Dee"]


def test_conversation_agent_update_changes_enabled_order_and_colour(sidecar: Sidecar) -> None:
    conversation = sidecar.call("conversations:create")
    first, second = (
        sidecar.call("conversationAgents:add", {"conversationId": conversation["id"], "agentId": a["id"]})
        for a in (_agent(sidecar, "Ada"), _agent(sidecar, "Bob"))
    )
    updated = sidecar.call(
        "conversationAgents:update", {"id": first["id"], "enabled": False, "displayOrder": 9, "color": "--agent-7"}
    )
    assert updated == {**first, "enabled": False, "displayOrder": 9, "color": "--agent-7"}
    listed = sidecar.call("conversationAgents:list", {"conversationId": conversation["id"]})
    assert listed == [second, updated]


def test_adding_the_same_agent_twice_is_a_conflict(sidecar: Sidecar) -> None:
    agent = _agent(sidecar, "Ada")
    conversation = sidecar.call("conversations:create")
    params = {"conversationId": conversation["id"], "agentId": agent["id"]}
    sidecar.call("conversationAgents:add", params)
    assert _fail(sidecar, "conversationAgents:add", params, CONFLICT)["kind"] == "conflict"


@pytest.mark.parametrize("missing", ["conversationId", "agentId"])
def test_adding_to_or_from_an_unknown_row_is_not_found(sidecar: Sidecar, missing: str) -> None:
    params = {"conversationId": sidecar.call("conversations:create")["id"], "agentId": _agent(sidecar, "Ada")["id"]}
    assert _fail(sidecar, "conversationAgents:add", {**params, missing: UNKNOWN_ID}, NOT_FOUND)["kind"] == "not_found"


def test_removing_a_conversation_agent_deletes_its_messages_and_keeps_the_rest(sidecar: Sidecar) -> None:
    world = _world(sidecar)
    conversation_id = world["conversation"]["id"]
    ada, bob = world["members"]
    before = sidecar.call("messages:list", {"conversationId": conversation_id})
    assert {m["conversationAgentId"] for m in before} == {None, ada["id"], bob["id"]}
    assert sidecar.call("conversationAgents:remove", {"id": ada["id"]}) is None
    after = sidecar.call("messages:list", {"conversationId": conversation_id})
    assert after == [m for m in before if m["conversationAgentId"] != ada["id"]]
    assert sidecar.call("conversationAgents:list", {"conversationId": conversation_id}) == [bob]
    assert sidecar.call("agents:get", {"id": ada["agentId"]})["name"] == "Ada", "the agent itself stays"


# --- messages ------------------------------------------------------------------------------------------------


def test_a_created_message_is_complete_included_and_unlinked(sidecar: Sidecar) -> None:
    conversation = sidecar.call("conversations:create")
    message = _user_message(sidecar, conversation["id"], "Hi there")
    assert message["conversationId"] == conversation["id"] and message["role"] == "user"
    assert message["content"] == "Hi there" and message["included"] is True and message["status"] == "complete"
    assert message["conversationAgentId"] is None and message["replyToId"] is None
    params = {"conversationId": conversation["id"], "role": "system", "content": "Note", "included": False}
    note = sidecar.call("messages:create", params)
    assert note["role"] == "system" and note["included"] is False
    assert sidecar.call("messages:list", {"conversationId": conversation["id"]}) == [message, note]


def test_messages_are_listed_in_insertion_order_even_within_one_millisecond(sidecar: Sidecar) -> None:
    conversation = sidecar.call("conversations:create")
    request_ids = [
        sidecar.request("messages:create", {"conversationId": conversation["id"], "role": "user", "content": f"m{n}"})
        for n in range(30)
    ]
    created = [sidecar.response(r)["result"] for r in request_ids]
    listed = sidecar.call("messages:list", {"conversationId": conversation["id"]})
    assert sorted(m["id"] for m in created) == [m["id"] for m in listed]
    assert listed == sorted(listed, key=lambda m: (m["createdAt"], m["id"]))


def test_an_agent_reply_links_to_its_trigger_and_its_conversation_agent(sidecar: Sidecar) -> None:
    world = _world(sidecar)
    listed = sidecar.call("messages:list", {"conversationId": world["conversation"]["id"]})
    hello, user, *replies = listed
    assert user["id"] == world["turn"]["userMessageId"] and user["role"] == "user"
    assert hello["role"] == "user" and hello["replyToId"] is None
    assert {r["conversationAgentId"] for r in replies} == {m["id"] for m in world["members"]}
    assert all(r["role"] == "agent" and r["replyToId"] == user["id"] and r["status"] == "complete" for r in replies)


def test_update_inclusion_toggles_included_and_returns_the_row(sidecar: Sidecar) -> None:
    conversation = sidecar.call("conversations:create")
    message = _user_message(sidecar, conversation["id"], "toggle me")
    excluded = sidecar.call("messages:updateInclusion", {"id": message["id"], "included": False})
    assert excluded == {**message, "included": False}
    assert sidecar.call("messages:list", {"conversationId": conversation["id"]}) == [excluded]
    assert sidecar.call("messages:updateInclusion", {"id": message["id"], "included": True}) == message


def test_message_delete_removes_only_that_message(sidecar: Sidecar) -> None:
    conversation = sidecar.call("conversations:create")
    first, second = (_user_message(sidecar, conversation["id"], t) for t in ("one", "two"))
    assert sidecar.call("messages:delete", {"id": first["id"]}) is None
    assert sidecar.call("messages:list", {"conversationId": conversation["id"]}) == [second]


def test_deleting_a_trigger_keeps_the_replies_and_unlinks_them(sidecar: Sidecar) -> None:
    world = _world(sidecar)
    sidecar.call("messages:delete", {"id": world["turn"]["userMessageId"]})
    hello, *replies = sidecar.call("messages:list", {"conversationId": world["conversation"]["id"]})
    assert hello["content"] == "Hello, both"
    assert len(replies) == 2 and all(r["role"] == "agent" and r["replyToId"] is None for r in replies)


# --- paging --------------------------------------------------------------------------------------------------


@pytest.fixture
def ten_messages(sidecar: Sidecar) -> tuple[str, list[str]]:
    conversation = sidecar.call("conversations:create")
    ids = [_user_message(sidecar, conversation["id"], f"m{n}")["id"] for n in range(10)]
    return conversation["id"], ids


@pytest.mark.parametrize(
    ("limit", "before", "expected"),
    [
        (None, None, range(10)),
        (3, None, range(7, 10)),
        (10, None, range(10)),
        (50, None, range(10)),
        (3, 5, range(2, 5)),
        (5, 1, range(0, 1)),
        (5, 0, range(0)),
        (None, 4, range(0, 4)),
        (1, 9, range(8, 9)),
    ],
)
def test_messages_list_pages_backwards_from_before_in_ascending_order(
    sidecar: Sidecar, ten_messages: tuple[str, list[str]], limit: int | None, before: int | None, expected: range
) -> None:
    conversation_id, ids = ten_messages
    params: dict[str, Any] = {"conversationId": conversation_id}
    if limit is not None:
        params["limit"] = limit
    if before is not None:
        params["before"] = ids[before]
    assert [m["id"] for m in sidecar.call("messages:list", params)] == [ids[n] for n in expected]


def test_paging_backwards_page_by_page_visits_every_message_once(
    sidecar: Sidecar, ten_messages: tuple[str, list[str]]
) -> None:
    conversation_id, ids = ten_messages
    pages: list[list[str]] = []
    params: dict[str, Any] = {"conversationId": conversation_id, "limit": 4}
    while page := [m["id"] for m in sidecar.call("messages:list", params)]:
        pages.insert(0, page)
        params["before"] = page[0]
    assert [len(p) for p in pages] == [2, 4, 4]
    assert [i for p in pages for i in p] == ids


def test_a_before_id_from_another_conversation_is_not_found(
    sidecar: Sidecar, ten_messages: tuple[str, list[str]]
) -> None:
    conversation_id, _ = ten_messages
    other = sidecar.call("conversations:create")
    foreign = _user_message(sidecar, other["id"], "elsewhere")
    error = sidecar.call_error("messages:list", {"conversationId": conversation_id, "before": foreign["id"]})
    assert (error.code, error.kind) == (NOT_FOUND, "not_found")


# --- errors --------------------------------------------------------------------------------------------------

UNKNOWN_ID_CALLS = [
    (method, params)
    for namespace in ("llmConfigs", "roles", "personalities", "agents", "conversations")
    for method, params in [
        (f"{namespace}:get", {"id": UNKNOWN_ID}),
        (f"{namespace}:update", {"id": UNKNOWN_ID}),
        (f"{namespace}:delete", {"id": UNKNOWN_ID}),
    ]
] + [
    ("conversationAgents:list", {"conversationId": UNKNOWN_ID}),
    ("conversationAgents:update", {"id": UNKNOWN_ID, "enabled": False}),
    ("conversationAgents:remove", {"id": UNKNOWN_ID}),
    ("messages:list", {"conversationId": UNKNOWN_ID}),
    ("messages:create", {"conversationId": UNKNOWN_ID, "role": "user", "content": "hi"}),
    ("messages:updateInclusion", {"id": UNKNOWN_ID, "included": False}),
    ("messages:delete", {"id": UNKNOWN_ID}),
]


@pytest.mark.parametrize(("method", "params"), UNKNOWN_ID_CALLS, ids=[m for m, _ in UNKNOWN_ID_CALLS])
def test_an_unknown_id_is_not_found_and_changes_nothing(sidecar: Sidecar, method: str, params: dict[str, Any]) -> None:
    _members(sidecar)
    assert _fail(sidecar, method, params, NOT_FOUND)["kind"] == "not_found"


@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("messages:create", {"role": "user", "content": " \n\t "}, "content"),
        ("roles:create", {"name": "   ", "systemPrompt": "x"}, "name"),
        ("roles:create", {"name": "Role", "systemPrompt": "\n\n"}, "systemPrompt"),
        ("personalities:create", {"name": "\t"}, "name"),
        ("llmConfigs:create", {"customName": "  ", "provider": "openai"}, "customName"),
        ("conversations:create", {"title": "   "}, "title"),
        ("conversations:update", {"title": " "}, "title"),
        ("agents:create", {"name": "  "}, "name"),
    ],
)
def test_whitespace_only_text_is_a_validation_error_that_changes_nothing(
    sidecar: Sidecar, method: str, params: dict[str, Any], field: str
) -> None:
    world = _members(sidecar)
    conversation_id, agent = world["conversation"]["id"], world["agents"][0]
    if method.startswith("messages:"):
        params = {"conversationId": conversation_id, **params}
    elif method == "conversations:update":
        params = {"id": conversation_id, **params}
    elif method == "agents:create":
        params = {**{k: agent[k] for k in ("llmConfigId", "model", "roleId", "personalityId")}, **params}
    data = _fail(sidecar, method, params, VALIDATION)
    assert data["kind"] == "validation"
    assert data.get("field", field) == field


@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("messages:create", {"role": "user"}, "content"),
        ("messages:create", {"role": "agent", "content": "hi"}, "role"),
        ("messages:create", {"role": "user", "content": ""}, "content"),
        ("messages:create", {"role": "user", "content": "bell \u0007"}, "content"),
        ("messages:create", {"role": "user", "content": "hi", "included": "yes"}, "included"),
        ("messages:list", {"limit": -1}, "limit"),
        ("messages:list", {"limit": 2.5}, "limit"),
        ("messages:updateInclusion", {"id": "x"}, "included"),
        ("conversations:create", {"chatMode": "free-for-all"}, "chatMode"),
        ("conversations:create", {"title": "t" * 201}, "title"),
        ("conversations:get", {}, "id"),
        ("conversations:get", {"id": "x", "extra": 1}, "extra"),
        ("conversationAgents:add", {"agentId": "x", "color": "red"}, "color"),
        ("conversationAgents:add", {"agentId": "x", "displayOrder": -1}, "displayOrder"),
        ("conversationAgents:update", {"id": "x", "enabled": "no"}, "enabled"),
        ("llmConfigs:create", {"customName": "c", "provider": "openai", "apiKey": ""}, "apiKey"),
        ("llmConfigs:create", {"customName": "c", "provider": "openai", "baseUrl": "ftp://x"}, "baseUrl"),
        ("llmConfigs:setApiKey", {"id": "x", "apiKey": "k" * 501}, "apiKey"),
        ("llmConfigs:update", {"id": "x", "useAuthHeader": 1}, "useAuthHeader"),
        ("roles:create", {"name": "r", "systemPrompt": "p" * 5001}, "systemPrompt"),
        ("personalities:create", {"name": "p", "behaviors": {"humor": -1}}, "behaviors.humor"),
        ("personalities:create", {"name": "p", "customInstructions": "c" * 501}, "customInstructions"),
        ("agents:create", {"name": "a"}, "llmConfigId"),
        ("agents:update", {"id": "x", "personalityBehaviors": {"humor": 101}}, "personalityBehaviors.humor"),
        ("agents:update", {"id": "x", "timeoutMs": 999}, "timeoutMs"),
        ("agents:update", {"id": "x", "topP": 1.5}, "topP"),
        ("agents:update", {"id": "x", "maxTokens": 0}, "maxTokens"),
    ],
)
def test_params_that_break_the_schema_name_the_field_and_change_nothing(
    sidecar: Sidecar, method: str, params: dict[str, Any], field: str
) -> None:
    conversation = sidecar.call("conversations:create")
    _user_message(sidecar, conversation["id"], "existing")
    if method.startswith(("messages:create", "messages:list", "conversationAgents:add")):
        params = {"conversationId": conversation["id"], **params}
    data = _fail(sidecar, method, params, INVALID_PARAMS)
    assert data["field"] == field and data["reason"]
