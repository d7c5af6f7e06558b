"""The chat engine: a turn fans out to every enabled agent at once; cancel, retry, and the context preview."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
from loguru import logger

from sidecar.chat.agent_run import AgentCaller, AgentRun
from sidecar.chat.context import AgentContext, TriggerNotFound, build_agent_context, to_wire
from sidecar.chat.events import AgentUpdates, send_all_complete
from sidecar.chat.request_bodies import MissingLlmConfig
from sidecar.errors import Busy, Conflict, NotFound, RuleViolation, SecretStorageError
from sidecar.providers.base import Provider, ProviderError, ProviderSettings
from sidecar.providers.factory import import_sdk, open_provider
from sidecar.secrets import SecretStore
from sidecar.services import Emit
from storage.db import Database
from storage.ids import IdFactory
from storage.records import MessageRecord, ParticipantRecord
from storage.repositories import turns

NO_AGENTS_NOTICE = "No agents are enabled for this conversation"
NO_LLM_CONFIG = "This agent has no LLM configuration. Choose one in its settings."
KEY_UNREADABLE = "The API key for this agent's LLM configuration could not be read from the OS keychain."
CALLS_PER_LLM_CONFIG = 4  # so five agents on one key do not trip its rate limit


class ChatEngine:
    def __init__(self, db: Database, ids: IdFactory, secrets: SecretStore, emit: Emit) -> None:
        self._db = db
        self._ids = ids
        self._secrets = secrets
        self._emit = emit
        self._providers: dict[str, tuple[ProviderSettings, Provider]] = {}
        self._limiters: dict[str, anyio.CapacityLimiter] = defaultdict(
            lambda: anyio.CapacityLimiter(CALLS_PER_LLM_CONFIG)
        )
        self._running: dict[tuple[str, str], set[anyio.CancelScope]] = defaultdict(set)
        self._caller = AgentCaller(db, ids, self._provider_for, lambda config_id: self._limiters[config_id])

    # --- turns ---------------------------------------------------------------------------------------

    async def process_user_message(
        self, conversation_id: str, user_message_id: str | None, content: str | None
    ) -> dict[str, Any]:
        started = anyio.current_time()
        # One unit of work each way: every thread hop here delays the first provider request.
        if content is not None:
            trigger, participants, history = await self._db.run(turns.start_turn, self._ids, conversation_id, content)
        else:
            assert user_message_id is not None
            trigger = await self._trigger(conversation_id, user_message_id)
            participants, history = await self._db.run(turns.load_turn, conversation_id)
        enabled = [p for p in participants if p.enabled]
        if not enabled:
            await self._db.run(turns.add_system_message, self._ids, conversation_id, NO_AGENTS_NOTICE, trigger.id, None)
            await send_all_complete(self._emit, conversation_id, trigger.id)
            return _processing_result(trigger.id, [], started)
        results: list[dict[str, Any]] = []
        await self._fan_out(enabled, participants, history, trigger.id, results)
        order = {p.conversation_agent_id: index for index, p in enumerate(enabled)}
        results.sort(key=lambda result: order[result["conversationAgentId"]])
        return _processing_result(trigger.id, results, started)

    async def retry_agent(
        self, conversation_id: str, conversation_agent_id: str, user_message_id: str
    ) -> dict[str, Any]:
        trigger = await self._trigger(conversation_id, user_message_id)
        participants = await self._db.run(turns.load_participants, conversation_id)
        target = _find_participant(participants, conversation_agent_id)
        with self._claim(target) as scope:  # claimed before the next await: a second retry now is busy
            previous = await self._db.run(turns.find_reply, target.conversation_agent_id, trigger.id)
            if previous is not None and previous.status == "complete":
                raise Conflict("That agent already answered this message")
            await self._db.run(turns.delete_turn_rows, target.conversation_agent_id, trigger.id)
            history = await self._db.run(turns.load_history, conversation_id)
            results: list[dict[str, Any]] = []
            await self._settle_turn([(target, scope)], participants, history, trigger.id, results)
        return results[0]

    async def _fan_out(
        self,
        enabled: list[ParticipantRecord],
        participants: list[ParticipantRecord],
        history: list[MessageRecord],
        trigger_id: str,
        results: list[dict[str, Any]],
    ) -> None:
        await self._settle_turn([(p, None) for p in enabled], participants, history, trigger_id, results)

    async def _settle_turn(
        self,
        runs: list[tuple[ParticipantRecord, anyio.CancelScope | None]],
        participants: list[ParticipantRecord],
        history: list[MessageRecord],
        trigger_id: str,
        results: list[dict[str, Any]],
    ) -> None:
        """Run these agents at once (each with its claimed scope, or one claimed now); then `all:complete`."""
        try:
            async with anyio.create_task_group() as tg:
                for participant, scope in runs:
                    tg.start_soon(self._run_and_collect, participant, participants, history, trigger_id, scope, results)
        finally:
            with anyio.CancelScope(shield=True):
                await send_all_complete(self._emit, runs[0][0].conversation_id, trigger_id)

    @contextmanager
    def _claim(self, target: ParticipantRecord, exclusive: bool = True) -> Iterator[anyio.CancelScope]:
        """Register the agent's cancel scope (chat:cancel finds it here); `exclusive` refuses a running agent."""
        key = (target.conversation_id, target.conversation_agent_id)
        if exclusive and self._running.get(key):
            raise Busy("That agent is still answering in this conversation")
        scope = anyio.CancelScope()
        self._running[key].add(scope)
        try:
            yield scope
        finally:
            self._running[key].discard(scope)
            if not self._running[key]:
                del self._running[key]

    async def _run_and_collect(
        self,
        target: ParticipantRecord,
        participants: list[ParticipantRecord],
        history: list[MessageRecord],
        trigger_id: str,
        scope: anyio.CancelScope | None,
        results: list[dict[str, Any]],
    ) -> None:
        updates = AgentUpdates(self._emit, target, trigger_id)
        try:
            request = build_agent_context(target, participants, history, trigger_id).request
        except MissingLlmConfig:
            request = {}  # the provider lookup fails it as a configuration error, the usual way
        run = AgentRun(participant=target, trigger_id=trigger_id, request=request, updates=updates)
        if scope is not None:
            results.append(await self._caller.call(run, scope))
            return
        with self._claim(target, exclusive=False) as own_scope:  # released as soon as this agent settles
            results.append(await self._caller.call(run, own_scope))

    async def _trigger(self, conversation_id: str, message_id: str) -> MessageRecord:
        trigger = await self._db.run(turns.get_message, message_id)
        if trigger is None or trigger.conversation_id != conversation_id:
            raise NotFound("No such message in this conversation", entity="message", id=message_id)
        if trigger.role not in ("user", "system"):
            raise RuleViolation("A turn is started by a user or system message, not by an agent's reply")
        return trigger

    # --- control -------------------------------------------------------------------------------------

    def cancel(self, conversation_id: str, conversation_agent_id: str | None) -> int:
        cancelled = 0
        for (conversation, agent), scopes in list(self._running.items()):
            if conversation == conversation_id and conversation_agent_id in (None, agent):
                for scope in scopes:
                    if not scope.cancel_called:
                        scope.cancel()
                        cancelled += 1
        return cancelled

    def cancel_all(self) -> None:
        for scopes in list(self._running.values()):
            for scope in scopes:
                scope.cancel()

    async def build_context(self, conversation_id: str, agent_id: str, user_message_id: str | None) -> dict[str, Any]:
        participants = await self._db.run(turns.load_participants, conversation_id)
        target = _find_participant(participants, agent_id)
        history = await self._db.run(turns.load_history, conversation_id)
        try:
            context: AgentContext = build_agent_context(target, participants, history, user_message_id)
        except TriggerNotFound:
            raise NotFound("No such message in this conversation", entity="message", id=user_message_id) from None
        except MissingLlmConfig:
            raise RuleViolation("This agent has no LLM configuration") from None
        return to_wire(context)

    # --- providers -----------------------------------------------------------------------------------

    async def _provider_for(self, participant: ParticipantRecord) -> Provider:
        config = participant.llm_config
        if config is None:
            raise ProviderError("configuration", safe_message=NO_LLM_CONFIG)
        api_key = None
        if config.provider != "demo":
            try:
                api_key = await self._secrets.get(config.id, in_keychain=config.key_in_keychain)
            except SecretStorageError:
                raise ProviderError("configuration", safe_message=KEY_UNREADABLE) from None
        settings = ProviderSettings(config.provider, config.base_url, api_key, config.use_auth_header)
        cached = self._providers.get(config.id)
        if cached is not None and cached[0] == settings:
            return cached[1]
        await import_sdk(config.provider)
        provider = open_provider(settings)
        self._providers[config.id] = (settings, provider)
        if cached is not None:
            await _close_quietly(cached[1])
        return provider

    async def aclose(self) -> None:
        providers = [provider for _, provider in self._providers.values()]
        self._providers.clear()
        with anyio.move_on_after(0.5):
            for provider in providers:
                await _close_quietly(provider)


async def _close_quietly(provider: Provider) -> None:
    try:
        await provider.aclose()
    except Exception as exc:  # closing is best effort; a failure here must not hide the real outcome
        logger.bind(exc_type=type(exc).__name__).debug("provider close failed")


def _find_participant(participants: list[ParticipantRecord], wanted_id: str) -> ParticipantRecord:
    """By conversation agent id or agent id."""
    for participant in participants:
        if wanted_id in (participant.conversation_agent_id, participant.agent_id):
            return participant
    raise NotFound("That agent is not in this conversation", entity="conversationAgent", id=wanted_id)


def _processing_result(user_message_id: str, results: list[dict[str, Any]], started: float) -> dict[str, Any]:
    statuses = [result["status"] for result in results]
    return {
        "userMessageId": user_message_id,
        "totalAgents": len(results),
        "successfulAgents": statuses.count("complete"),
        "failedAgents": statuses.count("error"),
        "cancelledAgents": statuses.count("cancelled"),
        "totalDurationMs": round((anyio.current_time() - started) * 1000),
        "agentResults": results,
    }
