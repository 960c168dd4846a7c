"""The fan-out candidates the engine was chosen from, for the benchmarks only.

The engine itself (`chat.fanout.FanoutEngine`) takes any `Transport`: these two run the same
signing, retries and worker threads over urllib3's connection pool and over `http.client`,
so that only the HTTP layer differs. `AiohttpFanout` is asyncio + aiohttp (one thread; not
in the Lambda runtime, so it would have to be bundled); `boto3_notifier` is today's path.
Over HTTPS each verifies the server against `ca_certs` (the benchmark passes the stand-in's
test CA, which it also names in `AWS_CA_BUNDLE` for botocore and the engine).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from botocore.awsrequest import AWSRequest

from chat.fanout import SERVICE, NotSentError, TransportError
from chat.frames import Frame, encode
from chat.ports import DeliveryReport


class Urllib3Transport:
    """A urllib3 connection pool of `maxsize` keep-alive connections (block: never more)."""

    def __init__(
        self,
        endpoint_url: str,
        *,
        maxsize: int,
        timeout: float = 5.0,
        ca_certs: str | None = None,
    ) -> None:
        import urllib3  # noqa: PLC0415

        self._errors: tuple[type[BaseException], ...] = (urllib3.exceptions.HTTPError, OSError)
        tls: dict[str, Any] = {}
        if endpoint_url.startswith("https:"):
            tls = {"ca_certs": ca_certs, "cert_reqs": "CERT_REQUIRED"}
        self._pool = urllib3.connectionpool.connection_from_url(
            endpoint_url, maxsize=maxsize, block=True, timeout=urllib3.Timeout(timeout), **tls
        )

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: Mapping[str, str],
        timeout: float = 5.0,
    ) -> tuple[int, str]:
        import urllib3  # noqa: PLC0415

        try:
            response = self._pool.urlopen(
                method,
                path,
                body=body,
                headers=dict(headers),
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=True,
            )
        except urllib3.exceptions.NewConnectionError as error:
            raise NotSentError(str(error)) from error
        except self._errors as error:
            raise TransportError(str(error)) from error
        return response.status, response.headers.get("x-amzn-ErrorType", "")

    def close(self) -> None:
        self._pool.close()


class AiohttpFanout:
    """asyncio + aiohttp on one thread: `concurrency` posts in flight, signed by SigV4Auth.

    Same rules as the engine for 410 (gone) and order per connection; no retries (the
    benchmark's stand-in does not throttle), which only flatters it.
    """

    def __init__(
        self,
        endpoint_url: str,
        *,
        region: str,
        credentials: Any,
        concurrency: int,
        ca_certs: str | None = None,
    ):
        parts = urlsplit(endpoint_url)
        self._ssl: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=ca_certs) if parts.scheme == "https" else False
        )
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._base = parts.path.rstrip("/")
        self._host = parts.netloc
        self._region = region
        self._credentials = credentials
        self._concurrency = concurrency
        self._loop = asyncio.new_event_loop()
        self._session: Any = None

    def send(self, deliveries: Mapping[str, Sequence[Frame]]) -> DeliveryReport:
        return self._loop.run_until_complete(self._send(deliveries))

    async def _send(self, deliveries: Mapping[str, Sequence[Frame]]) -> DeliveryReport:
        import aiohttp  # noqa: PLC0415
        from botocore.auth import SigV4Auth  # noqa: PLC0415

        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._concurrency, ssl=self._ssl)
            )
        frozen = self._credentials.get_frozen_credentials()
        signer = SigV4Auth(frozen, SERVICE, self._region)
        encoded: dict[int, bytes] = {}
        jobs = iter(list(deliveries.items()))
        gone: set[str] = set()
        failed = 0

        async def worker() -> None:
            nonlocal failed
            for connection_id, batch in jobs:
                for frame in batch:
                    data = encoded.get(id(frame))
                    if data is None:
                        data = encoded[id(frame)] = encode(frame)
                    path = f"{self._base}/@connections/{quote(connection_id, safe='')}"
                    request = AWSRequest(
                        method="POST", url=self._origin + path, data=data, headers={}
                    )
                    signer.add_auth(request)
                    async with self._session.post(
                        self._origin + path, data=data, headers=dict(request.headers.items())
                    ) as response:
                        await response.read()
                        status = response.status
                    if status == 410:
                        gone.add(connection_id)
                        break
                    if status != 200:
                        failed += 1
                        break

        await asyncio.gather(*(worker() for _ in range(min(self._concurrency, len(deliveries)))))
        return DeliveryReport(
            sent=len(deliveries) - len(gone) - failed, gone=frozenset(gone), failed=failed
        )

    def shutdown(self) -> None:
        if self._session is not None:
            self._loop.run_until_complete(self._session.close())
        self._loop.close()
