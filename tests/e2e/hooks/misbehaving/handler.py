"""A review hook for the end-to-end tests only: it misbehaves on request.

A message containing `#slow` is answered after SLOW_SECONDS (longer than the tests' wait);
`#raise` raises; `#garbage` answers something that is no decision; anything else is allowed.
"""

from __future__ import annotations

import time
from typing import Any

SLOW_SECONDS = 1.5


def handler(event: dict[str, Any], context: Any) -> object:
    message = str(event.get("message", ""))
    if "#slow" in message:
        time.sleep(SLOW_SECONDS)
    if "#raise" in message:
        raise RuntimeError("the review hook broke on purpose")
    if "#garbage" in message:
        return {"decision": "maybe"}
    return {"decision": "allow"}
