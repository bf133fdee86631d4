"""SystemTap's printf rules and histogram text, in Python.

The BPF engine never formats text in the kernel: a probe sends a format id and
its binary arguments through the ring buffer and user space formats them here,
so the output is byte-for-byte what stap's runtime would print.

The rules follow stap's runtime (``runtime/vsprintf.c``, the Linux-derived
``number()``, ``_stp_vsprint_char``, ``_stp_vsprint_memory``,
``_stp_vsprint_binary``) and the translator, which passes every integer
argument as a 64-bit value:

* ``%d %i`` signed, ``%u`` unsigned, ``%x %X`` hex, ``%o`` octal, all on the
  64-bit two's complement value; flags ``- + space # 0``, width, precision
  (minimum digits) and ``*`` for either.  ``#`` gives ``0x``/``0X`` for hex
  even for zero and a leading ``0`` for octal.
* ``%p`` is ``%#x``.  ``%c`` prints the low byte; with ``#`` unprintable
  characters are escaped (``\\n``, ``\\ooo``).
* ``%s`` truncates at the precision; the ``0`` flag appends a NUL byte, as the
  runtime does.
* ``%m`` prints ``precision`` raw bytes of memory (default 1), ``%M`` the same
  bytes in hex; ``%b`` writes the value as 1/2/4/8 raw little-endian bytes.
* ``%%`` is a percent sign.

Histograms (``@hist_log``/``@hist_linear``) are printed by
:func:`format_histogram`, following ``_stp_stat_print_histogram_buf`` in
``runtime/stat-common.c``: a header ``value |---...--- count``, 50 columns of
``@`` scaled to the largest bucket, up to two empty buckets shown around the
data, runs of empty buckets elided with ``~``, ``<``/``>`` marks on linear
under/overflow buckets, and a trailing blank line.

Output is ``bytes`` (``%b`` and ``%m`` can produce any byte).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

MASK64 = (1 << 64) - 1
HIST_WIDTH = 50
HIST_ELISION = 2
HIST_LOG_BUCKETS = 128
HIST_LOG_BUCKET0 = 64
STP_MAX_BUCKETS = 128
#: a field width or precision is clamped to stap's print buffer size
STP_BUFFER_SIZE = 8192

INT_CONVS = "diuxXopc"
CONVERSIONS = INT_CONVS + "smMb"


class FormatError(ValueError):
    """A format string stap's translator would reject."""


@dataclass(frozen=True, slots=True)
class Conversion:
    """One ``%...`` directive."""

    conv: str            # one of CONVERSIONS
    flags: str = ""      # subset of "-+ #0"
    width: int = -1      # -1: none; -2: from the argument list ('*')
    precision: int = -1  # -1: none; -2: from the argument list ('*')
    #: offset of the '%' in the format string (for diagnostics)
    offset: int = 0

    @property
    def arg_kind(self) -> str:
        """'long', 'string' or 'memory' — what the value argument must be."""
        if self.conv == "s":
            return "string"
        if self.conv in "mM":
            return "memory"
        return "long"

    @property
    def star_args(self) -> int:
        return (self.width == -2) + (self.precision == -2)


Piece = str | Conversion


def parse_format(fmt: str) -> list[Piece]:
    """Split a format string into literal text and conversions.

    Raises :class:`FormatError` with stap's wording for a directive it would
    reject (``invalid or missing conversion specifier``).
    """
    pieces: list[Piece] = []
    lit: list[str] = []
    i, n = 0, len(fmt)
    while i < n:
        ch = fmt[i]
        if ch != "%":
            lit.append(ch)
            i += 1
            continue
        start = i
        i += 1
        if i < n and fmt[i] == "%":
            lit.append("%")
            i += 1
            continue
        flags = ""
        while i < n and fmt[i] in "-+ #0":
            if fmt[i] not in flags:
                flags += fmt[i]
            i += 1
        width = -1
        if i < n and fmt[i] == "*":
            width = -2
            i += 1
        else:
            j = i
            while i < n and fmt[i].isdigit():
                i += 1
            if i > j:
                width = min(int(fmt[j:i]), STP_BUFFER_SIZE)
        precision = -1
        if i < n and fmt[i] == ".":
            i += 1
            if i < n and fmt[i] == "*":
                precision = -2
                i += 1
            else:
                j = i
                while i < n and fmt[i].isdigit():
                    i += 1
                precision = min(int(fmt[j:i] or "0"), STP_BUFFER_SIZE)
        # stap accepts (and ignores) C length qualifiers
        while i < n and fmt[i] in "hlLjzt":
            i += 1
        if i >= n or fmt[i] not in CONVERSIONS:
            raise FormatError("invalid or missing conversion specifier "
                              f"at offset {start} of format {fmt!r}")
        if lit:
            pieces.append("".join(lit))
            lit = []
        pieces.append(Conversion(fmt[i], flags, width, precision, start))
        i += 1
    if lit:
        pieces.append("".join(lit))
    return pieces


def value_args(pieces: Sequence[Piece]) -> list[str]:
    """The kinds of the arguments a parsed format consumes, in order."""
    kinds: list[str] = []
    for p in pieces:
        if isinstance(p, Conversion):
            kinds.extend(["long"] * p.star_args)
            kinds.append(p.arg_kind)
    return kinds


def _number(num: int, base: int, size: int, precision: int, flags: str,
            signed: bool, large: bool) -> str:
    """Port of the runtime's number(): one integer conversion."""
    digits = "0123456789ABCDEF" if large else "0123456789abcdef"
    left = "-" in flags
    zeropad = "0" in flags and not left
    special = "#" in flags
    num &= MASK64
    sign = ""
    if signed:
        if num >= 1 << 63:
            sign = "-"
            num = (1 << 64) - num
            size -= 1
        elif "+" in flags:
            sign = "+"
            size -= 1
        elif " " in flags:
            sign = " "
            size -= 1
    if special:
        if base == 16:
            size -= 2
        elif base == 8:
            size -= 1
    tmp = []
    if num == 0:
        tmp.append("0")
    while num:
        tmp.append(digits[num % base])
        num //= base
    body = "".join(reversed(tmp))
    precision = max(precision, len(body))
    size -= precision
    out = []
    if not zeropad and not left and size > 0:
        out.append(" " * size)
        size = 0
    out.append(sign)
    if special:
        out.append("0" if base == 8 else ("0X" if large else "0x") if base == 16 else "")
    if not left and size > 0:
        out.append(("0" if zeropad else " ") * size)
        size = 0
    out.append("0" * (precision - len(body)))
    out.append(body)
    if size > 0:
        out.append(" " * size)
    return "".join(out)


_ESCAPES = {7: "a", 8: "b", 12: "f", 10: "n", 13: "r", 9: "t", 11: "v",
            39: "'", 92: "\\"}


def _char(c: int, width: int, flags: str) -> bytes:
    c &= 0xFF
    if "#" in flags and (not (32 <= c < 127) or c in (39, 92)):
        esc = _ESCAPES.get(c)
        body = ("\\" + esc if esc else "\\%o%o%o" % ((c >> 6) & 3, (c >> 3) & 7, c & 7)).encode()
    else:
        body = bytes([c])
    pad = b" " * max(0, width - len(body))
    return body + pad if "-" in flags else pad + body


def _memory(data: bytes, conv: str, width: int, precision: int, flags: str) -> bytes:
    if conv == "s":
        cut = data.find(b"\0")
        if cut >= 0:
            data = data[:cut]
        if precision >= 0:
            data = data[:precision]
        body = data
    else:
        n = precision if precision > 0 else 1
        body = data[:n].ljust(n, b"\0")
        if conv == "M":
            body = body.hex().encode()
    out = body
    if width > len(body):
        pad = b" " * (width - len(body))
        out = body + pad if "-" in flags else pad + body
    if "0" in flags:
        out += b"\0"
    return out


def _binary(num: int, width: int, precision: int, flags: str) -> bytes:
    valid = (1, 2, 4, 8)
    if precision not in valid:
        precision = -1
    if width == -1:
        if precision == -1:
            width = precision = 8
        else:
            width = precision
    elif precision == -1:
        precision = width if width in valid else 8
    body = (num & MASK64).to_bytes(8, "little")[:precision]
    pad = b"\0" * max(0, width - precision)
    return body + pad if "-" in flags else pad + body


def format_values(pieces: Sequence[Piece], args: Sequence[int | bytes | str]) -> bytes:
    """Apply a parsed format to its arguments (ints, or bytes/str for strings)."""
    out: list[bytes] = []
    it = iter(args)
    for p in pieces:
        if isinstance(p, str):
            out.append(p.encode("utf-8", "surrogateescape"))
            continue
        flags, width, precision = p.flags, p.width, p.precision
        if width == -2:
            width = int(next(it))
            if width < 0:
                width, flags = -width, flags + "-"
            width = min(width, STP_BUFFER_SIZE)
        if precision == -2:
            precision = max(0, min(int(next(it)), STP_BUFFER_SIZE))
        value = next(it)
        conv = p.conv
        if conv in "smM":
            data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)
            out.append(_memory(data, conv, width, precision, flags))
        elif conv == "b":
            out.append(_binary(int(value), width, precision, flags))
        elif conv == "c":
            out.append(_char(int(value), width, flags))
        else:
            base = {"o": 8, "x": 16, "X": 16, "p": 16}.get(conv, 10)
            if conv == "p":
                flags += "#"
            text = _number(int(value), base, width, precision, flags,
                           signed=conv in "di", large=conv == "X")
            out.append(text.encode())
    return b"".join(out)


def sprintf(fmt: str, *args: int | bytes | str) -> bytes:
    """Parse and format in one go (for user-space probes and tests)."""
    return format_values(parse_format(fmt), args)


# ----------------------------------------------------------------------------
# statistics


def log_bucket(val: int) -> int:
    """Bucket of a value in a @hist_log (``_stp_val_to_bucket``)."""
    if val == 0:
        return HIST_LOG_BUCKET0
    neg = val < 0
    mag = (-val) & MASK64 if neg else val & MASK64
    res = HIST_LOG_BUCKET0 + mag.bit_length()
    if neg:
        res = HIST_LOG_BUCKETS - res
    return min(res, HIST_LOG_BUCKETS - 1)


def log_bucket_value(num: int) -> int:
    """Lower bound printed for a @hist_log bucket (``_stp_bucket_to_val``)."""
    if num == HIST_LOG_BUCKET0:
        return 0
    if num < HIST_LOG_BUCKET0:
        return -(1 << (63 - num))
    return 1 << (num - HIST_LOG_BUCKET0 - 1)


def linear_buckets(start: int, stop: int, interval: int) -> int:
    """Number of buckets of @hist_linear(start, stop, interval), with the
    under- and overflow buckets; raises ValueError as stap warns."""
    if interval == 0:
        raise ValueError("histogram: interval cannot be zero.")
    span = stop - start
    q = abs(span) // abs(interval)
    buckets = (q if (span >= 0) == (interval > 0) else -q) + 3  # C division
    if buckets > STP_MAX_BUCKETS or buckets < 3:
        raise ValueError(f"histogram: Number of buckets must be between 1 and {STP_MAX_BUCKETS - 2}")
    return buckets


def linear_bucket(val: int, start: int, interval: int, buckets: int) -> int:
    val -= start
    idx = 0 if val < 0 else val // interval + 1
    return min(idx, buckets - 1)


def _space(v: int) -> int:
    return len(str(v))


def format_histogram(hist: Sequence[int], kind: str, start: int = 0,
                     interval: int = 1) -> str:
    """Text of a histogram, exactly as stap prints ``print(@hist_*(x))``.

    ``hist`` holds every bucket's count (128 for ``log``, ``linear_buckets()``
    for ``linear``).
    """
    nb = len(hist)
    low, high, valmax = -1, 0, 0
    for i, c in enumerate(hist):
        if c > 0:
            if low == -1:
                low = i
            high = i
        valmax = max(valmax, c)
    if low == -1:
        # no data: stap's runtime leaves the range undefined; print the header
        low, high = (HIST_LOG_BUCKET0, HIST_LOG_BUCKET0) if kind == "log" else (1, 1)
    for _ in range(2):
        if kind == "log":
            if low != HIST_LOG_BUCKET0 and low > 0:
                low -= 1
        elif low > 0:
            low -= 1
        if high < nb - 1:
            high += 1
    under = over = 0
    if kind == "linear":
        if low == 0 and hist[0] == 0:
            low += 1
        if high == nb - 1 and hist[high] == 0:
            high -= 1
        under = int(low == 0)
        over = int(high == nb - 1)
    scale = 1 if valmax <= HIST_WIDTH else -(-valmax // HIST_WIDTH)
    cnt_space = _space(valmax)
    if kind == "linear":
        val_space = max(_space(start) + under, _space(start + interval * high) + over)
    else:
        val_space = max(_space(log_bucket_value(high)), _space(log_bucket_value(low)))
    val_space = max(val_space, 5)
    lines = ["%*s |%s count" % (val_space, "value", "-" * HIST_WIDTH)]
    eliding = False
    for i in range(low, high + 1):
        lo, hi = max(low, i - HIST_ELISION), min(high, i + HIST_ELISION)
        if all(hist[k] == 0 for k in range(lo, hi + 1)):
            eliding = True
            continue
        if eliding:
            lines.append("%*s ~" % (val_space, ""))
            eliding = False
        prefix = ""
        if kind == "linear":
            if i == 0:
                val, prefix = start, "<"
            elif i == nb - 1:
                val, prefix = start + (i - 2) * interval, ">"
            else:
                val = start + (i - 1) * interval
        else:
            val = log_bucket_value(i)
        bar = hist[i] // scale
        lines.append("%*s%d |%s%*d" % (val_space - _space(val), prefix, val, "@" * bar,
                                       HIST_WIDTH - bar + 1 + cnt_space, hist[i]))
    return "\n".join(lines) + "\n\n"
