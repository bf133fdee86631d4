"""Completion inside probe-point strings and ``@var("``, against real binaries.

A small C program is compiled with ``cc -g`` so its DWARF gives ``@file:line``;
``module("`` uses a temporary module tree because these machines have no
kernel modules (``/lib/modules/*/`` holds only ``build`` and ``source``): one
tree with a ``modules.dep`` and one without, whose ``.ko`` is a real
relocatable object compiled by ``cc -c``.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from stap_ls.ide.completion import complete
from stap_ls.targets.model import TargetModel
from stap_ls.targets.modules import list_modules, module_name
from tests.ide.conftest import analysis_of

C_PROGRAM = """\
static int helper_add(int a, int b) { return a + b; }
int compute_total(int n)
{
    int s = 0;
    while (n-- > 0) s = helper_add(s, n);
    return s;
}
int main(int argc, char **argv) { (void)argv; return compute_total(argc); }
"""

MODULE_C = "int demo_open(int a) { return a + 1; }\nint demo_read(int c) { return c; }\n"


def _cc(*args: str) -> None:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.fail("no C compiler: install gcc (apt-get install gcc)")
    subprocess.run([cc, *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def program(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("prog")
    (d / "prog.c").write_text(C_PROGRAM)
    _cc("-g", "-O0", "-o", str(d / "prog"), str(d / "prog.c"))
    return d / "prog"


def _labels(env, text: str) -> dict[str, str]:
    a, off = analysis_of(env, text)
    return {i.label: i.detail for i in complete(a, off).items}


def test_process_function_with_file_line(env, program):
    got = _labels(env, f'probe process("{program}").function("comp$0") {{}}')
    assert list(got) == ["compute_total"]
    assert f"compute_total@{program.parent}/prog.c:2 (dwarf)" in got["compute_total"]
    got = _labels(env, f'probe process("{program}").function("$0") {{}}')
    assert {"main", "compute_total", "helper_add"} <= set(got)
    assert got["helper_add"].endswith("prog.c:1 (dwarf)")


def test_var_arg_in_process_probe(env, program):
    got = _labels(env, f'probe process("{program}").function("compute_total") {{\n'
                       f'  x = @var("$0")\n}}')
    assert got == {"n": "int (dwarf)", "s": "int (dwarf)"}


def test_var_arg_outside_a_probe_body_is_empty(env):
    a, off = analysis_of(env, 'function f() { x = @var("$0") }')
    assert complete(a, off).items == []


def test_library_function_of_a_program(env, program):
    got = _labels(env, f'probe process("{program}").library("$0") {{}}')
    assert "libc.so.6" in got and "library of prog" in got["libc.so.6"]
    got = _labels(env, f'probe process("{program}").library("libc.so.6").plt("$0") {{}}')
    assert got, "libc has PLT entries"
    assert all(d == "libc.so.6 PLT entry" for d in got.values())


def _module_env(env, root: Path):
    model = TargetModel(use_cache=False)
    model.modules_root = str(root)
    return dataclasses.replace(env, model=model, memo={})


def _ko(root: Path, rel: str) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    src = p.parent / "m.c"
    src.write_text(MODULE_C)
    _cc("-c", "-o", str(p), str(src))
    return p


def test_module_names_from_the_tree(env, tmp_path):
    _ko(tmp_path, "kernel/fs/demo/demo-fs.ko")
    (tmp_path / "kernel/net").mkdir(parents=True)
    (tmp_path / "kernel/net/other.ko.xz").write_bytes(b"\xfd7zXZ\x00")
    e = _module_env(env, tmp_path)
    got = _labels(e, 'probe module("$0')
    assert list(got) == ["demo_fs", "other"]
    assert got["demo_fs"] == f"kernel module (tree) {tmp_path}/kernel/fs/demo/demo-fs.ko"
    assert list(_labels(e, 'probe module("ot$0')) == ["other"]
    got = _labels(e, 'probe module("demo_fs").function("demo_$0')
    assert got == {"demo_open": "demo_fs function demo_open (symbols)",
                   "demo_read": "demo_fs function demo_read (symbols)"}
    # compressed modules are named but not read
    assert _labels(e, 'probe module("other").function("$0') == {}


def test_module_names_from_modules_dep(env, tmp_path):
    (tmp_path / "modules.dep").write_text(
        "kernel/fs/ext4/ext4.ko.xz: kernel/fs/jbd2/jbd2.ko.xz kernel/lib/crc16.ko.xz\n"
        "kernel/fs/jbd2/jbd2.ko.xz:\nkernel/drivers/snd-hda-intel.ko.zst:\n\ngarbage line\n")
    e = _module_env(env, tmp_path)
    got = _labels(e, 'probe kprobe.module("$0')
    assert list(got) == ["ext4", "jbd2", "snd_hda_intel"]
    assert got["ext4"].startswith("kernel module (modules.dep)")


def test_module_listing_of_missing_or_odd_trees(tmp_path):
    assert list_modules(str(tmp_path / "nothing")) == []
    (tmp_path / "modules.dep").write_bytes(b"\xff\xfe\x00: :\n")
    assert list_modules(str(tmp_path)) == []
    assert module_name("a/b/snd-pcm.ko.zst") == "snd_pcm"


def test_module_names_on_this_machine_do_not_fail(env):
    # no modules here: an empty answer, not an error
    a, off = analysis_of(env, 'probe module("$0')
    c = complete(a, off)
    assert all(i.kind == "module" for i in c.items)
