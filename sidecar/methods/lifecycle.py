"""`initialize`, `ping`, `shutdown`, `exit`."""

from __future__ import annotations

from typing import Any

from sidecar.services import Services


async def initialize(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return services.lifecycle.initialize(params)


async def ping(services: Services, params: dict[str, Any]) -> dict[str, Any]:
    return {}


async def shutdown(services: Services, params: dict[str, Any]) -> None:
    await services.lifecycle.shutdown(own_request=True)


async def exit_process(services: Services, params: dict[str, Any]) -> None:
    services.lifecycle.request_exit("exit notification")
