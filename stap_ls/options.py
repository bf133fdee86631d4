"""stap's command line, as data.

:class:`StapOptions` holds what ``stap`` would be told: passes, guru mode,
privilege, tapset directories, target kernel release and architecture, macros,
script arguments.  :func:`parse_stap_args` reads stap's own command-line syntax
(short options may be bundled, ``-p1`` or ``-p 1``, ``--opt=VALUE`` or
``--opt VALUE``; as with GNU getopt, options may follow the script and its
arguments, and ``--`` ends the options) and returns the options with a list of warnings for options
stap_ls accepts but ignores.  No I/O happens here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: the stap release whose behaviour stap_ls follows (--compatible's ceiling)
STAP_VERSION = "4.8"

PRIVILEGES = ("stapdev", "stapsys", "stapusr")

# short options of stap that take an argument
_SHORT_WITH_ARG = set("pIDBGRramoEcxsTSdeLl")
_SHORT_FLAGS = set("hVvkuwWgPbFtqi")

# long options: name -> takes argument ("required" / "optional" / None)
_LONG = {
    "help": None, "version": None, "vp": "required", "runtime": "required",
    "bpf": None, "prologue-searching": "optional", "privilege": "required",
    "unprivileged": None, "compatible": "required", "check-version": None,
    "skip-badvars": None, "suppress-handler-errors": None, "use-server": "optional",
    "list-servers": "optional", "trust-servers": "optional",
    "use-server-on-error": "optional", "remote": "required", "remote-prefix": None,
    "tmpdir": "required", "download-debuginfo": "optional",
    "dump-probe-types": None, "dump-probe-aliases": None, "dump-functions": None,
    "sysroot": "required", "sysenv": "required", "suppress-time-limits": None,
    "save-uprobes": None, "target-namespace": "required", "modinfo": "required",
    "ldd": None, "all-modules": None, "poison-cache": None, "clang": None,
    "color": "optional", "colour": "optional", "interactive": None,
    "rlimit-as": "required", "rlimit-cpu": "required", "rlimit-nproc": "required",
    "rlimit-stack": "required", "rlimit-fsize": "required", "sign-module": "optional",
    "benchmark-sdt": None, "benchmark-sdt-loops": "required",
    "benchmark-sdt-threads": "required", "monitor": "optional",
    "disable-cache": None, "no-global-var-display": None, "language-server": None,
    # stap_ls's own
    "format": "required", "engine": "required",
}

# options whose effect stap_ls does not model (they matter for passes 3-5 only)
_IGNORED_SHORT = set("kPbFtqBRoSdT")


class UsageError(Exception):
    """A command line stap itself would reject.  The message is stap's own
    text; ``hint`` says whether stap adds its "Try '--help'" lines."""

    def __init__(self, message: str, hint: bool = False) -> None:
        super().__init__(message)
        self.hint = hint


HELP_HINT = ("Try '--help' for more information. [man stap]\n"
             "A message like [man foo] means for more info, run % man foo")

# stap's safety patterns (matched case-insensitively, as stap does)
_MODULE_RE = re.compile(r"^[a-z0-9_]+$", re.I)
_DEFINE_RE = re.compile(r"^[a-z_][a-z_0-9]*(=-?[a-z_0-9]+)?$", re.I)
_PROLOGUE_VALUES = ("never", "always", "auto")


@dataclass
class StapOptions:
    last_pass: int = 5
    verbose: int = 0
    guru: bool = False
    unoptimized: bool = False
    suppress_warnings: bool = False
    warnings_as_errors: bool = False
    include_dirs: list[str] = field(default_factory=list)
    defines: list[str] = field(default_factory=list)
    kernel_release: str | None = None
    arch: str | None = None
    compatible: str | None = None
    privilege: str = "stapdev"
    runtime: str = "kernel"
    skip_badvars: bool = False
    command: str | None = None          # -c
    target_pid: str | None = None       # -x
    script_text: str | None = None      # -e
    script_file: str | None = None      # FILE or '-'
    extra_scripts: list[str] = field(default_factory=list)  # -E
    script_args: list[str] = field(default_factory=list)
    list_probes: str | None = None      # -l
    list_probes_vars: str | None = None  # -L
    globals_set: list[str] = field(default_factory=list)    # -G
    module_name: str | None = None      # -m
    buffer_size: int | None = None      # -s (MB)
    interactive: bool = False           # -i
    monitor: bool = False               # --monitor
    output_format: str = "text"         # --format=text|json (stap_ls)
    engine: str | None = None           # --engine=stap|bpf (stap_ls)
    #: every option as given, for handing on to the real stap
    raw: list[str] = field(default_factory=list)

    @property
    def privilege_explicit(self) -> bool:
        return self.privilege != "stapdev"


def _split_long(arg: str) -> tuple[str, str | None]:
    name, eq, value = arg[2:].partition("=")
    return name, (value if eq else None)


def parse_stap_args(argv: list[str]) -> tuple[StapOptions, list[str]]:
    """Parse stap's command line.  Returns the options and ignored-option warnings.

    Raises :class:`UsageError` for what stap would refuse.
    """
    o = StapOptions()
    warnings: list[str] = []
    i = 0
    n = len(argv)
    positional: list[str] = []
    while i < n:
        arg = argv[i]
        if arg == "-":
            positional.append(arg)
            i += 1
            continue
        if arg == "--":
            positional.extend(argv[i + 1:])
            break
        if arg.startswith("--"):
            name, value = _split_long(arg)
            kind = _LONG.get(name, "unknown")
            if kind == "unknown":
                raise UsageError(f"stap: unrecognized option '{arg}'", hint=True)
            if kind == "required" and value is None:
                if i + 1 >= n:
                    raise UsageError(f"stap: option '--{name}' requires an argument", hint=True)
                i += 1
                value = argv[i]
            o.raw.extend(["--" + name + ("=" + value if value is not None else "")])
            _apply_long(o, name, value, warnings)
            i += 1
            continue
        if arg.startswith("-") and len(arg) > 1:
            o.raw.append(arg)
            j = 1
            while j < len(arg):
                c = arg[j]
                if c in _SHORT_WITH_ARG:
                    value = arg[j + 1:]
                    if not value:
                        if i + 1 >= n:
                            raise UsageError(f"stap: option requires an argument -- '{c}'",
                                             hint=True)
                        i += 1
                        value = argv[i]
                        o.raw.append(value)
                    _apply_short(o, c, value, warnings)
                    break
                if c in _SHORT_FLAGS:
                    _apply_short(o, c, None, warnings)
                    j += 1
                    continue
                raise UsageError(f"stap: invalid option -- '{c}'", hint=True)
            i += 1
            continue
        positional.append(arg)
        i += 1
    listing = o.list_probes is not None or o.list_probes_vars is not None
    if o.script_text is None and not listing:
        if positional:
            o.script_file = positional[0]
            o.script_args = positional[1:]
    else:
        o.script_args = positional
    _cross_check(o, listing, warnings)
    return o, warnings


def _cross_check(o: StapOptions, listing: bool, warnings: list[str]) -> None:
    """The checks stap makes on the whole command line (session.cxx)."""
    if o.command is not None and o.target_pid is not None:
        raise UsageError("You can't specify -c and -x together.", hint=True)
    if listing and o.monitor:
        raise UsageError("Cannot specify --monitor with -l/-L/--dump-* switches.", hint=True)
    if listing and o.script_text is not None:
        raise UsageError("Cannot specify a script with -l/-L/--dump-* switches.", hint=True)
    if o.interactive:
        raise UsageError("interactive mode (-i) is not supported by stap-ls check")
    if o.compatible is not None and o.compatible != "" and \
            _verscmp(o.compatible, STAP_VERSION) > 0:
        raise UsageError(f"ERROR: systemtap version {STAP_VERSION} cannot be compatible "
                         f"with future version {o.compatible}")


def _verscmp(a: str, b: str) -> int:
    pa = re.findall(r"\d+|\D+", a)
    pb = re.findall(r"\d+|\D+", b)
    for x, y in zip(pa, pb):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            return -1 if int(x) < int(y) else 1
        return -1 if x < y else 1
    return (len(pa) > len(pb)) - (len(pa) < len(pb))


def _apply_short(o: StapOptions, c: str, v: str | None, warnings: list[str]) -> None:
    if c == "p":
        p = _c_int(v)
        if p is None or not 1 <= p <= 5:
            raise UsageError("Invalid pass number (should be 1-5).")
        o.last_pass = p
    elif c == "s":
        size = _c_int(v)
        if size is None or not 1 <= size <= 4095:
            raise UsageError("Invalid buffer size (should be 1-4095).")
        o.buffer_size = size
        warnings.append("option -s only affects passes 3-5; ignored by stap-ls check")
    elif c == "m":
        if not v:
            raise UsageError("Module name cannot be empty.")
        if not _MODULE_RE.match(v):
            raise UsageError(f"ERROR: Safety pattern mismatch for -m parameter "
                             f"('{v}' vs. '^[a-z0-9_]+$') rc=1")
        if len(v) > 55:
            warnings.append(f"Truncating module name to '{v[:55]}'")
            v = v[:55]
        o.module_name = v
        warnings.append("option -m only affects passes 3-5; ignored by stap-ls check")
    elif c == "i":
        o.interactive = True
    elif c == "v":
        o.verbose += 1
    elif c == "g":
        o.guru = True
    elif c == "u":
        o.unoptimized = True
    elif c == "w":
        o.suppress_warnings = True
    elif c == "W":
        o.warnings_as_errors = True
    elif c == "I":
        o.include_dirs.append(v or "")
    elif c == "D":
        if not _DEFINE_RE.match(v or ""):
            raise UsageError(f"ERROR: Safety pattern mismatch for -D parameter ('{v}' vs. "
                             "'^[a-z_][a-z_0-9]*(=-?[a-z_0-9]+)?$') rc=1")
        o.defines.append(v or "")
    elif c == "r":
        o.kernel_release = v
    elif c == "a":
        o.arch = v
    elif c == "e":
        if o.script_text is not None:
            raise UsageError("Only one script can be given on the command line.")
        o.script_text = v
    elif c == "E":
        o.extra_scripts.append(v or "")
    elif c == "c":
        o.command = v
    elif c == "x":
        if _c_int(v) is None:
            raise UsageError("Invalid target process ID number.")
        o.target_pid = v
    elif c == "l":
        o.list_probes = v
        o.last_pass = min(o.last_pass, 2)
    elif c == "L":
        o.list_probes_vars = v
        o.last_pass = min(o.last_pass, 2)
    elif c == "G":
        o.globals_set.append(v or "")
    elif c in ("h", "V"):
        pass
    elif c in _IGNORED_SHORT:
        warnings.append(f"option -{c} only affects passes 3-5; ignored by stap-ls check")


def _apply_long(o: StapOptions, name: str, v: str | None, warnings: list[str]) -> None:
    if name == "privilege":
        if v not in PRIVILEGES:
            raise UsageError(f"Invalid argument '{v}' for --privilege.")
        o.privilege = v
    elif name == "unprivileged":
        o.privilege = "stapusr"
    elif name == "compatible":
        o.compatible = v or None
    elif name == "runtime":
        if v not in ("kernel", "dyninst", "bpf"):
            raise UsageError(f"ERROR: {v} is an invalid argument for --runtime")
        o.runtime = v or "kernel"
    elif name == "prologue-searching":
        if v is not None and v not in _PROLOGUE_VALUES:
            raise UsageError(f"Invalid argument '{v}' for --prologue-searching.")
        warnings.append("option --prologue-searching only affects passes 3-5; "
                        "ignored by stap-ls check")
    elif name == "monitor":
        o.monitor = True
        warnings.append("option --monitor only affects pass 5; ignored by stap-ls check")
    elif name == "bpf":
        o.runtime = "bpf"
    elif name == "skip-badvars":
        o.skip_badvars = True
    elif name == "format":
        if v not in ("text", "json"):
            raise UsageError(f"Invalid argument '{v}' for --format (text or json).")
        o.output_format = v
    elif name == "engine":
        if v not in ("stap", "bpf"):
            raise UsageError(f"Invalid argument '{v}' for --engine (stap or bpf).")
        o.engine = v
    elif name in ("help", "version", "language-server"):
        pass
    elif name.startswith("rlimit-"):
        _check_rlimit(name, v)
        warnings.append(f"option --{name} only affects passes 3-5; ignored by stap-ls check")
    else:
        warnings.append(f"option --{name} only affects passes 3-5; ignored by stap-ls check")


def _check_rlimit(name: str, v: str | None) -> None:
    """stap's checks of an --rlimit-X value: given, and a whole number as
    strtoul(v, &end, 0) reads one up to the end (leading blanks and a sign are
    allowed, trailing ones are not)."""
    if not v:
        raise UsageError(f"An --{name} option value must be specified.")
    if not re.fullmatch(r"[ \t\n\v\f\r]*[+-]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", v):
        if name == "rlimit-as":
            raise UsageError(f"Unable to convert rlimit-as resource limit '{v}'.")
        raise UsageError(f"Unable to convert resource limit '{v}' for {name}")


def _c_int(v: str | None) -> int | None:
    """A whole decimal number as stap's option parsing reads it, or None."""
    if v is None:
        return None
    v = v.strip()
    if not re.fullmatch(r"[+-]?\d+", v):
        return None
    return int(v)
