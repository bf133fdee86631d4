"""The target kernel as pass 1 sees it: release, architecture and configuration.

stap evaluates ``%( kernel_v ... %)``, ``%( arch ... %)`` and ``%( CONFIG_* ... %)``
against the kernel it builds for: the running one, or the one named by
``-r RELEASE`` (or ``-r BUILD_DIR``) and ``-a ARCH``.  This module finds the
same facts, reading the build tree's ``.config`` as stap does and falling back
to ``/boot/config-RELEASE`` and, for the running kernel, ``/proc/config.gz``.
It records where the configuration came from, or that none was found.
"""

from __future__ import annotations

import gzip
import os
import platform
import re
from dataclasses import dataclass, field
from functools import lru_cache


DEFAULT_COMPATIBLE = "4.8"


def normalize_machine(machine: str) -> str:
    """stap's normalisation of ``uname -m`` to its architecture names."""
    m = machine
    if re.fullmatch(r"i[3-6]86", m):
        return "i386"
    if m == "sun4u":
        return "sparc64"
    if m.startswith("arm") or m == "sa110":
        return "arm"
    if m == "s390x":
        return "s390"
    if m == "aarch64":
        return "arm64"
    if m.startswith("ppc") or m.startswith("powerpc"):
        return "powerpc"
    if m.startswith("mips"):
        return "mips"
    if re.fullmatch(r"sh[0-9a-z]*", m):
        return "sh"
    return m


@dataclass
class KernelEnv:
    release: str
    arch: str
    build_tree: str
    config: dict[str, str] = field(default_factory=dict)
    config_source: str = ""          # path the configuration was read from ("" if none)
    running: bool = True

    @property
    def has_build_tree(self) -> bool:
        return os.path.exists(os.path.join(self.build_tree, ".config"))


def parse_config(text: str) -> dict[str, str]:
    config: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            k, v = line.split("=", 1)
            config[k] = v
    return config


def _read_config(paths: list[str]) -> tuple[dict[str, str], str]:
    for p in paths:
        try:
            if p.endswith(".gz"):
                with gzip.open(p, "rt", errors="replace") as fh:
                    return parse_config(fh.read()), p
            with open(p, errors="replace") as fh:
                return parse_config(fh.read()), p
        except OSError:
            continue
    return {}, ""


@lru_cache(maxsize=16)
def kernel_env(release: str | None = None, arch: str | None = None) -> KernelEnv:
    """Facts about the target kernel (cached per release/arch)."""
    running_release = platform.release()
    build_tree = ""
    if release and "/" in release:
        # -r BUILD_DIR
        build_tree = release
        try:
            with open(os.path.join(build_tree, "include/config/kernel.release")) as fh:
                release = fh.read().strip()
        except OSError:
            release = os.path.basename(os.path.normpath(build_tree))
    rel = release or running_release
    if not build_tree:
        build_tree = f"/lib/modules/{rel}/build"
    candidates = [os.path.join(build_tree, ".config"), f"/usr/src/linux-headers-{rel}/.config",
                  f"/boot/config-{rel}"]
    if rel == running_release:
        candidates.append("/proc/config.gz")
    config, source = _read_config(candidates)
    return KernelEnv(rel, normalize_machine(arch or platform.machine()), build_tree,
                     config, source, running=(rel == running_release))
