"""Editor settings, as the language server receives them, turned into stap options.

Clients send settings in ``initializationOptions`` and answer
``workspace/configuration`` for the section ``stap-ls``.  The keys are the VS
Code extension's: ``tapsetDirs``, ``kernelRelease``, ``arch``, ``guru``,
``privilege``, ``scriptArgs``, ``defines``, ``stapPath``,
``binarySearchPaths``, ``engine`` and ``command``.  Anything malformed is
ignored with a message (a setting never stops the server), and the result is
a frozen :class:`Settings` whose :meth:`Settings.options` is a
:class:`~stap_ls.options.StapOptions` like the command line would give.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stap_ls.options import PRIVILEGES, StapOptions

ENGINES = ("auto", "stap", "bpf")


@dataclass(frozen=True)
class Settings:
    tapset_dirs: tuple[str, ...] = ()
    kernel_release: str | None = None
    arch: str | None = None
    guru: bool = False
    privilege: str = "stapdev"
    script_args: tuple[str, ...] = ()
    #: True when the client set scriptArgs (missing $N is then an error, not a hint)
    script_args_given: bool = False
    defines: tuple[str, ...] = ()
    stap_path: str = "stap"
    binary_search_paths: tuple[str, ...] = ()
    engine: str = "auto"
    command: tuple[str, ...] = ()
    #: problems met while reading the settings (shown once in the log)
    problems: tuple[str, ...] = field(default=(), compare=False)

    def options(self) -> StapOptions:
        o = StapOptions(last_pass=2)
        o.include_dirs = list(self.tapset_dirs)
        o.kernel_release = self.kernel_release
        o.arch = self.arch
        o.guru = self.guru
        o.privilege = self.privilege
        o.script_args = list(self.script_args)
        o.defines = list(self.defines)
        o.engine = None if self.engine == "auto" else self.engine
        return o

    def stap_args(self) -> list[str]:
        """These settings as stap command-line options (for runs)."""
        out: list[str] = []
        for d in self.tapset_dirs:
            out += ["-I", d]
        if self.kernel_release:
            out += ["-r", self.kernel_release]
        if self.arch:
            out += ["-a", self.arch]
        if self.guru:
            out.append("-g")
        if self.privilege != "stapdev":
            out.append(f"--privilege={self.privilege}")
        for d in self.defines:
            out += ["-D", d]
        return out

    @property
    def environment_key(self) -> tuple:
        """What the tapset library and target model depend on."""
        return (self.tapset_dirs, self.kernel_release, self.arch, self.guru, self.privilege)


def _strs(v, name: str, problems: list[str]) -> tuple[str, ...] | None:
    if v is None:
        return None
    if isinstance(v, str):
        return (v,)
    if isinstance(v, (list, tuple)) and all(isinstance(x, (str, int, float)) for x in v):
        return tuple(str(x) for x in v)
    problems.append(f"setting '{name}' should be a list of strings; ignored")
    return None


def _str(v, name: str, problems: list[str]) -> str | None:
    if v is None or v == "":
        return None
    if isinstance(v, str):
        return v
    problems.append(f"setting '{name}' should be a string; ignored")
    return None


def settings_from(raw: object, base: Settings | None = None) -> Settings:
    """Read a settings object (the ``stap-ls`` section, or a dict holding it)."""
    base = base or Settings()
    problems: list[str] = []
    if not isinstance(raw, dict):
        if raw is not None:
            problems.append("settings should be an object; ignored")
        return Settings(**{**base.__dict__, "problems": tuple(problems)})
    if isinstance(raw.get("stap-ls"), dict):
        raw = raw["stap-ls"]
    vals = dict(base.__dict__)
    for key, attr in (("tapsetDirs", "tapset_dirs"), ("defines", "defines"),
                      ("binarySearchPaths", "binary_search_paths"), ("command", "command")):
        v = _strs(raw.get(key), key, problems)
        if v is not None:
            vals[attr] = v
    args = _strs(raw.get("scriptArgs"), "scriptArgs", problems)
    if args is not None:
        vals["script_args"] = args
        vals["script_args_given"] = True
    for key, attr in (("kernelRelease", "kernel_release"), ("arch", "arch"),
                      ("stapPath", "stap_path")):
        if key in raw:
            v = _str(raw.get(key), key, problems)
            vals[attr] = v if v is not None or attr != "stap_path" else "stap"
    if "guru" in raw:
        if isinstance(raw["guru"], bool):
            vals["guru"] = raw["guru"]
        else:
            problems.append("setting 'guru' should be true or false; ignored")
    if "privilege" in raw:
        p = raw["privilege"]
        if p in PRIVILEGES:
            vals["privilege"] = p
        else:
            problems.append(f"setting 'privilege' should be one of {', '.join(PRIVILEGES)}; "
                            "ignored")
    if "engine" in raw:
        e = raw["engine"]
        if e in ENGINES:
            vals["engine"] = e
        else:
            problems.append(f"setting 'engine' should be one of {', '.join(ENGINES)}; ignored")
    vals["problems"] = tuple(problems)
    return Settings(**vals)
