"""The real stap as an oracle, and the corpus and examples it is compared on.

Everything here runs the installed ``stap`` (Debian's systemtap 4.8) with
``-r RELEASE`` for the installed kernel headers, as ../shared/REFERENCE.md
explains; a missing stap is a test failure that says what to install.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
CORPUS = Path(os.environ.get("STAP_LS_CORPUS", SHARED / "corpus" / "testsuite"))
EXAMPLES = Path("/usr/share/systemtap/examples")
INSTALL_HINT = ("install SystemTap and the kernel headers: "
                "apt-get install systemtap systemtap-doc linux-headers-amd64 (scripts/setup.sh does)")


def stap_path() -> str:
    p = shutil.which("stap")
    if p is None:
        raise AssertionError("the real stap is not installed; " + INSTALL_HINT)
    return p


def release() -> str:
    """The installed headers' kernel release (what -r needs here)."""
    mods = sorted(glob.glob("/lib/modules/*/build/.config"))
    if not mods:
        raise AssertionError("no kernel headers under /lib/modules; " + INSTALL_HINT)
    return mods[-1].split("/")[3]


def stap_ls_cmd() -> list[str]:
    return [sys.executable, "-m", "stap_ls"]


@dataclass
class Example:
    name: str          # e.g. general/helloworld
    dir: Path
    argv: list[str]    # stap's arguments from the .meta test_check line (without 'stap')


def examples() -> list[Example]:
    """Every example whose .meta has a test_check line."""
    out = []
    for meta in sorted(EXAMPLES.glob("*/*.meta")):
        text = meta.read_text(errors="replace")
        m = re.search(r"^test_check:\s*(.*)$", text, re.M)
        if not m:
            continue
        try:
            words = shlex.split(m.group(1))
        except ValueError:
            continue
        if not words or os.path.basename(words[0]) != "stap":
            continue
        out.append(Example(f"{meta.parent.name}/{meta.stem}", meta.parent, words[1:]))
    return out


def with_pass(argv: list[str], n: int) -> list[str]:
    """Replace the -pN of a command line (or add one)."""
    out = []
    skip = False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if re.fullmatch(r"-p[1-5]", a):
            continue
        if a == "-p":
            skip = True
            continue
        out.append(a)
    return [f"-p{n}"] + out


def run(cmd: list[str], cwd: Path | None = None, timeout: int = 300, env=None):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          errors="surrogateescape", env=env)


def strip_file_header(text: str) -> str:
    return "\n".join(l for l in text.split("\n") if not l.startswith("# file "))
