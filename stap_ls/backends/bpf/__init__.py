"""The BPF run engine: SystemTap probe programs as BPF, without kernel modules.

Layers, top to bottom:

* :mod:`ir` — the typed intermediate representation a translator produces
  from an elaborated stap program;
* :mod:`codegen` / :mod:`codegen_program` — IR -> BPF C (+ :mod:`layout`);
* :mod:`compile` — clang, and verifier logs turned into diagnostics;
* :mod:`libbpf` — ctypes bindings to libbpf 1.x;
* :mod:`runtime` — load, attach, poll, ``run_program``; :mod:`interp` runs
  begin/end probes in user space over :mod:`store`;
* :mod:`format` — stap's printf rules and histogram text.

* :mod:`translate` (+ :mod:`translate_exprs`, :mod:`translate_points`,
  :mod:`translate_syscalls`) —
  the elaborated stap program (pass 2) -> IR; :mod:`translate_engine` runs
  passes 1-5 as the ``bpf`` run engine.

Importing this package registers that engine with
:func:`stap_ls.backends.runs.register_engine`.
"""

from stap_ls.backends.bpf.translate_engine import start_bpf_run
from stap_ls.backends.runs import register_engine

register_engine("bpf", start_bpf_run)
