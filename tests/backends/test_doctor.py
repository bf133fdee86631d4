"""The doctor against this machine: every finding is cross-checked with an
independent look (zcat of the kernel config, the files themselves, stap -V)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from stap_helpers import DATA, stap_ls_cmd
from stap_ls.backends.doctor import diagnose

REPO = str(DATA.parents[2])
RUNNING = os.uname().release


def _config_value(name: str) -> str | None:
    """CONFIG_name of the running kernel via zcat, not the doctor's reader."""
    if not os.path.exists("/proc/config.gz"):
        return None
    text = subprocess.run(["zcat", "/proc/config.gz"], capture_output=True, text=True,
                          check=True).stdout
    for line in text.splitlines():
        if line.startswith(f"CONFIG_{name}="):
            return line.split("=", 1)[1]
        if line == f"# CONFIG_{name} is not set":
            return "n"
    return "n"      # Kconfig leaves out options whose dependencies are off


@pytest.fixture(scope="module")
def report():
    return diagnose()


def test_stap_version_matches_stap(report, stap):
    f = report.find("stap")
    p = subprocess.run([stap, "-V"], capture_output=True, text=True)
    version = (p.stdout + p.stderr).strip()
    assert f.status == "ok" and f.summary == version.splitlines()[0]
    assert re.search(r"version \d+\.\d+", f.summary)
    assert f.detail == f"at {shutil.which('stap')}"
    missing = diagnose(stap="/nonexistent/stap").find("stap")
    assert missing.status == "fail" and missing.fix.debian == "apt install systemtap"
    assert missing.fix.fedora == "dnf install systemtap"


def test_build_tree(report, release):
    f = report.find("build-tree")
    has = os.path.exists(f"/lib/modules/{RUNNING}/build/.config")
    assert f.status == ("ok" if has else "fail")
    assert f.fix.debian == f"apt install linux-headers-{RUNNING}"
    assert f.fix.fedora == f"dnf install kernel-devel-{RUNNING}"
    if not has:
        assert f"-r {release}" in f.detail
    assert diagnose(release).find("build-tree").status == "ok"


@pytest.mark.parametrize("name,path", [
    ("btf", "/sys/kernel/btf/vmlinux"),
])
def test_file_backed_findings(report, name, path):
    assert (report.find(name).status == "ok") == os.path.exists(path)


def test_modules(report):
    loadable = os.path.exists("/proc/modules") and _config_value("MODULES") != "n"
    f = report.find("modules")
    assert (f.status == "ok") == loadable
    if not loadable:
        assert "--engine=bpf" in f.fix.note
        assert report.engine("stap").can_run is False
        assert "modules" in report.engine("stap").missing


@pytest.mark.parametrize("kind,option", [("kprobes", "KPROBES"), ("uprobes", "UPROBES")])
def test_probe_support_follows_kernel_config(report, kind, option):
    value = _config_value(option)
    f = report.find(kind)
    if value == "y":
        assert f.status == "ok" and f"CONFIG_{option}=y" in f.detail
    elif value is not None:
        assert f.status == "fail" and f"CONFIG_{option}" in f.detail
    else:
        assert f.status in ("ok", "warn")


def test_tracefs(report):
    mounted = any(os.path.isdir(f"{p}/events") for p in
                  ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"))
    f = report.find("tracefs")
    assert (f.status == "ok") == mounted
    assert "mount -t tracefs" in f.fix.note


def test_bpf_engine_verdict_follows_its_findings(report):
    needed = ["btf", "bpf", "clang", "libbpf", "tapsets"]
    ok = all(report.find(n).status != "fail" for n in needed)
    assert report.engine("bpf").can_run == ok
    assert (report.find("clang").status == "ok") == (shutil.which("clang") is not None)
    if os.geteuid() == 0:
        assert report.find("privileges").summary == "running as root"


def test_every_problem_says_how_to_fix_it(report):
    names = [f.name for f in report.findings]
    for expected in ("stap", "kernel", "build-tree", "debuginfo", "btf", "tracefs",
                     "kprobes", "uprobes", "modules", "bpf", "clang", "libbpf",
                     "privileges", "tapsets"):
        assert expected in names
    for f in report.findings:
        if f.status != "ok":
            assert f.fix is not None and (f.fix.debian or f.fix.note), f
    text = report.render()
    for f in report.findings:
        assert f.name in text
    assert "run engines:" in text and "recommended:" in text
    assert json.loads(json.dumps(report.to_json()))["findings"][0]["name"] == "stap"


def test_tapsets_counted(report):
    f = report.find("tapsets")
    n = sum(len([x for x in files if x.endswith(".stp")])
            for _, _, files in os.walk(f.detail))
    assert f.status == "ok" and f.summary == f"tapset library: {n} files"


def test_cli_doctor(report):
    p = subprocess.run(stap_ls_cmd("doctor", "--format=json"), capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": REPO}, timeout=60)
    data = json.loads(p.stdout)
    assert [f["name"] for f in data["findings"]] == [f.name for f in report.findings]
    assert p.returncode == (0 if data["recommendedEngine"] else 1)
    p = subprocess.run(stap_ls_cmd("doctor", "--bogus"), capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": REPO}, timeout=60)
    assert p.returncode == 2 and "unexpected argument '--bogus'" in p.stderr
