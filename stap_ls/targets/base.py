"""Plain data shared by every source of the target model.

Every answer of the target model says where it came from (``source``): one of
:data:`DWARF`, :data:`BTF`, :data:`SYMBOLS`, :data:`TRACEFS`, :data:`HEADERS`,
:data:`SDT`.  Types are handed out as :class:`TypeRef` handles (the printed name
plus an opaque key into the source that made it) so that pass 2, completion
and hover can walk ``$var->member`` chains without knowing whether the answer
came from BTF or DWARF.  Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DWARF = "dwarf"
BTF = "btf"
SYMBOLS = "symbols"
TRACEFS = "tracefs"
HEADERS = "headers"
SDT = "sdt"

#: what each source cannot tell, for "from BTF: no line information"
SOURCE_LIMITS = {
    BTF: "no line information, no locals, no inlined functions",
    SYMBOLS: "names only: no parameters, types or line information",
    TRACEFS: "field names and C type spellings only",
}


class TargetError(Exception):
    """A binary, BTF blob or cache that cannot be read (truncated, corrupt...).

    The message is meant for the user; it names the file and what is wrong.
    """


@dataclass(frozen=True, slots=True)
class TypeRef:
    """A type as stap prints it (``struct file*``) and how to look further.

    ``origin`` names the backend that can describe it (``"kernel"`` or a
    binary path); ``key`` is that backend's identifier (BTF type id, DWARF
    DIE offset).  ``key`` is ``None`` for types known by spelling only
    (tracefs fields, SDT arguments).
    """

    name: str
    source: str
    origin: str = ""
    key: int | None = None


@dataclass(frozen=True, slots=True)
class Var:
    """A target variable: a parameter, a local, a tracepoint argument."""

    name: str
    type: TypeRef
    kind: str = "param"          # "param" | "local" | "arg" | "field"


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    type: TypeRef
    bit_offset: int = 0


@dataclass(frozen=True, slots=True)
class TypeInfo:
    """What a type is, one level deep.

    ``kind`` is one of ``base``, ``void``, ``pointer``, ``array``, ``struct``,
    ``union``, ``enum``, ``typedef``, ``const``, ``volatile``, ``restrict``,
    ``function``, ``fwd``.  ``target`` is the pointee / element / aliased type;
    ``members`` lists struct and union members (anonymous members keep
    an empty name), ``enumerators`` the names of an enum.
    """

    name: str
    kind: str
    source: str
    size: int | None = None
    target: TypeRef | None = None
    members: tuple[Member, ...] = ()
    enumerators: tuple[str, ...] = ()


@dataclass(slots=True)
class FunctionInfo:
    """A probeable function of the kernel or of a user-space binary."""

    name: str
    source: str
    file: str | None = None
    line: int | None = None
    params: list[Var] = field(default_factory=list)
    locals: list[Var] = field(default_factory=list)
    inlined: bool = False        # has inlined instances (stap lists it)
    has_body: bool = True        # has an out-of-line copy (.call/.return work)
    module: str = "kernel"       # kernel, a module name or a binary path
    return_type: TypeRef | None = None
    #: the source's handle for reading more (DWARF DIE offset); None for BTF/symbols
    key: int | None = None
    vars_loaded: bool = False

    def spec(self) -> str:
        """``name@file:line`` when the line is known, else ``name``."""
        if self.file and self.line:
            return f"{self.name}@{self.file}:{self.line}"
        return self.name

    @property
    def vars(self) -> list[Var]:
        return self.params + self.locals


@dataclass(slots=True)
class Tracepoint:
    """A kernel tracepoint: ``system:name``, its arguments and record fields.

    ``args`` are the tracepoint's prototype arguments (stap's ``$vars``);
    ``fields`` the record fields of the tracefs ``format`` file.
    """

    system: str
    name: str
    source: str
    args: list[Var] = field(default_factory=list)
    fields: list[Var] = field(default_factory=list)
    args_source: str | None = None

    @property
    def full_name(self) -> str:
        return f"{self.system}:{self.name}"


@dataclass(frozen=True, slots=True)
class SdtMarker:
    provider: str
    name: str
    nargs: int
    arg_specs: tuple[str, ...] = ()
    source: str = SDT


@dataclass(frozen=True, slots=True)
class LineRow:
    """One statement of the line table: file, line, address, and the function."""

    file: str
    line: int
    address: int
    function: str | None = None
