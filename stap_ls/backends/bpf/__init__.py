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

Importing this package does not register a run engine: that happens once a
stap-AST -> IR translator exists (``stap_ls.backends.runs.register_engine``).
"""
