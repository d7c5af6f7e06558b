"""How each agent run's request is built (`agent_call.Plan`): its context fitted to its budget (CONTRACT §5c), or
the reason no call may be made — no llm config, or a triggering message too long for the agent's model."""

from __future__ import annotations

from sidecar.chat.agent_call import Plan, Prepared
from sidecar.chat.context import (
    AutoRunFacts,
    ContextTooLong,
    Counting,
    TriggerNotFound,
    build_agent_context,
    thinking_context,
)
from sidecar.chat.provider_pool import NO_LLM_CONFIG
from sidecar.chat.request_bodies import MissingLlmConfig
from sidecar.chat.runs import Run
from sidecar.chat.tokens import Calibration
from sidecar.providers.base import ProviderError
from storage.records import ParticipantRecord
from storage.repositories.history_reads import HistoryWindow

# CONTRACT §5c: the triggering message alone does not fit this agent's budget; siblings with bigger windows answer.
MESSAGE_TOO_LONG = (
    "This message is too long for this agent's model. Shorten it, or give the agent a larger context window "
    "(or a smaller max tokens) in its settings."
)


def plan_for(
    run: Run,
    participants: list[ParticipantRecord],
    window: HistoryWindow,
    auto_facts: AutoRunFacts | None,
    calibration: Calibration,
) -> Plan:
    """How to build this run's request, under a history cap (the one shrunk retry after a provider's overflow)."""

    def plan(history_cap: float | None) -> Prepared:
        counting = Counting(calibration, history_cap, window.older_visible, tuple(window.older_visible_ids))
        target = run.participant
        try:
            ctx = build_agent_context(target, participants, window.rows, run.trigger_id, auto_facts, counting)
        except MissingLlmConfig:  # no config, or one whose provider this sidecar does not know
            missing = target.llm_config is None
            return Prepared(None, ProviderError("configuration", safe_message=NO_LLM_CONFIG if missing else None))
        except TriggerNotFound:  # deleted while the turn started: the turn was cancelled, so this is never reported
            return Prepared(None, ProviderError("unknown"))
        except ContextTooLong as too_long:  # fails before any provider call
            context = {"tokens": too_long.tokens, "limit": too_long.limit, "droppedCount": 0}
            error = ProviderError("context_length", retryable=False, safe_message=MESSAGE_TOO_LONG)
            return Prepared(None, error, context)
        return Prepared(
            ctx.request,
            context=thinking_context(ctx.budget),
            history_tokens=ctx.budget.history_tokens,
            raw_input_tokens=ctx.raw_input_tokens,
            model=(ctx.provider, ctx.model),
        )

    return plan
