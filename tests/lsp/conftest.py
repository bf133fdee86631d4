"""Shared helpers for the language-server tests: a pytest-lsp client on
``python -m stap_ls serve`` and small waiting helpers."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest
import pytest_lsp
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

SERVER = [sys.executable, "-m", "stap_ls", "serve"]


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient):
    caps = client_capabilities("visual-studio-code")
    await lsp_client.initialize_session(T.InitializeParams(
        capabilities=caps, initialization_options={"stap-ls": {}}))
    yield
    await lsp_client.shutdown_session()


async def wait_until(pred, timeout: float = 30.0, what: str = "condition"):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = pred()
        if v:
            return v
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def poll(coro_fn, pred, timeout: float = 60.0, what: str = "answer"):
    """Repeat a request until its answer satisfies ``pred`` (the library loads
    in the background, so the first answers may be pass-1 only)."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout:
        last = await coro_fn()
        if pred(last):
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last answer: {last!r}")


@pytest.fixture
def raw_server():
    """An initialised server on stdio driven by the raw JSON-RPC client
    (``tests/lsp/rawclient.py``); killed if a test leaves it running."""
    from tests.lsp.rawclient import RawClient
    c = RawClient()
    c.initialize()
    yield c
    if c.proc.poll() is None:
        c.proc.kill()
        c.proc.wait()
