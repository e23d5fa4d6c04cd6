"""A local HTTP proxy in front of a JSON-RPC node, for fault injection at the transport.

``RpcProxy(upstream_url)`` listens on 127.0.0.1 (a free port chosen by the OS) in the running event
loop and forwards each POST to the upstream, unless its ``mode`` says otherwise:

- ``pass``: forward unchanged;
- ``drop``: close the connection without answering;
- ``hang``: accept and never answer (a blackholed endpoint);
- ``delay``: wait ``delay_s`` then forward;
- ``http429``: HTTP 429 with ``Retry-After: <retry_after>``;
- ``http500``: HTTP 500;
- ``rpc32005``: HTTP 200 with a JSON-RPC error ``-32005 limit exceeded`` (per request of a batch);
- ``garbage``: HTTP 200 with a body that is not JSON;
- ``wrong_id``: forward, then change every response id (a confused load balancer).

``requests`` counts the requests received. Use as ``async with RpcProxy(url) as proxy:``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, Literal

import httpx

Mode = Literal["pass", "drop", "hang", "delay", "http429", "http500", "rpc32005", "garbage", "wrong_id"]


class RpcProxy:
    def __init__(self, upstream: str, mode: Mode = "pass", *, delay_s: float = 0.0, retry_after: int = 1) -> None:
        self.upstream = upstream
        self.mode: Mode = mode
        self.delay_s = delay_s
        self.retry_after = retry_after
        self.requests = 0
        self._server: asyncio.Server | None = None
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> RpcProxy:
        self._client = httpx.AsyncClient(timeout=30)
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None and self._client is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)
        await self._client.aclose()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.decode("latin-1").split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length) if length else b""
            self.requests += 1
            mode = self.mode
            if mode == "drop":
                return
            if mode == "hang":
                await asyncio.sleep(3600)
                return
            if mode == "delay":
                await asyncio.sleep(self.delay_s)
            status, headers, payload = await self._answer(mode, body)
            lines = [f"HTTP/1.1 {status} X", f"content-length: {len(payload)}", *headers, "", ""]
            writer.write("\r\n".join(lines).encode() + payload)
            await writer.drain()

    async def _answer(self, mode: Mode, body: bytes) -> tuple[int, list[str], bytes]:
        json_type = "content-type: application/json"
        if mode == "http429":
            return 429, [f"retry-after: {self.retry_after}"], b"too many requests"
        if mode == "http500":
            return 500, [], b"internal error"
        if mode == "garbage":
            return 200, [json_type], b"<html>\x00\xff not json"
        if mode == "rpc32005":
            request = json.loads(body)

            def err(r: dict[str, Any]) -> dict[str, Any]:
                return {"jsonrpc": "2.0", "id": r.get("id"), "error": {"code": -32005, "message": "limit exceeded"}}

            out: Any = [err(r) for r in request] if isinstance(request, list) else err(request)
            return 200, [json_type], json.dumps(out).encode()
        assert self._client is not None
        response = await self._client.post(self.upstream, content=body, headers={"content-type": "application/json"})
        payload = response.content
        if mode == "wrong_id":
            data = json.loads(payload)
            items = data if isinstance(data, list) else [data]
            for item in items:
                item["id"] = 987654321
            payload = json.dumps(data).encode()
        return response.status_code, [json_type], payload
