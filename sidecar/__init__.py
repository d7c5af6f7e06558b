"""chat-sidecar: the JSON-RPC 2.0 stdio backend of a multi-agent desktop chat app."""

__version__ = "0.1.0"
