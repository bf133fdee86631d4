"""Pass 1 from several threads at once, starting cold (the language server
parses a document while its tapset library loads in the background).

Runs in a fresh interpreter with an empty cache directory, so that every
thread reaches the grammar's first construction together.
"""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = r'''
import threading
from stap_ls.syntax.parser import ParseOptions, parse_file
from stap_ls.text import SourceFile

texts = [f"probe begin {{ x{i} = {i}; println(x{i}) }}\nfunction f{i}(a) {{ return a + {i} }}\n"
         * (5 + 20 * i) for i in range(8)]
bad = []

def work(i):
    name = f"t{i}.stp"
    try:
        r = parse_file(SourceFile(name, texts[i]), ParseOptions())
        bad.extend(d.message for d in r.errors)
        if len(r.file.decls) != 2 * (5 + 20 * i):
            bad.append(f"{name}: {len(r.file.decls)} declarations")
        bad.extend(f"{name}: a span in {d.span.source.name}" for d in r.file.decls
                   if d.span.source.name != name)
    except Exception as e:
        bad.append(f"{name}: {e!r}")

threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("\n".join(bad[:10]) or "OK")
'''


def test_first_parses_in_parallel_threads(tmp_path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "OK", r.stdout
