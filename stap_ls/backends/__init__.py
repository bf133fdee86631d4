"""Run engines: the only layer that runs external programs.

* :mod:`~stap_ls.backends.runs` -- the engine-neutral API (``RunRequest``,
  ``Run``, ``RunEvents``, ``start_run``) the CLI and the server use;
* :mod:`~stap_ls.backends.stap_driver` -- the stap engine (real ``stap``,
  passes 1-5), with :mod:`~stap_ls.backends.stap_messages` reading its stderr;
* :mod:`~stap_ls.backends.process` and :mod:`~stap_ls.backends.reaper` -- a
  process group that is stopped SIGINT -> SIGTERM -> SIGKILL and never outlives
  its parent;
* :mod:`~stap_ls.backends.doctor` -- what this machine can run, and why not;
* ``bpf/`` -- the BPF engine (registers itself with ``runs.register_engine``).
"""
