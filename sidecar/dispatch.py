"""Frames in, responses out: one task and cancel scope per request, batches, `$/cancelRequest`, and the one
place where exceptions become JSON-RPC errors. The only importer of jsonrpcserver.
"""

from __future__ import annotations

import inspect
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any

import anyio
from jsonrpcserver import Success
from jsonrpcserver.async_dispatcher import dispatch_request
from jsonrpcserver.dispatcher import create_request, not_notification, to_response
from jsonrpcserver.exceptions import JsonRpcError
from jsonrpcserver.response import to_serializable

from sidecar.errors import InvalidParams, RequestCancelled, ShuttingDown, SidecarError, from_storage_error
from sidecar.logs import logger
from sidecar.services import Handler, Services
from sidecar.transport.framing import MAX_JSON_DEPTH, BadFrame, Frame, json_depth_exceeds
from sidecar.validation import validate_params
from storage.db import DatabaseClosed
from storage.errors import StorageError

RequestId = str | int | None
Send = Callable[[Any], Awaitable[None]]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INTERNAL_ERROR = -32603

# Methods a client may send while the sidecar is shutting down.
_ALWAYS_ACCEPTED = frozenset({"exit", "$/cancelRequest"})

current_request_id: ContextVar[RequestId] = ContextVar("current_request_id", default=None)


def error_response(request_id: RequestId, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "error": error, "id": request_id}


class Dispatcher:
    def __init__(self, methods: Mapping[str, Handler], services: Services, send: Send) -> None:
        self._services = services
        self._send = send
        self._methods = {name: self._adapt(name, handler) for name, handler in methods.items()}
        self._inflight: dict[RequestId, anyio.CancelScope] = {}

    async def handle_frame(self, frame: Frame) -> None:
        """Answer one frame (a request, a notification or a batch); never raises for bad input."""
        try:
            reply = await self._answer_frame(frame)
        except Exception as exc:  # a bug of ours must cost one answer, never the process
            ref = uuid.uuid4().hex[:12]
            logger.opt(exception=exc).bind(ref=ref).error("internal error while answering a frame")
            reply = error_response(None, INTERNAL_ERROR, "Internal error", {"ref": ref})
        if reply is not None:
            await self._send(reply)

    async def _answer_frame(self, frame: Frame) -> Any:
        if isinstance(frame, BadFrame):
            if frame.kind == "too_large":
                return error_response(None, INVALID_REQUEST, "Invalid request", {"kind": "too_large"})
            return error_response(None, PARSE_ERROR, "Parse error", {"kind": frame.kind, "reason": frame.reason})
        if json_depth_exceeds(frame):
            return error_response(_readable_id(frame), INVALID_REQUEST, "Invalid request", {"kind": "too_deep"})
        try:
            message = json.loads(frame.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return error_response(None, PARSE_ERROR, "Parse error")
        if b"\\u" in frame and _has_lone_surrogate(message):
            return error_response(
                _id_of(message), INVALID_REQUEST, "Invalid request", {"kind": "invalid_unicode"}
            )
        if isinstance(message, list):
            if not message:
                return error_response(None, INVALID_REQUEST, "Invalid request")
            return await self._answer_batch(message)
        return await self._answer_message(message)

    async def _answer_batch(self, batch: list[Any]) -> list[Any] | None:
        replies: list[Any] = [None] * len(batch)

        async def answer_element(index: int, element: Any) -> None:
            replies[index] = await self._answer_message(element)

        async with anyio.create_task_group() as tg:
            for index, element in enumerate(batch):
                tg.start_soon(answer_element, index, element)
        answered = [reply for reply in replies if reply is not None]
        return answered or None

    async def _answer_message(self, message: Any) -> Any:
        if isinstance(message, dict) and message.get("params", {}) is None:
            message = {k: v for k, v in message.items() if k != "params"}  # LSP clients send null for "none"
        problem = _envelope_problem(message)
        if problem is not None:
            data = {"kind": "invalid_request", "reason": problem}
            return error_response(_id_of(message), INVALID_REQUEST, "Invalid request", data)
        method = message.get("method")
        is_request = "id" in message
        if method == "$/cancelRequest":
            self._cancel((message.get("params") or {}).get("id") if isinstance(message.get("params"), dict) else None)
            return _null_result(message) if is_request else None
        lifecycle = self._services.lifecycle
        if not lifecycle.accepting and method not in _ALWAYS_ACCEPTED and is_request and isinstance(method, str):
            error = ShuttingDown("The sidecar is shutting down")
            return error_response(_id_of(message), error.code, error.message, error.data)
        if not is_request:
            await self._dispatch(message)  # jsonrpcserver answers nothing for a notification
            return None
        return await self._answer_request(message)

    async def _answer_request(self, message: dict[str, Any]) -> Any:
        request_id = message["id"]
        token = current_request_id.set(request_id if _is_plain_id(request_id) else None)
        try:
            return await self._dispatch(message)
        finally:
            current_request_id.reset(token)

    async def _dispatch(self, message: dict[str, Any]) -> Any:
        """jsonrpcserver finds the method, binds the params to it, calls it and shapes the response.

        Its per-message step is called directly: the public entry point checks the envelope again with
        jsonschema (`_envelope_problem` has done that) and runs even one request under `asyncio.gather`,
        a task per request that cost more than half of a `ping`'s time in the sidecar.
        """
        outcome = await dispatch_request(self._methods, self._services, create_request(message))
        return to_serializable(to_response(*outcome)) if not_notification(outcome) else None

    def _cancel(self, request_id: Any) -> None:
        scope = self._inflight.get(request_id) if _is_plain_id(request_id) else None
        if scope is not None:
            scope.cancel()


    def _adapt(self, name: str, handler: Handler) -> Callable[..., Awaitable[Any]]:
        """Wrap a handler for jsonrpcserver: params checked against the schema, errors mapped, nothing leaked.

        The request's cancel scope is opened here, around the handler itself, so `$/cancelRequest`
        cancels exactly that call and a shield inside the handler holds.
        """

        async def call(services: Services, /, *positional: Any, **params: Any) -> Any:
            request_id = current_request_id.get()
            with anyio.CancelScope() as scope:
                if request_id is not None:
                    self._inflight[request_id] = scope
                try:
                    result = await _run_handler(name, handler, services, positional, params)
                finally:
                    if request_id is not None and self._inflight.get(request_id) is scope:
                        del self._inflight[request_id]
            if scope.cancelled_caught:
                cancelled = RequestCancelled("Request cancelled")
                raise JsonRpcError(cancelled.code, cancelled.message) from None
            return Success(result)

        call.__name__ = name
        # jsonrpcserver calls `inspect.signature(method).bind(...)` on every request; a precomputed one is 3x cheaper.
        call.__signature__ = inspect.signature(call)  # type: ignore[attr-defined]
        return call


async def _run_handler(
    name: str, handler: Handler, services: Services, positional: tuple[Any, ...], params: dict[str, Any]
) -> Any:
    try:
        if positional:
            raise InvalidParams("params", "params must be an object")
        return await handler(services, validate_params(name, params))
    except SidecarError as exc:
        raise JsonRpcError(exc.code, exc.message, exc.data or None) from None
    except StorageError as exc:  # raised by repositories (and through the chat engine); the table gives the wire form
        error = from_storage_error(exc)
        raise JsonRpcError(error.code, error.message, error.data or None) from None
    except DatabaseClosed:  # a request that raced `shutdown` past the database's close
        stopping = ShuttingDown("The sidecar is shutting down")
        raise JsonRpcError(stopping.code, stopping.message, stopping.data) from None
    except Exception as exc:
        ref = uuid.uuid4().hex[:12]
        logger.opt(exception=exc).bind(method=name, ref=ref).error("internal error in a method")
        raise JsonRpcError(INTERNAL_ERROR, "Internal error", {"ref": ref}) from None


_ENVELOPE_MEMBERS = frozenset({"jsonrpc", "id", "method", "params"})


def _envelope_problem(message: Any) -> str | None:
    """Why a message is not a JSON-RPC 2.0 request or notification, or None when it is one."""
    if not isinstance(message, dict):
        return "a request must be an object"
    if message.get("jsonrpc") != "2.0":
        return 'jsonrpc must be "2.0"'
    if not isinstance(message.get("method"), str):
        return "method must be a string"
    if "id" in message and message["id"] is not None and not _is_plain_id(message["id"]):
        return "id must be a string, an integer or null"
    if "params" in message and not isinstance(message["params"], dict | list):
        return "params must be an object"
    extra = sorted(set(message) - _ENVELOPE_MEMBERS)
    if extra:
        return f"unknown member: {extra[0]}"
    return None


def _null_result(message: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "result": None, "id": message.get("id")}


def _is_plain_id(request_id: Any) -> bool:
    return isinstance(request_id, str | int) and not isinstance(request_id, bool)


def _id_of(message: Any) -> RequestId:
    if isinstance(message, dict) and _is_plain_id(message.get("id")):
        return message["id"]
    return None


def _readable_id(frame: bytes) -> RequestId:
    """The id of a frame too deep to take, when the parser can still read it."""
    try:
        return _id_of(json.loads(frame))
    except (ValueError, RecursionError):
        return None


def _has_lone_surrogate(value: Any, depth: int = 0) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if depth > MAX_JSON_DEPTH:
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k, depth + 1) or _has_lone_surrogate(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item, depth + 1) for item in value)
    return False
