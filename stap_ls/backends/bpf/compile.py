"""Generated C -> BPF object with clang, and verifier logs -> diagnostics.

``compile_c`` runs ``clang -O2 -g -target bpf -D__TARGET_ARCH_x86
-I/usr/include/x86_64-linux-gnu`` (``-g`` because libbpf needs BTF in the
object) on the generated source in a private temporary directory.  A clang
error names the generated line and, through ``Generated.line_map``, the IR
statement (and script span) it came from.

``explain_verifier`` turns a verifier rejection into one diagnostic: the
verifier's last complaint, the generated C line it was executing (clang's
line info makes the kernel print ``; <source> @ stp.bpf.c:LINE``) and the
script location of that line — never a bare instruction dump.  The full log
stays available in ``Diagnostic.related``-free form in ``CompileError.log``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from stap_ls.backends.bpf.codegen import Generated
from stap_ls.text import Diagnostic, Severity

SOURCE_NAME = "stp.bpf.c"
CLANG_FLAGS = ["-O2", "-g", "-target", "bpf", "-mcpu=v3", "-D__TARGET_ARCH_x86",
               "-I/usr/include/x86_64-linux-gnu", "-Werror=implicit-function-declaration", "-Wno-unused-value", "-Wno-unused-variable",
               "-Wno-unused-label", "-Wno-compare-distinct-pointer-types"]
CLANG_TIMEOUT = 60


@dataclass
class CompiledObject:
    path: str
    workdir: str
    source_path: str

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def find_clang() -> str | None:
    for name in ("clang", "clang-14", "clang-15", "clang-16"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _where(gen: Generated, line: int) -> tuple[str, object]:
    span, what = gen.line_map.get(line, (None, ""))
    return what, span


def compile_c(gen: Generated, keep_dir: str | None = None
              ) -> tuple[CompiledObject | None, list[Diagnostic]]:
    clang = find_clang()
    if clang is None:
        return None, [Diagnostic(Severity.ERROR, "clang not found: install the Debian package clang "
                                 "(and libbpf-dev) to use the bpf engine", None,
                                 code="bpf-clang", kind="semantic error")]
    workdir = keep_dir or tempfile.mkdtemp(prefix="stap-ls-bpf-")
    src = os.path.join(workdir, SOURCE_NAME)
    obj = os.path.join(workdir, "stp.bpf.o")
    with open(src, "w") as f:
        f.write(gen.source)
    try:
        r = subprocess.run([clang, *CLANG_FLAGS, "-c", src, "-o", obj], capture_output=True,
                           text=True, timeout=CLANG_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, [Diagnostic(Severity.ERROR, f"clang did not finish within {CLANG_TIMEOUT} s",
                                 None, code="bpf-clang", kind="semantic error")]
    if r.returncode != 0:
        m = re.search(rf"{re.escape(SOURCE_NAME)}:(\d+):\d+: error: (.*)", r.stderr)
        other = re.search(r"^(\S+:\d+:\d+): error: (.*)$", r.stderr, re.M)
        line = int(m.group(1)) if m else 0
        if m:
            msg = m.group(2)
        elif other:
            msg = f"{other.group(1)}: {other.group(2)}"
        else:
            msg = (r.stderr.strip().splitlines() or ["clang failed"])[-1]
        what, span = _where(gen, line)
        text = gen.source.split("\n")[line - 1].strip() if line else ""
        return None, [Diagnostic(Severity.ERROR,
                                 f"generated BPF C does not compile (an engine bug): {msg}; "
                                 f"at generated line {line}: {text[:200]}" + (f" [{what}]" if what else ""),
                                 span, code="bpf-clang", kind="semantic error")]
    return CompiledObject(obj, workdir, src), []


_SRC_LINE = re.compile(r"^; (.*) @ " + re.escape(SOURCE_NAME) + r":(\d+)\s*$")
_NOISE = re.compile(r"^(\d+:|;|from \d+ to|func#|last_idx|regs=|parent |mark_precise|-- BEGIN|"
                    r"reg type|Validating|verification time|stack depth|R\d+(_w)?=|caller:|callee:|"
                    r"Func#|arg#|propagating|libbpf: )")
_PROG = re.compile(r"libbpf: prog '([^']+)': BPF program load failed")


def explain_verifier(log: str, gen: Generated) -> Diagnostic:
    """One diagnostic for a failed load: complaint + generated line + script span."""
    lines = log.splitlines()
    prog = ""
    for ln in lines:
        m = _PROG.search(ln)
        if m:
            prog = m.group(1)
            break
    last_src: tuple[str, int] | None = None
    complaint = ""
    for ln in lines:
        body = re.sub(r"^libbpf: ", "", ln).strip()
        m = _SRC_LINE.match(body)
        if m:
            last_src = (m.group(1), int(m.group(2)))
            continue
        if body.startswith(("processed ", "-- END PROG LOAD LOG")):
            break
        if body and not _NOISE.match(body):
            complaint = body
    if not complaint:
        errs = [ln for ln in lines if "libbpf:" in ln and ("failed" in ln or "error" in ln.lower())]
        complaint = errs[-1].replace("libbpf: ", "").strip() if errs else "the BPF program was rejected"
    probe = ""
    for kp in gen.kernel_probes:
        if prog in (kp.prog, kp.entry_prog):
            probe = kp.probe.pp or type(kp.probe.point).__name__
    span = None
    where = ""
    if last_src is not None:
        what, span = _where(gen, last_src[1])
        where = f"; at generated C line {last_src[1]}: {last_src[0].strip()[:200]}"
        if what:
            where += f" (from the {what} statement)"
    msg = "the kernel's BPF verifier rejected " + (f"probe {probe}" if probe else f"program {prog or '?'}") + \
        f": {complaint}{where}"
    return Diagnostic(Severity.ERROR, msg, span, code="bpf-verifier", kind="semantic error")
