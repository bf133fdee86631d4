"""The stap engine against the real stap: progress, streamed output, pass
results, and stap's errors as diagnostics at the right place."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest

from stap_helpers import run_stap
from stap_ls.backends.runs import (RunEvents, RunRequest, run_to_completion, start_run,
                                   translated_c)
from stap_ls.text import Diagnostic


class Recorder:
    """Collects every event with the thread it came from."""

    def __init__(self) -> None:
        self.progress: list[tuple[int, str, float | None]] = []
        self.output: list[tuple[str, str]] = []
        self.diagnostics: list[Diagnostic] = []
        self.exits: list[int] = []
        self.order: list[str] = []
        self.exited = threading.Event()

    def events(self) -> RunEvents:
        def prog(n: int, state: str, sec: float | None) -> None:
            self.progress.append((n, state, sec))
            self.order.append(f"progress {n} {state}")

        def out(stream: str, line: str) -> None:
            self.output.append((stream, line))
            self.order.append(f"{stream} {line}")

        def diag(d: Diagnostic) -> None:
            self.diagnostics.append(d)

        def ex(code: int) -> None:
            self.exits.append(code)
            self.exited.set()
        return RunEvents(prog, out, diag, ex)

    def stdout(self) -> str:
        return "".join(line + "\n" for s, line in self.output if s == "stdout")


def _run(args: list[str], cwd: Path, **kw) -> tuple:
    rec = Recorder()
    req, _ = RunRequest.from_command_line(args)
    req.cwd = str(cwd)
    for k, v in kw.items():
        setattr(req, k, v)
    result = run_to_completion(req, rec.events(), timeout=240)
    return result, rec


def test_pass2_streams_progress_and_tree_like_stap(release, data):
    result, rec = _run(["-r", release, "-p2", "hello.stp"], data)
    oracle = run_stap(["-r", release, "-p2", "hello.stp"], data)
    assert result.exit_code == oracle.returncode == 0
    states = [(n, s) for n, s, _ in rec.progress]
    assert states == [(1, "start"), (1, "end"), (2, "start"), (2, "end")]
    assert all(sec is not None and sec >= 0 for _, _, sec in rec.progress)
    assert result.pass_seconds.keys() == {1, 2}
    assert result.seconds >= sum(result.pass_seconds.values()) * 0.9
    # streamed line by line and kept as the pass result, exactly stap's output
    assert rec.stdout() == oracle.stdout
    assert result.pass_result is not None and result.pass_result.kind == "tree"
    assert result.pass_result.text == oracle.stdout
    assert "begin /* <- begin */" in result.pass_result.text
    assert rec.exits == [0] and result.passes_done == 2
    assert result.diagnostics == []


def test_pass3_shows_translated_c(release, data):
    result, rec = _run(["-r", release, "-p3", "hello.stp"], data)
    oracle = run_stap(["-r", release, "-p3", "hello.stp"], data)
    assert result.exit_code == 0
    assert [(n, s) for n, s, _ in rec.progress][-2:] == [(3, "start"), (3, "end")]
    pr = result.pass_result
    assert pr is not None and pr.kind == "c" and pr.language == "c"
    assert pr.text == oracle.stdout
    assert "MODULE_LICENSE" in pr.text and '_stp_print ("hello from stap_ls\\n")' in pr.text


def test_translated_c_helper_for_unsaved_text(release, data):
    text = (data / "hello.stp").read_text().replace("hello from", "edited in")
    req = RunRequest(script_path=str(data / "hello.stp"), script_text=text,
                     stap_args=["-r", release])
    c, diags = translated_c(req)
    assert diags == []
    assert c is not None and '_stp_print ("edited in stap_ls\\n")' in c


def test_pass4_failure_is_summarised_with_first_compiler_error(release, data):
    result, rec = _run(["-r", release, "-p4", "hello.stp"], data)
    assert result.exit_code not in (0, None)
    if result.failed_pass != 4:
        pytest.fail(f"expected pass 4 to fail here (stap 4.8 runtime vs {release} headers); "
                    f"got {result}")
    errors = [line for s, line in rec.output
              if s == "stderr" and re.search(r":\d+:(\d+:)? (fatal )?error: ", line)]
    assert errors, "stap printed no compiler error"
    summary = [d for d in result.diagnostics if d.code == "stap-pass4"]
    assert len(summary) == 1
    first = errors[0]
    where, _, what = first.partition(": error: ")
    assert where in summary[0].message and what in summary[0].message
    assert summary[0].span is not None and summary[0].span.source.name == "hello.stp"
    # the related location opens the runtime file at the compiler's line
    rel = summary[0].related[0].span
    file, line = where.split(":")[:2]
    assert rel.source.name == file and rel.start_pos.line == int(line)
    assert ("4", "failed") in [(str(n), s) for n, s, _ in rec.progress]
    assert rec.progress[-1][:2] == (4, "failed")


def test_without_release_the_build_tree_is_explained(data, stap):
    from stap_ls.backends.doctor import diagnose
    running = os.uname().release
    result, rec = _run(["-p2", "hello.stp"], data)
    finding = diagnose().find("build-tree")
    assert finding is not None
    has_tree = os.path.exists(f"/lib/modules/{running}/build/.config")
    if has_tree:
        assert "build-tree" not in result.environment and finding.status == "ok"
        return
    assert result.exit_code == 1
    assert result.environment == ["build-tree"]
    checking = [line for s, line in rec.output if line.startswith("Checking ")]
    assert checking and f"/lib/modules/{running}/build/.config" in checking[0]
    assert finding.status == "fail" and f"/lib/modules/{running}/build/.config" in finding.detail
    assert finding.fix is not None and running in finding.fix.debian and \
        running in finding.fix.fedora
    assert any(d.code == "stap-environment" for d in result.diagnostics)


def _only(result, code="stap-semantic") -> list[Diagnostic]:
    return [d for d in result.diagnostics if d.code == code]


def _at(d: Diagnostic) -> tuple[int, int, str]:
    assert d.span is not None
    return (d.span.start_pos.line, d.span.start_pos.column,
            d.span.source.text[d.span.start:d.span.end])


def test_semantic_error_at_stap_line_and_column(release, data):
    result, _ = _run(["-r", release, "-p2", "semantic_error.stp"], data)
    oracle = run_stap(["-r", release, "-p2", "semantic_error.stp"], data)
    m = re.search(r"semantic error: (.*): identifier 'count_calls' at "
                  r"semantic_error.stp:(\d+):(\d+)", oracle.stderr)
    assert m, oracle.stderr
    (d,) = _only(result)
    assert _at(d) == (int(m.group(2)), int(m.group(3)), "count_calls")
    assert d.message.startswith(m.group(1))
    assert d.kind == "semantic error" and d.span.source.name == "semantic_error.stp"
    assert result.failed_pass == 2 and result.exit_code == 1


def test_parse_error_position_from_saw_line(release, data):
    result, rec = _run(["-r", release, "-p2", "parse_error.stp"], data)
    (d,) = _only(result, "stap-parse")
    assert _at(d) == (3, 1, "}")
    assert d.saw == "operator '}'" and d.kind == "parse error"
    assert rec.progress[-1][:2] == (1, "failed")


def test_same_file_shorthand_and_chained_reasons(release, data):
    result, _ = _run(["-r", release, "-p2", "type_mismatch.stp"], data)
    places = [_at(d)[:2] for d in _only(result)]
    assert places[:2] == [(4, 3), (3, 3)]        # stap prints the second as 'at :3:3'
    assert all(d.span.source.name == "type_mismatch.stp" for d in _only(result))
    result, _ = _run(["-r", release, "-p2", "needs_debuginfo.stp"], data)
    ds = _only(result)
    assert [_at(d)[:2] for d in ds] == [(1, 7), (1, 7)]
    assert "debuginfo" in ds[1].message and "debuginfo" in result.environment


def test_error_naming_a_tapset_location(release, data):
    result, _ = _run(["-r", release, "-p2", "tapset_error.stp"], data)
    (d,) = _only(result)
    assert _at(d) == (2, 18, "execname")
    assert any(r.span.source.name.endswith("/context.stp") and
               r.span.source.text[r.span.start:r.span.end] == "execname" for r in d.related)


def test_unsaved_text_is_reported_under_the_document_name(release, data, tmp_path):
    text = "probe begin {\n  printf(\"%d\\n\", nothere(1))\n}\n"
    name = str(tmp_path / "never_saved.stp")
    rec = Recorder()
    run = start_run(RunRequest(script_path=name, script_text=text,
                               stap_args=["-r", release, "-p2"]), rec.events())
    result = run.wait(120)
    assert result is not None
    (d,) = _only(result)
    assert d.span.source.name == name and _at(d) == (2, 18, "nothere")
    assert not os.path.exists(name)


def test_e_script(release, data):
    result, _ = _run(["-r", release, "-p2", "-e", "probe begin { x = nosuch_fn() }"], data)
    (d,) = _only(result)
    assert d.span.source.name == "<input>" and _at(d) == (1, 19, "nosuch_fn")


def test_missing_stap_and_bad_options_are_diagnostics(data):
    rec = Recorder()
    run = start_run(RunRequest(script_path=str(data / "hello.stp"),
                               stap_program="/nonexistent/stap"), rec.events())
    result = run.wait(5)
    assert result is not None and result.exit_code == 2 and rec.exits == [2]
    assert result.environment == ["stap"]
    assert "apt install systemtap" in rec.diagnostics[0].message
    result = run_to_completion(RunRequest(script_path=str(data / "hello.stp"),
                                          stap_args=["-p", "9"]), timeout=5)
    assert result.exit_code == 2 and "bad stap options" in result.diagnostics[0].message
    result = run_to_completion(RunRequest(script_path=str(data / "missing.stp")), timeout=5)
    assert result.exit_code == 2 and "cannot read" in result.diagnostics[0].message


def test_loader_errors_shown_as_they_are(data):
    """Pass-5 loader errors: the real staprun's message, verbatim."""
    import shutil
    import subprocess

    from stap_ls.backends.stap_messages import Placement, StderrReader
    from stap_ls.text import SourceFile
    staprun = shutil.which("staprun")
    if staprun is None:
        pytest.fail("staprun is missing: apt install systemtap (it ships staprun)")
    p = subprocess.run([staprun, str(data / "no_such_module.ko")], capture_output=True,
                       text=True, timeout=30)
    lines = p.stderr.splitlines()
    assert p.returncode != 0 and any(line.startswith("ERROR: ") for line in lines)
    src = SourceFile("hello.stp", (data / "hello.stp").read_text())
    got: list[Diagnostic] = []
    reader = StderrReader(Placement(src, {}), lambda ev: None, got.append)
    for line in lines:
        reader.feed(line)
    reader.close()
    expected = [line[len("ERROR: "):] for line in lines if line.startswith("ERROR: ")]
    assert [d.message for d in got] == expected == reader.loader_errors
    assert all(d.span is not None and d.span.source is src for d in got)


def test_user_verbosity_is_kept_and_progress_still_reported(release, data):
    result, rec = _run(["-r", release, "-v", "-p2", "hello.stp"], data)
    oracle = run_stap(["-r", release, "-v", "-p2", "hello.stp"], data)
    assert result.exit_code == 0 and "--vp" not in result.command
    assert [(n, s) for n, s, _ in rec.progress] == [(1, "start"), (1, "end"),
                                                    (2, "start"), (2, "end")]
    assert rec.stdout() == oracle.stdout     # -v -p2 prints function bodies too
    assert "atomic_set (session_state(), STAP_SESSION_STOPPING);" in rec.stdout()


def test_server_payloads(release, data):
    from stap_ls.backends.runs import exit_params, output_params, status_params
    payloads: list[dict] = []
    holder: dict = {}

    def prog(n, s, sec):
        payloads.append(status_params(holder["id"], n, s, sec))

    def out(stream, line):
        payloads.append(output_params(holder["id"], stream, line))
    req = RunRequest(script_path="semantic_error.stp", cwd=str(data),
                     stap_args=["-r", release, "-p2"])
    holder["id"] = "run-x"
    run = start_run(req, RunEvents(prog, out))
    result = run.wait(120)
    assert result is not None
    end = exit_params(run)
    assert end == {"runId": run.id, "state": "exited", "exitCode": 1,
                   "message": f"failed in pass 2 (exit status 1, {result.seconds:.2f} s)"}
    states = [p for p in payloads if "state" in p]
    assert states[0] == {"runId": "run-x", "state": "pass", "pass": 1,
                         "message": "pass 1 (parse) started"}
    assert states[-1]["message"].startswith("pass 2 (elaborate) failed")
    texts = [p["text"] for p in payloads if "stream" in p]
    assert any("unresolved function count_calls" in t for t in texts)


def test_engine_choice(data):
    from stap_ls.backends import runs
    req = RunRequest(script_path=str(data / "hello.stp"), engine="bpf")
    run = runs.start_run(req, RunEvents())
    if "bpf" not in runs.ENGINES:
        result = run.wait(5)
        assert result is not None and result.exit_code == 2
        assert "the 'bpf' run engine is not available" in result.diagnostics[0].message
    else:
        assert type(run).__module__.startswith("stap_ls.backends.bpf")
        run.stop()
    assert runs.choose_engine(RunRequest(stap_args=["-p2"])) == "stap"
    assert runs.choose_engine(RunRequest(stap_args=["--engine=stap"], engine="stap")) == "stap"
