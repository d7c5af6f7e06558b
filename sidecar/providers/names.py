"""The names of the providers this sidecar speaks, one module `sidecar/providers/<name>.py` each.

Kept apart from `registry` so that start-up (`initialize`'s capabilities) can list them without importing the
provider modules (~14 ms); `registry` builds its specs from this list and checks each module's name.
"""

PROVIDER_NAMES: tuple[str, ...] = ("openai", "anthropic", "demo")
