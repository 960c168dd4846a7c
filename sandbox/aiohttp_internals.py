"""Everything the sandbox takes from aiohttp internals, mirroring aiohttp 3.14.5 exactly.

aiohttp is pinned to 3.14.5 in requirements-dev.txt; this module copies or subclasses its
private code, so re-check it against that version's source whenever the pin changes.

API Gateway closes a connection with 1009 when one frame exceeds 32 KB and splits outgoing
messages into frames of at most 32 KB. aiohttp has neither a per-frame limit nor a way to
send a fragmented message, so this module (1) swaps a frame-limited reader into
WebSocketResponse by copying its private `_post_start`, and (2) packs the fragmented frames
itself and writes them to the transport (sources: `web_ws.py`, `_websocket/reader_py.py`).
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp._websocket.reader_py import WebSocketDataQueue as _PyDataQueue
from aiohttp._websocket.reader_py import WebSocketReader as _PyReader
from aiohttp.helpers import DEFAULT_CHUNK_SIZE
from aiohttp.http_websocket import WebSocketError, WebSocketWriter
from aiohttp.web_request import BaseRequest

_DATA_OPCODES = frozenset({WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION})


class _FrameLimitReader(_PyReader):
    """aiohttp's pure-Python frame reader (the C one cannot be subclassed) plus a frame limit."""

    def __init__(self, *args: Any, frame_limit: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._frame_limit = frame_limit

    def _handle_frame(
        self, fin: bool, opcode: int, payload: bytes | bytearray, compressed: int
    ) -> None:
        if opcode in _DATA_OPCODES and len(payload) > self._frame_limit:
            raise WebSocketError(
                WSCloseCode.MESSAGE_TOO_BIG,
                f"Frame size {len(payload)} exceeds limit {self._frame_limit}",
            )
        super()._handle_frame(fin, opcode, payload, compressed)


class FrameLimitedWebSocket(web.WebSocketResponse):
    """A WebSocketResponse with a per-frame limit that sends long messages in frames of that size.

    The message limit is aiohttp's own `max_msg_size`; a frame over `frame_limit` ends the
    socket with an ERROR message whose WebSocketError carries code 1009.
    """

    def __init__(self, *, frame_limit: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._frame_limit = frame_limit
        self._transport: asyncio.Transport | None = None

    def _post_start(
        self, request: BaseRequest, protocol: str | None, writer: WebSocketWriter
    ) -> None:
        # aiohttp 3.14.5's WebSocketResponse._post_start, with our reader swapped in.
        self._ws_protocol = protocol
        self._writer = writer
        self._reset_heartbeat()
        loop = self._loop
        assert loop is not None
        self._reader = _PyDataQueue(request._protocol, DEFAULT_CHUNK_SIZE, loop=loop)
        self._parser = _FrameLimitReader(
            self._reader,
            self._max_msg_size,
            compress=bool(self._compress),
            decode_text=self._decode_text,
            frame_limit=self._frame_limit,
        )
        callback = None if self._heartbeat is None else self._on_data_received
        request.protocol.set_parser(self._parser, data_received_cb=callback)
        request.protocol.keep_alive(False)
        self._transport = request.transport

    async def send_message(self, payload: bytes, opcode: WSMsgType) -> bool:
        """Send one text or binary message, fragmented above the frame limit.

        Returns False when the transport is already closing. Raises ConnectionError or
        RuntimeError when the socket breaks while sending.
        """
        transport = self._transport
        if len(payload) <= self._frame_limit or transport is None:
            await self.send_frame(payload, opcode)
            return True
        if transport.is_closing():
            return False
        transport.write(_fragments(payload, opcode, self._frame_limit))
        return True


def _fragments(payload: bytes, opcode: WSMsgType, frame_limit: int) -> bytes:
    """`payload` as a fragmented message of unmasked frames of at most `frame_limit` bytes."""
    out = bytearray()
    chunks = [payload[i : i + frame_limit] for i in range(0, len(payload), frame_limit)]
    for index, chunk in enumerate(chunks):
        fin = 0x80 if index == len(chunks) - 1 else 0
        first = fin | (int(opcode) if index == 0 else 0)
        size = len(chunk)
        if size < 126:
            out += struct.pack("!BB", first, size)
        elif size < 65536:
            out += struct.pack("!BBH", first, 126, size)
        else:
            out += struct.pack("!BBQ", first, 127, size)
        out += chunk
    return bytes(out)
