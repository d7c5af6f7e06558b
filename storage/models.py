"""Peewee models of the tables `storage.migrations` creates; bound to a database at run time.

Foreign keys are plain columns here (the constraints live in the migration DDL) so a query never
lazy-loads a row behind our back; joins name their `on` condition explicitly.
"""

from __future__ import annotations

from peewee import BigIntegerField, BooleanField, CharField, FloatField, IntegerField, Model, TextField


class BaseModel(Model):
    class Meta:
        database = None  # bound with `sqlite.bind(MODELS)`; no module-level connection


class AppMeta(BaseModel):
    """Small key/value facts about the file itself (e.g. that the built-in rows were seeded)."""

    key = CharField(primary_key=True)
    value = TextField()

    class Meta:
        table_name = "app_meta"


class LlmConfig(BaseModel):
    id = CharField(primary_key=True)
    custom_name = CharField(unique=True)
    provider = CharField()
    base_url = TextField(null=True)
    use_auth_header = BooleanField(default=True)
    # Whether the OS keychain holds a key for this row: a flag, never the key itself.
    key_in_keychain = BooleanField(default=False)
    created_at = BigIntegerField()
    updated_at = BigIntegerField()
    max_concurrency = IntegerField(default=8)  # provider calls at once on this config (1..32); step 3

    class Meta:
        table_name = "llm_configs"


class Role(BaseModel):
    id = CharField(primary_key=True)
    name = CharField()
    description = TextField(default="")
    system_prompt = TextField()
    created_at = BigIntegerField()
    updated_at = BigIntegerField()

    class Meta:
        table_name = "roles"


class Personality(BaseModel):
    id = CharField(primary_key=True)
    name = CharField()
    behaviors = TextField(default="{}")  # JSON object trait -> 0..100
    custom_instructions = TextField(default="")
    created_at = BigIntegerField()
    updated_at = BigIntegerField()

    class Meta:
        table_name = "personalities"


class Agent(BaseModel):
    id = CharField(primary_key=True)
    name = CharField()
    llm_config_id = CharField()
    model = CharField()
    role_id = CharField()
    personality_id = CharField()
    system_prompt = TextField(null=True)
    personality_behaviors = TextField(null=True)  # JSON object trait -> -100..100
    temperature = FloatField(null=True)
    max_tokens = IntegerField(null=True)
    top_p = FloatField(null=True)
    timeout_ms = IntegerField(default=60000)
    created_at = BigIntegerField()
    updated_at = BigIntegerField()
    context_window = IntegerField(null=True)  # tokens; null: the model catalogue's (added by step 6)

    class Meta:
        table_name = "agents"


class Conversation(BaseModel):
    id = CharField(primary_key=True)
    title = CharField()
    chat_mode = CharField(default="manual")
    created_at = BigIntegerField()
    updated_at = BigIntegerField()
    auto_settings = TextField(null=True)  # JSON; null means every default (added by step 4)

    class Meta:
        table_name = "conversations"


class ConversationAgent(BaseModel):
    id = CharField(primary_key=True)
    conversation_id = CharField()
    agent_id = CharField()
    enabled = BooleanField(default=True)
    display_order = IntegerField()
    color = CharField()
    created_at = BigIntegerField()  # `addedAt` on the wire

    class Meta:
        table_name = "conversation_agents"


class Message(BaseModel):
    id = CharField(primary_key=True)
    conversation_id = CharField()
    conversation_agent_id = CharField(null=True)
    role = CharField()
    content = TextField()
    included = BooleanField(default=True)
    status = CharField(default="complete")
    reply_to_id = CharField(null=True)
    created_at = BigIntegerField()
    usage = TextField(null=True)  # JSON
    # Internal: the agent an error system message is about, so a retry can delete it. Never on the wire.
    about_conversation_agent_id = CharField(null=True)
    # end | max_tokens | content_filter for a settled agent reply; null otherwise (user/system rows, streaming). Step 3.
    stop_reason = CharField(null=True)
    # Versions (step 5): the group label (the first version's id; null on the first version and on user/system
    # rows), the number within the group (1..n, kept dense on delete by a trigger), and the one shown.
    version_of_id = CharField(null=True)
    version = IntegerField(default=1)
    active = BooleanField(default=True)
    edited_at = BigIntegerField(null=True)  # set by messages:update (step 5)

    class Meta:
        table_name = "messages"


MODELS: list[type[BaseModel]] = [AppMeta, LlmConfig, Role, Personality, Agent, Conversation, ConversationAgent, Message]
