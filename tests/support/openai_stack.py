"""`promptlab local` as the official `openai` SDK sees it: a client with the stack's key, and keys of new tenants."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import openai

from tests.support import ROOT
from tests.support.local_stack import KEYS
from tests.support.provider_server import ProviderServer


class OpenAIStack:
    def __init__(self, base: str, data: Path, server: ProviderServer, env: dict[str, str]) -> None:
        self.base, self.data, self.server, self.env = base, data, server, env

    def client(self, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base + "/v1", api_key=key or KEYS[self.base], max_retries=0)

    def new_key(self, *flags: str) -> str:
        """A key of its own tenant made with the CLI, as an operator makes one."""
        settings = json.loads((self.data / "local-stack.json").read_text())
        made = subprocess.run(
            [sys.executable, "-m", "promptlab.cli", "keys", "create", "--name", uuid.uuid4().hex[:8], *flags, "--json"],
            cwd=ROOT, env={**os.environ, **self.env, **settings}, capture_output=True, text=True, check=True,
        )  # fmt: skip
        key: str = json.loads(made.stdout)["key"]
        return key
