"""Real stap scripts, end to end on the bpf engine (pass 1 -> 2 -> translate ->
clang -> libbpf -> output), through ``runs.start_run`` and ``stap-ls run``.

The checks are the issue's: openat counted per execname through kernel.trace,
uprobes with arguments and return values, timer rates and exit(), aggregates
and @hist_log as stap prints them, stop and kill, and the language itself
(the same statements in user space and in the kernel).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

from scriptrun import SCRIPTS, cli, cli_popen, run_script, start_script, finish
from bpfrun import assert_released, live_ids, owned_ids, target_steps

LANGUAGE = os.path.join(SCRIPTS, "language.stp")

# worked out by hand from stap's semantics (C division/modulo, short circuit,
# printd joins, % arrays keep the newest 4 entries); one block per side
_BODY = """\
{w} ops 4 10 -21 -2 1
{w} bits 3 15 2 -8 112 -16
{w} cmp 0 1 1 0 1 0
{w} logic 0 1 0
{w} short 0 1 1 calls=1
{w} fact 120 3628800 first 7 -1
{w} class neg zero pos
{w} ternary 11 calls=2
{w} str abcd[7] 1 1 7
{w} incr 5 7 7
{w} arr 15 1 0
{w} loop 30
{w} print 7/-3
{w},1,two3-4"""
LANGUAGE_EXPECTED = (_BODY.format(w="user") + "\n" + _BODY.format(w="kern") + "\n"
                     + "end kern abcd[7]\nend user abcd[7]\nwrapped 5 25\nwrapped 4 16\ncalls 2")


def test_language_in_user_space_and_kernel(bpf_ready):
    sr = run_script(path=LANGUAGE)
    assert sr.code == 0, (sr.diagnostics, sr.stderr)
    assert "\n".join(sr.stdout) == LANGUAGE_EXPECTED
    assert [p for p in sr.progress if p[1] in ("end", "running")] == \
        [(1, "end"), (2, "end"), (3, "end"), (4, "end"), (5, "running")]


def test_openat_counts_per_execname(bpf_ready, tmp_path):
    """Issue test 1: counts per execname through kernel.trace include our opens."""
    marker = tmp_path / "marker.txt"
    marker.write_text("x")
    comm = open("/proc/self/comm").read().strip()
    script = """
global counts, hits
probe kernel.trace("syscalls:sys_enter_openat") {
  counts[execname()]++
  if (pid() == target() && user_string($filename, "?") == @1) hits++
}
probe end {
  foreach (name in counts-) printf("%s %d\\n", name, counts[name])
  printf("hits %d\\n", hits)
}
"""

    def action():
        for _ in range(9):
            with open(marker) as f:
                f.read()

    sr = run_script(script, args=[str(marker)], stap_args=["-x", str(os.getpid())], action=action)
    assert sr.code == 0, (sr.diagnostics, sr.stderr)
    assert sr.stdout[-1] == "hits 9"
    per = {ln.rsplit(" ", 1)[0]: int(ln.rsplit(" ", 1)[1]) for ln in sr.stdout[:-1]}
    assert per.get(comm, 0) >= 9, per
    assert list(per.values()) == sorted(per.values(), reverse=True)


def _expected_target_lines(n: int) -> list[str]:
    """What target.c does, for the probes of test_uprobe_args_and_returns."""
    out = []
    for i, r, c, total_after_add3, total in target_steps(n):
        out.append(f"add3({i}, {i * 10}, {-i})")
        out.append(f"add3 -> {r} a={i} entry={i}")
        out.append(f"classify({i * 3}) -> {c} {'odd' if c % 2 else 'even'}")
        out.append(f"tick {i} {total} tick")
    return out


def test_uprobe_args_and_returns_cli(target_binary):
    """Issue test 2, through `stap-ls run --engine=bpf -c CMD FILE ARG`."""
    script = os.path.join(SCRIPTS, "uprobes.stp")
    n = 5
    r = cli(["--engine=bpf", "-c", f"{target_binary} {n}", script, target_binary])
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if not ln.isdigit()]  # the command's own total
    assert lines == _expected_target_lines(n), r.stdout
    assert "pass 5 (run): the script is running" in r.stderr


def test_timer_rate_and_exit(bpf_ready):
    """Issue test 3: a 50 ms timer fires ~20 times in the second before exit()."""
    script = """
global n, r
probe begin { println("begin") }
probe timer.ms(50) { n++ }
probe timer.ms(20).randomize(5) { r++ }
probe timer.s(1) { println("exiting"); exit(); println("after exit") }
probe end { printf("n=%d r=%d\\n", n, r) }
"""
    t0 = time.monotonic()
    sr = run_script(script, timeout=30)
    assert sr.code == 0, (sr.diagnostics, sr.stderr)
    assert sr.stdout[:3] == ["begin", "exiting", "after exit"]
    n, r = (int(kv.split("=")[1]) for kv in sr.stdout[3].split())
    assert len(sr.stdout) == 4
    assert 16 <= n <= 22, n       # 1 s / 50 ms
    assert 35 <= r <= 60, r       # 15..25 ms, mean 20 ms
    assert time.monotonic() - t0 < 10


def test_profile_and_cpu_clock_points(bpf_ready):
    """timer.profile (stap 4.8 makes it perf.type(1).config(0).sample(1000000))
    and perf.sw.cpu_clock.sample(N) run on the CPU-clock perf event of every CPU."""
    script = """
global p, c
probe timer.profile { p++ }
probe perf.sw.cpu_clock.sample(5000000) { c++ }
probe timer.ms(500) { exit() }
probe end { printf("p=%d c=%d\\n", p, c) }
"""
    sr = run_script(script, timeout=30)
    assert sr.code == 0, (sr.diagnostics, sr.stderr)
    p, c = (int(kv.split("=")[1]) for kv in sr.stdout[-1].split())
    # every 1 ms and every 5 ms of CPU time on each CPU: mostly idle CPUs
    # still tick, but far less than wall time says, so only the order holds
    assert p > 0 and c > 0, sr.stdout
    assert p > c, (p, c)


def test_aggregates_as_stap_prints_them(target_binary):
    """Issue test 4: <<< in a uprobe; @count/@sum/@avg/@min/@max and @hist_log."""
    script = """
global s, per
probe process(@1).function("add3") {
  if (pid() != target()) next
  s <<< $a
  per[$a % 2] <<< $b
}
probe end {
  printf("count=%d sum=%d avg=%d min=%d max=%d\\n", @count(s), @sum(s), @avg(s), @min(s), @max(s))
  print(@hist_log(s))
  foreach (k+ in per) printf("per %d: %d %d %d\\n", k, @count(per[k]), @sum(per[k]), @avg(per[k]))
}
"""
    sr = run_script(script, args=[target_binary], stap_args=["-c", f"{target_binary} 6 >/dev/null"])
    assert sr.code == 0, (sr.diagnostics, sr.stderr)
    # stap's _stp_stat_print_histogram for values 1..6: buckets 1, 2-3, 4-7,
    # two empty buckets after the last, 50-column bars, a blank line after
    expected = """\
count=6 sum=21 avg=3 min=1 max=6
value |-------------------------------------------------- count
    0 |                                                   0
    1 |@                                                  1
    2 |@@                                                 2
    4 |@@@                                                3
    8 |                                                   0
   16 |                                                   0

per 0: 3 120 40
per 1: 3 90 30"""
    assert "\n".join(sr.stdout) == expected


def test_sigint_prints_end_output():
    """Issue test 5: SIGINT to `stap-ls run` detaches, runs end, exits 0."""
    p = cli_popen(["--engine=bpf", "-e", """
global n
probe begin { println("started") }
probe kernel.trace("syscalls:sys_enter_getppid") { n++ }
probe end { printf("end n>=5: %d\\n", n >= 5) }
"""])
    try:
        assert p.stdout.readline().strip() == "started"
        time.sleep(0.3)  # begin runs before attach; give the attach its time
        for _ in range(20):
            os.getppid()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert out.splitlines() == ["end n>=5: 1"], (out, err)
    assert "run stopped" in err


def test_killed_run_leaves_nothing_attached(target_binary):
    """Issue test 5: SIGKILL of `stap-ls run` leaves no BPF program or link."""
    p = cli_popen(["--engine=bpf", "-e", f"""
global n
probe begin {{ println("started") }}
probe kernel.trace("syscalls:sys_enter_getppid") {{ n++ }}
probe process("{target_binary}").function("add3") {{ n++ }}
probe timer.ms(10) {{ n++ }}
"""])
    progs: set[int] = set()
    links: set[int] = set()
    try:
        assert p.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            progs, links = owned_ids(p.pid)
            if len(progs) >= 3 and len(links) >= 3:
                break
            time.sleep(0.1)
        assert len(progs) >= 3 and len(links) >= 3, (progs, links)
        live_progs, live_links = live_ids()
        assert progs <= live_progs and links <= live_links
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(10)
    assert_released(progs, links)


def test_stop_through_the_run_api(bpf_ready):
    sr = start_script("probe timer.ms(10) { } probe end { println(\"ended\") }")
    assert sr.running.wait(30), (sr.diagnostics, sr.stderr)
    assert sr.run.stop() == "SIGINT"
    finish(sr)
    assert sr.code == 0 and sr.stdout == ["ended"]
    assert sr.run.result.stopped


def test_p3_shows_c_and_p4_compiles(bpf_ready):
    r = cli(["--engine=bpf", "-p3", "-e", 'probe kernel.trace("syscalls:sys_enter_getppid") { println(pid()) }'])
    assert r.returncode == 0, r.stderr
    assert 'SEC("tracepoint/syscalls/sys_enter_getppid")' in r.stdout
    assert "bpf_get_current_pid_tgid" in r.stdout
    r = cli(["--engine=bpf", "-p4", "-e", "probe timer.s(1) { println(1) }"])
    assert r.returncode == 0, r.stderr
    path = r.stdout.strip().splitlines()[-1]
    try:
        assert path.endswith(".o") and open(path, "rb").read(4) == b"\x7fELF"
    finally:
        subprocess.run(["rm", "-rf", os.path.dirname(path)], check=False)


def test_missing_privileges_are_explained(bpf_ready):
    """Without CAP_BPF/CAP_PERFMON (root with every capability dropped) the run
    stops before loading anything and says what is needed."""
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv is missing: apt-get install util-linux"
    r = subprocess.run([setpriv, "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all",
                        sys.executable, "-m", "stap_ls", "run", "--engine=bpf", "-e",
                        'probe timer.ms(1) { println("tick"); exit() }'],
                       capture_output=True, text=True, timeout=120, cwd=SCRIPTS)
    assert r.returncode == 1 and "tick" not in r.stdout
    assert "CAP_BPF and CAP_PERFMON" in r.stderr and "missing here: CAP_BPF, CAP_PERFMON" in r.stderr
    assert r.stderr.count("missing here") == 1, r.stderr


def test_syscall_aliases_on_raw_tracepoints(bpf_ready, tmp_path):
    """syscall.openat / syscall.openat.return elaborate to raw_syscalls:sys_enter
    and sys_exit here (no kprobes, no kernel DWARF); the tapset's argument and
    return-string functions run on the tracepoint record."""
    marker = tmp_path / "marker.txt"
    marker.write_text("x")
    missing = tmp_path / "missing.txt"
    script = """
global names
probe syscall.openat {
  if (pid() == target()) names[tid()] = sprintf("%s %s %s", name, dfd_str, filename)
}
probe syscall.openat.return {
  if (pid() == target() && tid() in names) {
    printf("%s -> %s\\n", names[tid()], retstr)
    delete names[tid()]
  }
}
"""

    def action():
        for _ in range(3):
            with open(marker) as f:
                f.read()
        try:
            open(missing)
        except FileNotFoundError:
            pass

    sr = run_script(script, stap_args=["-x", str(os.getpid())], action=action)
    assert sr.code == 0, (sr.diagnostics, sr.stderr)
    mine = [ln for ln in sr.stdout if str(tmp_path) in ln]
    assert mine[-1] == f'openat AT_FDCWD "{missing}" -> -2 (ENOENT)', mine
    opened = mine[:-1]
    assert len(opened) == 3, mine
    for ln in opened:
        head, _, fd = ln.rpartition(" -> ")
        assert head == f'openat AT_FDCWD "{marker}"' and int(fd) >= 3, ln
