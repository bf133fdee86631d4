"""The ide tests share one environment (tapset library, docs, target model)."""

from __future__ import annotations

import pytest

from stap_ls.ide.analysis import DeclCache, analyze, full_environment
from stap_ls.ide.config import Settings


@pytest.fixture(scope="session")
def env():
    return full_environment(Settings())


def analysis_of(env, text: str, name: str = "/tmp/ide-test.stp", pass2: bool = True):
    """Analyse ``text``; a ``$0`` marks the cursor, whose offset is returned too."""
    off = text.find("$0")
    if off >= 0:
        text = text[:off] + text[off + 2:]
    return analyze("file://" + name, name, text, 1, env, DeclCache(), with_pass2=pass2), off
