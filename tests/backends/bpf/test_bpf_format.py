"""format.py against expectations derived by hand from stap's runtime sources.

Every expected string below was worked out by stepping through
/usr/share/systemtap/runtime/vsprintf.c (number(), _stp_vsprint_char,
_stp_vsprint_memory, _stp_vsprint_binary) and stat-common.c
(_stp_val_to_bucket, _stp_bucket_to_val, _stp_stat_print_histogram_buf) with the
given data; the comments show the arithmetic.  Where stap differs from C's
printf (``%#x`` of 0, zero padding with a precision) the test pins stap's
behaviour.
"""

import pytest

from stap_ls.backends.bpf import format as F


@pytest.mark.parametrize("fmt,args,expected", [
    ("%d|%i|%u", (-5, 7, -1), b"-5|7|18446744073709551615"),
    ("%5d|%-5d|%05d", (42, 42, 42), b"   42|42   |00042"),
    ("%+d % d", (5, 5), b"+5  5"),
    ("%x %X", (-1, 255), b"ffffffffffffffff FF"),
    ("%#x %#X %#o", (0, 255, 8), b"0x0 0XFF 010"),      # number(): '#' always prefixes
    ("%p", (255,), b"0xff"),                             # %p == %#x since stap 1.3
    ("%.5d", (42,), b"00042"),
    ("%08.3d", (42,), b"00000042"),                      # runtime pads with '0' past precision
    ("%-8.3d|", (-42,), b"-042    |"),
    ("%o", (8,), b"10"),
    ("%c%c", (65, 0x142), b"AB"),                        # low byte only
    ("%#c|%#c|%#c", (10, 1, 92), b"\\n|\\001|\\\\"),
    ("%3c|%-3c|", (65, 65), b"  A|A  |"),
    ("%s|%.3s|%-6s|%6s", ("x", "abcdef", "ab", "ab"), b"x|abc|ab    |    ab"),
    ("%05s", ("ab",), b"   ab\0"),                       # _stp_vsprint_memory appends NUL
    ("%*d|%-*d|%.*s", (5, 3, 4, 3, 2, "abc"), b"    3|3   |ab"),
    ("%*d", (-4, 7), b"7   "),                           # negative '*' width = left align
    ("100%%", (), b"100%"),
    ("%b", (0x41,), b"A" + b"\0" * 7),
    ("%1b%2b", (0x41, 0x4243), b"ACB"),
    ("%4.2b", (0x4243,), b"\0\0CB"),
    ("%M", (b"\x01\xab",), b"01"),                       # default precision 1
    ("%.2M|%.3m", (b"\x01\xab", b"xyz!"), b"01ab|xyz"),
    ("%ld %lld %lu", (1, 2, 3), b"1 2 3"),               # qualifiers accepted, ignored
])
def test_printf(fmt, args, expected):
    assert F.sprintf(fmt, *args) == expected


@pytest.mark.parametrize("bad", ["%", "%q", "abc %5", "%.3"])
def test_bad_format(bad):
    with pytest.raises(F.FormatError, match="invalid or missing conversion specifier"):
        F.parse_format(bad)


def test_value_args():
    assert F.value_args(F.parse_format("%*d %s %.*M %%")) == ["long", "long", "string", "long", "memory"]


def test_log_buckets():
    # _stp_val_to_bucket: 128 - clz64(|v|), mirrored for negatives
    assert [F.log_bucket(v) for v in (0, 1, 2, 3, 4, 1023, 1024, -1, -2)] == \
        [64, 65, 66, 66, 67, 74, 75, 63, 62]
    assert [F.log_bucket_value(b) for b in (64, 65, 66, 75, 63, 62, 0)] == \
        [0, 1, 2, 1024, -1, -2, -(1 << 63)]


def _row(val_space, label, count, cnt_space, scale=1):
    bar = count // scale
    return label.rjust(val_space) + " |" + "@" * bar + str(count).rjust(50 - bar + 1 + cnt_space)


HEADER5 = "value |" + "-" * 50 + " count"


def test_hist_log_small():
    # data 1,2,3,8 -> buckets 65:1 66:2 68:1; range widened to 64..70
    h = [0] * 128
    for v in (1, 2, 3, 8):
        h[F.log_bucket(v)] += 1
    rows = [HEADER5] + [_row(5, str(v), c, 1) for v, c in
                        ((0, 0), (1, 1), (2, 2), (4, 0), (8, 1), (16, 0), (32, 0))]
    assert F.format_histogram(h, "log") == "\n".join(rows) + "\n\n"
    # spot-check one literal line against the familiar stap look
    assert "    2 |@@                                                 2" in F.format_histogram(h, "log")


def test_hist_log_elision():
    # 1 and 1024: buckets 65 and 75; rows 68..72 are all-zero neighbourhoods -> "~"
    h = [0] * 128
    h[F.log_bucket(1)] += 1
    h[F.log_bucket(1024)] += 1
    rows = [HEADER5, _row(5, "0", 0, 1), _row(5, "1", 1, 1), _row(5, "2", 0, 1),
            _row(5, "4", 0, 1), "      ~", _row(5, "256", 0, 1), _row(5, "512", 0, 1),
            _row(5, "1024", 1, 1), _row(5, "2048", 0, 1), _row(5, "4096", 0, 1)]
    assert F.format_histogram(h, "log") == "\n".join(rows) + "\n\n"


def test_hist_log_scaled_and_negative():
    # 120 values of 5 (bucket 67 = 4) and 3 of -3 (bucket 62 = -2)
    h = [0] * 128
    h[F.log_bucket(5)] += 120
    h[F.log_bucket(-3)] += 3
    # scale = ceil(120/50) = 3; cnt_space = 3; low 62->60, high 67->69
    text = F.format_histogram(h, "log").split("\n")
    assert text[0] == HEADER5
    labels = [ln.split("|")[0].strip() for ln in text[1:-2]]
    assert labels == ["-8", "-4", "-2", "-1", "0", "1", "2", "4", "8", "16"]
    assert text[3] == _row(5, "-2", 3, 3, scale=3)     # 3 // 3 = one '@'
    assert text[8] == _row(5, "4", 120, 3, scale=3)    # 40 '@'
    assert text[8].count("@") == 40


def test_hist_linear():
    # @hist_linear(v, 0, 100, 10): 13 buckets; -3 under, 5, 15, 15, 150 over
    nb = F.linear_buckets(0, 100, 10)
    assert nb == 13
    h = [0] * nb
    for v in (-3, 5, 15, 15, 150):
        h[F.linear_bucket(v, 0, 10, nb)] += 1
    assert h[0] == 1 and h[1] == 1 and h[2] == 2 and h[12] == 1
    # under/over both shown; val_space = max(1+1, len("120")+1, 5) = 5
    rows = [HEADER5, _row(5, "<0", 1, 1), _row(5, "0", 1, 1), _row(5, "10", 2, 1),
            _row(5, "20", 0, 1), _row(5, "30", 0, 1), "      ~",
            _row(5, "90", 0, 1), _row(5, "100", 0, 1), _row(5, ">100", 1, 1)]
    assert F.format_histogram(h, "linear", 0, 10) == "\n".join(rows) + "\n\n"


def test_hist_linear_no_under_over():
    nb = F.linear_buckets(0, 50, 10)
    h = [0] * nb
    for v in (12, 13, 25):
        h[F.linear_bucket(v, 0, 10, nb)] += 1
    # low 2 -> 0 -> dropped to 1 (empty underflow); high 3 -> 5
    rows = [HEADER5, _row(5, "0", 0, 1), _row(5, "10", 2, 1), _row(5, "20", 1, 1),
            _row(5, "30", 0, 1), _row(5, "40", 0, 1)]
    assert F.format_histogram(h, "linear", 0, 10) == "\n".join(rows) + "\n\n"


def test_linear_bucket_limits():
    with pytest.raises(ValueError, match="interval cannot be zero"):
        F.linear_buckets(0, 10, 0)
    with pytest.raises(ValueError, match="between 1 and 126"):
        F.linear_buckets(0, 100000, 1)
