"""lambda_src/chat/settings.json, the one place a function setting is written: the
function reads it once per cold start, and it travels with the code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAMBDA_SOURCE = ROOT / "lambda_src"

# Counts the reads of settings.json while the function's modules load and read their
# settings the way an invocation does.
PROBE = """
import builtins, io, json, pathlib
reads = []
real_read_text = pathlib.Path.read_text
real_open = builtins.open
def read_text(self, *args, **kwargs):
    if self.name == "settings.json":
        reads.append(str(self))
    return real_read_text(self, *args, **kwargs)
def open_(file, *args, **kwargs):
    if str(file).endswith("settings.json"):
        reads.append(str(file))
    return real_open(file, *args, **kwargs)
pathlib.Path.read_text = read_text
builtins.open = open_
import handler
from chat import settings, telemetry
env = {"TABLE_NAME": "t", "CALLBACK_URL": "https://example.com/production"}
settings.Settings.from_env(env)
settings.Settings.from_env(env)
print(json.dumps(reads))
"""


def test_a_cold_start_reads_the_settings_file_once():
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=LAMBDA_SOURCE,
        env={
            "PYTHONPATH": str(LAMBDA_SOURCE),
            "PATH": "/usr/bin:/bin",
            "AWS_DEFAULT_REGION": "us-east-1",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    reads = json.loads(result.stdout.strip().splitlines()[-1])
    assert reads == [str(LAMBDA_SOURCE / "chat" / "settings.json")]


def test_the_settings_file_lies_beside_the_module_that_reads_it():
    # The function's asset is lambda_src/ as it is, so the file ships with the code.
    from chat import settings  # noqa: PLC0415

    assert settings.SETTINGS_FILE == LAMBDA_SOURCE / "chat" / "settings.json"
    assert settings.SETTINGS_FILE.is_file()
