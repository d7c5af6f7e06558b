"""What a turn reads before it calls anyone, bounded by the agents' budgets (CONTRACT §5c): never the whole history.

The history is read newest first, page by page, from the turn's trigger back, until every agent that may answer has
more than its budget's worth (counted as `context` counts, but without the `Name: ` prefixes, so never more than it),
or the conversation's start. The visible rows older than that are counted, not read. Who speaks next, and the
replies a re-run trigger already has, come from their own small queries.

Each function here is one unit of work, run in the database's lane (`Database.run`) inside one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sidecar.catalogue import context_window
from sidecar.chat.budget import Limits
from sidecar.chat.context import row_cost
from sidecar.chat.sampling import resolve_sampling
from sidecar.chat.tokens import Calibration
from storage.ids import IdFactory
from storage.records import ChatSettings, MessageRecord, ParticipantRecord
from storage.repositories import conversations, history_reads, turns
from storage.repositories.history_reads import HistoryWindow


@dataclass(frozen=True)
class TurnReads:
    settings: ChatSettings
    trigger: MessageRecord | None
    participants: list[ParticipantRecord]
    window: HistoryWindow
    last_speaker: str | None = None  # the conversation agent that last completed a reply (round-robin)
    earlier_replies: dict[str, str] = field(default_factory=dict)  # a re-run trigger's active replies, by agent


def start_turn(ids: IdFactory, conversation_id: str, content: str, calibration: Calibration) -> TurnReads:
    """Save the user's message, then read what the turn needs: one unit of work before the first provider call."""

    def read() -> TurnReads:
        settings = conversations.chat_settings(conversation_id)
        trigger = turns.add_user_message(ids, conversation_id, content)
        participants, window = _participants_and_window(conversation_id, trigger.id, calibration, None)
        return TurnReads(settings, trigger, participants, window, _last_speaker(settings, conversation_id))

    return turns.in_one_transaction(read)


def load_turn(conversation_id: str, trigger_id: str, calibration: Calibration) -> TurnReads:
    """What a turn on an existing message needs (its agents' earlier replies to it become versions)."""

    def read() -> TurnReads:
        settings = conversations.chat_settings(conversation_id)
        participants, window = _participants_and_window(conversation_id, trigger_id, calibration, None)
        return TurnReads(
            settings,
            None,
            participants,
            window,
            _last_speaker(settings, conversation_id),
            history_reads.active_replies_to(trigger_id),
        )

    return turns.in_one_transaction(read)


def load_window(
    conversation_id: str, up_to_id: str | None, calibration: Calibration, only: str | None = None
) -> tuple[list[ParticipantRecord], HistoryWindow]:
    """The participants and the history up to `up_to_id` (None: the newest row), read for every enabled agent's
    budget, or for the one conversation agent `only` (which may be disabled)."""
    return turns.in_one_transaction(lambda: _participants_and_window(conversation_id, up_to_id, calibration, only))


def _participants_and_window(
    conversation_id: str, up_to_id: str | None, calibration: Calibration, only: str | None
) -> tuple[list[ParticipantRecord], HistoryWindow]:
    participants = turns.load_participants(conversation_id)
    if only is not None:
        readers = [p for p in participants if only in (p.conversation_agent_id, p.agent_id)]
    else:
        readers = [p for p in participants if p.enabled]
    window = history_reads.read_back(conversation_id, up_to_id, enough_for(readers, calibration))
    return participants, window


def _last_speaker(settings: ChatSettings, conversation_id: str) -> str | None:
    return history_reads.last_completed_speaker(conversation_id) if settings.mode == "round-robin" else None


def load_sizes(conversation_id: str) -> tuple[list[ParticipantRecord], dict[str | None, tuple[int, int, int]]]:
    """The participants and the sizes of the visible history per author (`conversations:contextUsage`)."""
    return turns.in_one_transaction(
        lambda: (turns.load_participants(conversation_id), history_reads.visible_sizes(conversation_id))
    )


def raw_need(participant: ParticipantRecord, calibration: Calibration) -> float:
    """Uncalibrated tokens of history past which this agent's budget is surely full (its input limit, the
    system prompt not even taken off)."""
    if participant.llm_config is None:
        return 0.0  # it fails before any call: no history needed
    provider = participant.llm_config.provider
    window = context_window(provider, participant.model, participant.context_window)
    reserved = resolve_sampling(participant, provider, participant.model).max_tokens
    limit = Limits(window, reserved, 0).input_limit
    return limit / calibration.factor((provider, participant.model))


def enough_for(readers: Iterable[ParticipantRecord], calibration: Calibration) -> Callable[[MessageRecord], bool]:
    """A `read_back` stop test: True once the visible rows read are more than every reader's budget can hold."""
    need = max((raw_need(p, calibration) for p in readers), default=0.0)
    total = 0.0

    def enough(row: MessageRecord) -> bool:
        nonlocal total
        if row.included and row.status == "complete" and row.role != "system":
            total += row_cost(row.content)
        return total > need

    return enough


@dataclass(frozen=True)
class AutoReads:
    """What an auto run reads before each speaker (sequential) or round."""

    participants: list[ParticipantRecord]
    window: HistoryWindow
    last_speaker: str | None  # the conversation agent that last completed a reply
    latest: MessageRecord | None  # the newest settled user or agent row: what the speaker answers
    own_rows: list[MessageRecord]  # the run's own messages, from its starting message on (`context_full`)


def load_auto_state(conversation_id: str, run_start_id: str, calibration: Calibration) -> AutoReads:
    def read() -> AutoReads:
        participants, window = _participants_and_window(conversation_id, None, calibration, None)
        return AutoReads(
            participants,
            window,
            history_reads.last_completed_speaker(conversation_id),
            history_reads.latest_settled(conversation_id, window),  # in the window, as a rule: no query
            history_reads.rows_since(conversation_id, run_start_id, window),
        )

    return turns.in_one_transaction(read)
