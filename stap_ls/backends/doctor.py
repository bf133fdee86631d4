"""The doctor: what this machine can run, what is missing, and how to get it.

:func:`diagnose` checks, in order: ``stap`` and its version, the kernel release,
the kernel build tree (``/lib/modules/REL/build/.config``, the commonest
failure), kernel debug information, BTF, tracefs, kprobes, uprobes, loadable
module support, BPF (syscall and capabilities), clang, libbpf, the user's
privileges (root, ``stapdev``/``stapusr``) and the tapset directory.  Each
:class:`Finding` is ``ok``/``warn``/``fail`` with a detail line and a
:class:`Fix` naming the Debian and Fedora packages (or the command) that cure
it.  The :class:`Report` then says which run engine can work here: stap's
kernel modules or the BPF engine.

The doctor only looks (file existence, the kernel configuration through
``stap_ls.targets.kernel_env``, ``stap -V``); it changes nothing.  Run engines name the findings that explain a failed run
(``RunResult.environment``) so a client can show just those.
"""

from __future__ import annotations

import ctypes.util
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

OK, WARN, FAIL = "ok", "warn", "fail"

CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39


@dataclass(frozen=True)
class Fix:
    """How to cure a finding: package names per distribution, or a command."""

    debian: str = ""
    fedora: str = ""
    note: str = ""

    def render(self) -> str:
        parts = []
        if self.debian:
            parts.append(f"Debian/Ubuntu: {self.debian}")
        if self.fedora:
            parts.append(f"Fedora/RHEL: {self.fedora}")
        if self.note:
            parts.append(self.note)
        return "; ".join(parts)

    def to_json(self) -> dict:
        return {"debian": self.debian, "fedora": self.fedora, "note": self.note}


@dataclass(frozen=True)
class Finding:
    name: str
    status: str                 # ok | warn | fail
    summary: str
    detail: str = ""
    fix: Fix | None = None

    def to_json(self) -> dict:
        d = {"name": self.name, "status": self.status, "summary": self.summary,
             "detail": self.detail}
        if self.fix is not None:
            d["fix"] = self.fix.to_json()
        return d

    def render(self) -> str:
        lines = [f"  {self.status.upper():<5} {self.name:<12} {self.summary}"]
        if self.detail:
            lines.append(f"{'':20}{self.detail}")
        if self.fix is not None and self.status != OK:
            lines.append(f"{'':20}fix: {self.fix.render()}")
        return "\n".join(lines)


@dataclass(frozen=True)
class EngineVerdict:
    engine: str                 # "stap" | "bpf"
    can_run: bool
    summary: str
    missing: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"engine": self.engine, "canRun": self.can_run, "summary": self.summary,
                "missing": list(self.missing)}


@dataclass
class Report:
    release: str
    arch: str
    findings: list[Finding] = field(default_factory=list)
    engines: list[EngineVerdict] = field(default_factory=list)

    def find(self, name: str) -> Finding | None:
        return next((f for f in self.findings if f.name == name), None)

    def engine(self, name: str) -> EngineVerdict | None:
        return next((e for e in self.engines if e.engine == name), None)

    @property
    def recommended_engine(self) -> str | None:
        for e in self.engines:
            if e.can_run:
                return e.engine
        return None

    def to_json(self) -> dict:
        return {"release": self.release, "arch": self.arch,
                "findings": [f.to_json() for f in self.findings],
                "engines": [e.to_json() for e in self.engines],
                "recommendedEngine": self.recommended_engine}

    def render(self, only: list[str] | None = None) -> str:
        """The report as text; ``only`` limits it to the named findings."""
        out = [f"stap-ls doctor: kernel {self.release} ({self.arch})"]
        for f in self.findings:
            if only is None or f.name in only:
                out.append(f.render())
        if only is None:
            out.append("run engines:")
            for e in self.engines:
                mark = "yes" if e.can_run else "no "
                out.append(f"  {mark}   {e.engine:<12} {e.summary}")
            rec = self.recommended_engine
            out.append(f"recommended: --engine={rec}" if rec else
                       "recommended: no engine can run scripts here; see the fixes above")
        return "\n".join(out) + "\n"


# -- reading the machine ----------------------------------------------------------
def kernel_config() -> dict[str, str]:
    """``CONFIG_*`` of the running kernel, from the target model
    (:func:`stap_ls.targets.kernel_env.kernel_env`: build tree, /boot or
    /proc/config.gz).  Empty when no configuration was found."""
    from stap_ls.targets.kernel_env import kernel_env
    return dict(kernel_env(None).config)


def effective_capabilities() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return 0


def tracefs_root() -> str | None:
    for p in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        if os.path.isdir(os.path.join(p, "events")):
            return p
    return None


def modules_loadable() -> bool:
    """Whether this kernel can load modules at all (what stap's pass 5 needs)."""
    if not os.path.exists("/proc/modules"):
        return False
    try:
        return Path("/proc/sys/kernel/modules_disabled").read_text().strip() != "1"
    except OSError:
        return True


def stap_version(stap: str) -> tuple[str | None, str]:
    """(path, first line of ``stap -V``) or (None, why not)."""
    path = shutil.which(stap)
    if path is None:
        return None, f"'{stap}' is not on PATH"
    try:
        p = subprocess.run([path, "-V"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"'{path} -V' failed: {e}"
    text = (p.stderr or p.stdout).strip().splitlines()
    return path, text[0] if text else f"'{path} -V' printed nothing"


def installed_build_trees() -> list[str]:
    try:
        return sorted(r for r in os.listdir("/lib/modules")
                      if os.path.exists(f"/lib/modules/{r}/build/.config"))
    except OSError:
        return []


def _cfg(config: dict[str, str], name: str) -> str | None:
    """An option's value; "n" when a configuration was read but does not list
    it (Kconfig leaves disabled options out), None when there is none."""
    if not config:
        return None
    return config.get(f"CONFIG_{name}", "n")


# -- the checks -------------------------------------------------------------------
def _check_stap(stap: str) -> Finding:
    path, version = stap_version(stap)
    fix = Fix("apt install systemtap", "dnf install systemtap")
    if path is None:
        return Finding("stap", FAIL, "SystemTap is not installed", version, fix)
    return Finding("stap", OK, version, f"at {path}", fix)


def _check_build_tree(release: str, running: str) -> Finding:
    cfg = f"/lib/modules/{release}/build/.config"
    fix = Fix(f"apt install linux-headers-{release}", f"dnf install kernel-devel-{release}",
              "the headers must match the kernel release exactly")
    if os.path.exists(cfg):
        return Finding("build-tree", OK, f"kernel build tree for {release}", cfg, fix)
    others = [r for r in installed_build_trees() if r != release]
    detail = f"{cfg} does not exist, so stap refuses to start for {release}"
    if others:
        detail += (f"; build trees exist for {', '.join(others)}: passes 1-4 can target "
                   f"them with -r {others[0]}")
        if release == running:
            detail += " (modules for another kernel cannot be loaded here)"
    return Finding("build-tree", FAIL, f"no kernel build tree for {release}", detail, fix)


def _check_debuginfo(release: str) -> Finding:
    candidates = [f"/usr/lib/debug/lib/modules/{release}/vmlinux",
                  f"/usr/lib/debug/boot/vmlinux-{release}", f"/boot/vmlinux-{release}",
                  f"/lib/modules/{release}/build/vmlinux"]
    fix = Fix(f"apt install linux-image-{release}-dbg (on Ubuntu: -dbgsym from ddebs)",
              f"dnf debuginfo-install kernel-{release}")
    for c in candidates:
        if os.path.exists(c):
            return Finding("debuginfo", OK, "kernel debug information (DWARF)", c, fix)
    return Finding("debuginfo", WARN, "no kernel debug information (vmlinux DWARF)",
                   "kernel.function()/module() probes and $target variables cannot be "
                   "resolved by stap ('missing kernel/module debuginfo')", fix)


def _check_btf() -> Finding:
    fix = Fix(note="needs a kernel built with CONFIG_DEBUG_INFO_BTF=y "
                   "(Debian 11+ and Fedora 31+ kernels are)")
    if os.path.exists("/sys/kernel/btf/vmlinux"):
        return Finding("btf", OK, "kernel BTF type information", "/sys/kernel/btf/vmlinux",
                       fix)
    return Finding("btf", FAIL, "no kernel BTF", "/sys/kernel/btf/vmlinux is missing", fix)


def _check_tracefs() -> Finding:
    fix = Fix(note="mount -t tracefs nodev /sys/kernel/tracing (as root)")
    root = tracefs_root()
    if root is not None:
        n = len(os.listdir(os.path.join(root, "events")))
        return Finding("tracefs", OK, f"tracefs mounted at {root}",
                       f"{n} tracepoint subsystems", fix)
    if os.path.isdir("/sys/kernel/tracing"):
        return Finding("tracefs", WARN, "tracefs is not mounted",
                       "/sys/kernel/tracing exists but is empty", fix)
    return Finding("tracefs", FAIL, "no tracefs", "kernel built without CONFIG_TRACING?", fix)


def _check_probes(kind: str, config: dict[str, str]) -> Finding:
    opt = "KPROBES" if kind == "kprobes" else "UPROBES"
    evidence = []
    root = tracefs_root()
    events = f"{kind[0]}probe_events"
    if root and os.path.exists(os.path.join(root, events)):
        evidence.append(f"{root}/{events}")
    if kind == "kprobes" and os.path.exists("/sys/kernel/debug/kprobes"):
        evidence.append("/sys/kernel/debug/kprobes")
    value = _cfg(config, opt)
    fix = Fix(note=f"needs a kernel built with CONFIG_{opt}=y (stock Debian and "
                   "Fedora kernels are)")
    use = ("kernel.function/kprobe.* probes" if kind == "kprobes"
           else "process(...).function/statement and uprobe probes")
    if value == "y" or (value is None and evidence):
        return Finding(kind, OK, f"{kind} supported",
                       ", ".join([f"CONFIG_{opt}=y"] * (value == "y") + evidence), fix)
    if value is None:
        return Finding(kind, WARN, f"{kind} support unknown",
                       f"no kernel config and no {events}; {use} may not work", fix)
    return Finding(kind, FAIL, f"kernel built without {kind}",
                   f"CONFIG_{opt} is not set: {use} cannot work", fix)


def _check_modules(config: dict[str, str]) -> Finding:
    fix = Fix(note="needs a kernel built with CONFIG_MODULES=y and "
                   "kernel.modules_disabled=0 (nothing to install: use --engine=bpf here)")
    if modules_loadable() and _cfg(config, "MODULES") != "n":
        return Finding("modules", OK, "kernel modules can be loaded", "/proc/modules", fix)
    why = []
    if not os.path.exists("/proc/modules"):
        why.append("no /proc/modules")
    if _cfg(config, "MODULES") == "n":
        why.append("CONFIG_MODULES is not set")
    if os.path.exists("/proc/sys/kernel/modules_disabled"):
        why.append("kernel.modules_disabled=1")
    return Finding("modules", FAIL, "this kernel cannot load modules",
                   "; ".join(why) + ": stap's pass 5 (staprun) cannot work", fix)


def _check_bpf(config: dict[str, str]) -> Finding:
    caps = effective_capabilities()
    have = [n for n, bit in (("CAP_BPF", CAP_BPF), ("CAP_PERFMON", CAP_PERFMON),
                             ("CAP_SYS_ADMIN", CAP_SYS_ADMIN)) if caps >> bit & 1]
    fix = Fix(note="run as root, or grant CAP_BPF and CAP_PERFMON "
                   "(setcap cap_bpf,cap_perfmon+ep on the interpreter)")
    syscall = _cfg(config, "BPF_SYSCALL")
    if syscall == "n":
        return Finding("bpf", FAIL, "kernel built without the bpf() syscall",
                       "CONFIG_BPF_SYSCALL is not set", fix)
    enough = os.geteuid() == 0 or {"CAP_BPF", "CAP_PERFMON"} <= set(have) \
        or "CAP_SYS_ADMIN" in have
    detail = f"capabilities: {', '.join(have) or 'none'}"
    if syscall is None:
        detail += "; CONFIG_BPF_SYSCALL unknown"
    if enough:
        return Finding("bpf", OK, "BPF programs can be loaded", detail, fix)
    return Finding("bpf", FAIL, "not allowed to load BPF tracing programs", detail, fix)


def _check_tool(name: str, found: str | None, debian: str, fedora: str, what: str
                ) -> Finding:
    fix = Fix(f"apt install {debian}", f"dnf install {fedora}")
    if found:
        return Finding(name, OK, what, found, fix)
    return Finding(name, FAIL, f"{what}: not found", "", fix)


def _check_privileges() -> Finding:
    fix = Fix(note="add the user to a group: usermod -aG stapdev USER (full access) or "
                   "stapusr (pre-built modules only), then log in again; or use sudo mode")
    if os.geteuid() == 0:
        return Finding("privileges", OK, "running as root", "", fix)
    import grp
    mine = set(os.getgroups())
    groups = []
    for g in ("stapdev", "stapsys", "stapusr"):
        try:
            if grp.getgrnam(g).gr_gid in mine:
                groups.append(g)
        except KeyError:
            continue
    if "stapdev" in groups:
        return Finding("privileges", OK, "member of stapdev", "", fix)
    if groups:
        return Finding("privileges", WARN, f"member of {', '.join(groups)} only",
                       "only signed modules or modules in /lib/modules/REL/systemtap run; "
                       "guru mode and arbitrary scripts need stapdev", fix)
    return Finding("privileges", FAIL, "not root and not in stapdev/stapusr",
                   "passes 1-4 work; pass 5 (loading the module) will be refused", fix)


def _check_tapsets(stap_path: str | None) -> Finding:
    fix = Fix("apt install systemtap-common", "dnf install systemtap-devel")
    env = os.environ.get("SYSTEMTAP_TAPSET")
    candidates = [env] if env else []
    if stap_path:
        prefix = Path(os.path.realpath(stap_path)).parent.parent
        candidates.append(str(prefix / "share" / "systemtap" / "tapset"))
    candidates.append("/usr/share/systemtap/tapset")
    for c in candidates:
        if c and os.path.isdir(c):
            n = sum(1 for _ in Path(c).rglob("*.stp"))
            if n:
                return Finding("tapsets", OK, f"tapset library: {n} files", c, fix)
    return Finding("tapsets", FAIL, "no tapset library found",
                   f"looked in {', '.join(x for x in candidates if x)}", fix)


def _engines(report: Report) -> list[EngineVerdict]:
    def bad(*names: str) -> tuple[str, ...]:
        return tuple(n for n in names
                     if (f := report.find(n)) is not None and f.status == FAIL)

    stap_missing = bad("stap", "build-tree", "modules", "privileges", "tapsets")
    if not stap_missing:
        stap_v = EngineVerdict("stap", True, "stap can compile and load modules here")
    else:
        trees = installed_build_trees()
        partial = (f"; passes 1-3 still work with -r {trees[0]}"
                   if "stap" not in stap_missing and trees else "")
        stap_v = EngineVerdict("stap", False, f"missing: {', '.join(stap_missing)}{partial}",
                               stap_missing)
    bpf_missing = bad("btf", "bpf", "clang", "libbpf", "tapsets")
    if not bpf_missing:
        bpf_v = EngineVerdict("bpf", True, "BTF, BPF privileges, clang and libbpf are here")
    else:
        bpf_v = EngineVerdict("bpf", False, f"missing: {', '.join(bpf_missing)}", bpf_missing)
    return [stap_v, bpf_v]


def diagnose(release: str | None = None, stap: str = "stap") -> Report:
    """Check this machine for running scripts on kernel ``release`` (default:
    the running kernel)."""
    running = os.uname().release
    release = release or running
    config = kernel_config()
    report = Report(release=release, arch=platform.machine())
    stap_finding = _check_stap(stap)
    trees = installed_build_trees()
    report.findings += [
        stap_finding,
        Finding("kernel", OK, f"running {running}" + (f", targeting {release}"
                                                      if release != running else ""),
                f"build trees installed for: {', '.join(trees) or 'none'}"),
        _check_build_tree(release, running),
        _check_debuginfo(release),
        _check_btf(),
        _check_tracefs(),
        _check_probes("kprobes", config),
        _check_probes("uprobes", config),
        _check_modules(config),
        _check_bpf(config),
        _check_tool("clang", shutil.which("clang"), "clang", "clang",
                    "clang (compiles BPF programs)"),
        _check_tool("libbpf", ctypes.util.find_library("bpf"), "libbpf1 libbpf-dev",
                    "libbpf libbpf-devel", "libbpf (loads BPF objects)"),
        _check_privileges(),
        _check_tapsets(shutil.which(stap)),
    ]
    report.engines = _engines(report)
    return report
