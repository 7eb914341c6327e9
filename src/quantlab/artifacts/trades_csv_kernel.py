"""The trades.csv rows as bytes in one numba kernel (nogil, no allocation): what
:func:`quantlab.artifacts.trades_csv.trades_csv_text` writes, byte for byte, for a big trade log.

Plain functions compiled by ``engine.jit.jitted`` (``cache=True, nogil=True``, no NRT: see
``engine.jit.NO_REFCOUNT``). The caller preallocates the output (:data:`ROW_BOUND` bytes per row)
and gets back the length written.

Floats are ``"%.10g" % x`` exactly. The kernel takes the ``k`` with ``1e9 <= |x| * 10**k <
1e10`` (give or take a margin that rounds the same) and computes that product as a
double-double: ``10**k`` is tabulated as ``hi + lo`` (exact for ``0 <= k <= 22``, else within
2**-106 relative), ``|x| * hi`` is exact by Dekker's TwoProduct
(Veltkamp's split), so the product is off by less than 1e-20 and its rounding to 10 significant
digits is exact unless its fraction is within :data:`TIE_GUARD` of one half (Python rounds an
exact tie half-to-even). Such a near-tie cell, or a ``|x|`` outside ``[1e-290, 1e300)`` (other
than 0, nan, inf), is a *hard* cell: the kernel writes nothing for it and records (byte offset,
cell index) in ``hard``; the caller inserts Python's ``%.10g`` there. More hard cells than
``hard`` holds, a NaT or a year outside 0..9999, or an exit reason outside the word table: the
kernel returns -1 and the caller formats the whole log in Python.
"""

from __future__ import annotations

import math

import numpy as np

ROW_BOUND = 256  # bytes a row at most: id 20, side 5, 2 times 40, 7 floats x 17, int 20, labels 19, 13 commas, newline
N_FLOATS = 7
TIE_GUARD = 1e-9
SPLIT = 134217729.0  # 2**27 + 1 (Veltkamp)
K_MIN, K_MAX = -291, 300  # the scalings 10**k tabulated: |x| in [1e-290, 1e300) (Dekker's split of
X_MIN, X_MAX = 1e-290, 1e300  # |x| or 10**k overflows near 1e300)


def _pow10_table():
    """``10**k`` for ``K_MIN <= k <= K_MAX`` as ``hi + lo``: ``hi`` the nearest double, ``lo`` the
    nearest double to the rest (integer arithmetic: Python's int / int rounds correctly)."""
    hi, lo = [], []
    for k in range(K_MIN, K_MAX + 1):
        num, den = (10 ** k, 1) if k >= 0 else (1, 10 ** -k)
        h = num / den
        a, b = h.as_integer_ratio()
        hi.append(h)
        lo.append((num * b - a * den) / (den * b))
    return np.array(hi), np.array(lo)


POW10_HI, POW10_LO = _pow10_table()
POW10_INT = np.array([10 ** i for i in range(20)], dtype=np.uint64)
DIGIT_PAIRS = np.frombuffer(b"".join(b"%02d" % i for i in range(100)), dtype=np.uint8).copy()

# byte codes (numba has no str -> bytes inside a kernel)
WORDS = ("long", "short", "open", "closed")  # side and status; the exit reasons follow in the table
NAT = -9223372036854775808  # numpy's NaT as int64
COMMA, NEWLINE, DOT, MINUS, PLUS, ZERO, COLON, LETTER_T, LETTER_Z, LETTER_E = 44, 10, 46, 45, 43, 48, 58, 84, 90, 101


def two_product(a, b):
    """``(p, e)`` with ``p + e == a * b`` exactly (no overflow/underflow in range)."""
    p = a * b
    c = SPLIT * a
    ah = c - (c - a)
    al = a - ah
    c = SPLIT * b
    bh = c - (c - b)
    bl = b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def put_int(buf, p, v):
    """``"%d" % v`` at ``buf[p:]``; returns the end (``v`` > -2**63)."""
    if v < 0:
        buf[p] = MINUS
        p += 1
        v = -v
    u = np.uint64(v)
    n = 1
    while n < 20 and u >= POW10_INT[n]:
        n += 1
    end = p + n
    while u >= np.uint64(100):
        q = u // np.uint64(100)
        put_pair(buf, end - 2, u - q * np.uint64(100))
        end -= 2
        u = q
    if u >= np.uint64(10):
        put_pair(buf, end - 2, u)
    else:
        buf[end - 1] = u + np.uint64(ZERO)
    return p + n


def put_bytes(buf, p, src, start, stop):
    for i in range(start, stop):
        buf[p] = src[i]
        p += 1
    return p


def put_2(buf, p, v):
    put_pair(buf, p, v)
    return p + 2


def put_date(buf, p, days):
    """``YYYY-MM-DDT`` of ``days`` since 1970-01-01 (``dates.bar_times_iso``, proleptic
    Gregorian); returns the end, or -1 outside years 0..9999 (numpy writes those otherwise)."""
    z = days + 719468  # days since 0000-03-01 (H. Hinnant's civil_from_days)
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    if year < 0 or year > 9999:
        return -1
    put_pair(buf, p, year // 100)
    put_pair(buf, p + 2, year % 100)
    buf[p + 4] = MINUS
    put_pair(buf, p + 5, month)
    buf[p + 7] = MINUS
    put_pair(buf, p + 8, day)
    buf[p + 10] = LETTER_T
    return p + 11


def put_clock(buf, p, sod):
    """``HH:MM:SSZ`` of ``0 <= sod < 86400`` seconds into the day; returns the end."""
    minutes = sod // 60
    hours = sod // 3600
    put_pair(buf, p, hours)
    buf[p + 2] = COLON
    put_pair(buf, p + 3, minutes - 60 * hours)
    buf[p + 5] = COLON
    put_pair(buf, p + 6, sod - 60 * minutes)
    buf[p + 8] = LETTER_Z
    return p + 9


def put_g10(buf, p, x):
    """``"%.10g" % x`` at ``buf[p:]``; returns the end, or -1 for a hard cell (nothing written)."""
    if x != x:
        buf[p] = 110  # n
        buf[p + 1] = 97  # a
        buf[p + 2] = 110
        return p + 3
    neg = math.copysign(1.0, x) < 0.0
    ax = abs(x)
    if ax == 0.0 or ax == math.inf:
        q = p
        if neg:
            buf[q] = MINUS
            q += 1
        if ax == 0.0:
            buf[q] = ZERO
            return q + 1
        buf[q] = 105  # i
        buf[q + 1] = 110  # n
        buf[q + 2] = 102  # f
        return q + 3
    if not X_MIN <= ax < X_MAX:
        return -1
    k = 9 - ((math.frexp(ax)[1] * 1233) >> 12)  # 9 - log10(ax), +-1: log10(2) ~ 1233 / 4096
    hi = 0.0
    lo = 0.0
    for _ in range(4):  # k is one off at most (10**k inexact)
        if k < K_MIN or k > K_MAX:
            return -1
        hi, lo = two_product(ax, POW10_HI[k - K_MIN])
        lo += ax * POW10_LO[k - K_MIN]
        hi, lo = hi + lo, lo - ((hi + lo) - hi)  # renormalised: hi the nearest double
        # 1e9 <= v < 1e10 up to a margin far above the product's error: v just under 1e9 (or
        # just over 1e10) rounds to the 1e9 (1e10 -> 1e9) the next k would round it to
        if hi < 1e9 - 0.01:
            k += 1
        elif hi >= 1e10 + 0.25:
            k -= 1
        else:
            break
    else:
        return -1
    if not 1e9 - 0.01 <= hi < 1e10 + 0.25:  # nan: never index the digit table with garbage
        return -1
    whole = math.floor(hi)
    frac = (hi - whole) + lo
    if frac < 0.0:
        whole -= 1.0
        frac += 1.0
    elif frac >= 1.0:
        whole += 1.0
        frac -= 1.0
    if abs(frac - 0.5) < TIE_GUARD:
        return -1
    m = int(whole) + (1 if frac > 0.5 else 0)
    e = 9 - k
    if m == 10000000000:
        m = 1000000000
        e += 1
    if neg:
        buf[p] = MINUS
        p += 1
    if -4 <= e < 0:  # 0.000ddd
        buf[p] = ZERO
        buf[p + 1] = DOT
        p += 2
        for _ in range(-e - 1):
            buf[p] = ZERO
            p += 1
        return p + put_10_digits(buf, p, m)
    nd = put_10_digits(buf, p + 1, m)  # one byte on: the first digit(s) move left of the point
    if 0 <= e < 10:
        for j in range(e + 1):
            buf[p + j] = buf[p + 1 + j]
        if nd <= e + 1:  # an integer (the zeros after the digits are the digits')
            return p + e + 1
        buf[p + e + 1] = DOT
        return p + nd + 1
    buf[p] = buf[p + 1]  # d[.ddd]e+XX
    if nd > 1:
        buf[p + 1] = DOT
        p += nd + 1
    else:
        p += 1
    buf[p] = LETTER_E
    buf[p + 1] = MINUS if e < 0 else PLUS
    if abs(e) >= 100:
        return put_int(buf, p + 2, abs(e))
    return put_2(buf, p + 2, abs(e))


def put_10_digits(buf, p, m):
    """The 10 digits of ``m`` (``10**9 <= m < 10**10``) at ``buf[p:]``; returns how many are left
    without the trailing zeros. Each digit pair comes from its own division of ``m`` (unsigned,
    by a constant: a multiply), not from a chain of them: the time is the chain's latency."""
    u = np.uint64(m)
    q1 = u // np.uint64(100)
    q2 = u // np.uint64(10000)
    q3 = u // np.uint64(1000000)
    q4 = u // np.uint64(100000000)
    put_pair(buf, p, q4)
    put_pair(buf, p + 2, q3 - q4 * np.uint64(100))
    put_pair(buf, p + 4, q2 - q3 * np.uint64(100))
    put_pair(buf, p + 6, q1 - q2 * np.uint64(100))
    put_pair(buf, p + 8, u - q1 * np.uint64(100))
    nd = 10
    while buf[p + nd - 1] == ZERO:
        nd -= 1
    return nd


def put_pair(buf, p, v):
    """Two digits of ``0 <= v < 100`` (any integer type) from :data:`DIGIT_PAIRS`."""
    buf[p] = DIGIT_PAIRS[2 * v]
    buf[p + 1] = DIGIT_PAIRS[2 * v + 1]


def put_cell(buf, p, x, cell, hard):
    """``,`` and ``%.10g`` of ``x`` (cell number ``cell``); a hard cell is left empty and recorded
    in ``hard``. Returns the end, or -1 when ``hard`` is full."""
    buf[p] = COMMA
    q = put_g10(buf, p + 1, x)
    if q >= 0:
        return q
    nhard = hard[0]
    if 2 * nhard + 3 > hard.shape[0]:
        return -1
    hard[1 + 2 * nhard] = p + 1
    hard[2 + 2 * nhard] = cell
    hard[0] = nhard + 1
    return p + 1


def put_word(buf, p, words, word_end, w):
    """Word ``w`` of the table (:data:`WORDS` then the exit reasons) at ``buf[p:]``; returns the end."""
    return put_bytes(buf, p, words, 0 if w == 0 else word_end[w - 1], word_end[w])


def trades_csv_kernel(buf, long_, entry_ns, exit_ns, entry_price, exit_price, qty, entry_fee, exit_fee, pnl, ret,
                      bars_held, open_, reason, words, word_end, hard):
    """trades.csv's rows (not its header) into ``buf``: ``long_``/``open_`` booleans, the times as
    epoch nanoseconds, the seven float columns of ``trades_csv.FLOAT_COLUMNS``, ``words`` the
    bytes of :data:`WORDS` and then of the exit-reason labels (word ``w`` ending at
    ``word_end[w]``). Returns the length, or -1 (a NaT, a year outside 0..9999, an unknown exit
    reason, too many hard cells); the hard cells are ``hard[0]`` (offset, row * N_FLOATS +
    column) pairs after ``hard[0]``."""
    hard[0] = 0
    last_day, last_at = NAT, 0  # the last date written, and where
    nreasons = word_end.shape[0] - len(WORDS)
    floats = (entry_price, exit_price, qty, entry_fee, exit_fee, pnl, ret)
    p = 0
    for i in range(long_.shape[0]):
        p = put_int(buf, p, i + 1)
        buf[p] = COMMA
        p = put_word(buf, p + 1, words, word_end, 0 if long_[i] else 1)
        for t in (entry_ns[i], exit_ns[i]):
            if t == NAT:
                return -1
            buf[p] = COMMA
            p += 1
            sec = t // 1000000000  # floor, as numpy's datetime64[ns] -> [s]
            days = sec // 86400
            if days == last_day:  # most trades open and close on the day of the one before
                for j in range(11):
                    buf[p + j] = buf[last_at + j]
            elif put_date(buf, p, days) < 0:
                return -1
            else:
                last_day, last_at = days, p
            p = put_clock(buf, p + 11, sec - 86400 * days)
        for c in range(N_FLOATS):
            p = put_cell(buf, p, floats[c][i], i * N_FLOATS + c, hard)
            if p < 0:
                return -1
        buf[p] = COMMA
        p = put_int(buf, p + 1, bars_held[i])
        buf[p] = COMMA
        p = put_word(buf, p + 1, words, word_end, 2 if open_[i] else 3)
        buf[p] = COMMA
        r = reason[i]
        if r < 0 or r >= nreasons:
            return -1
        p = put_word(buf, p + 1, words, word_end, len(WORDS) + r)
        buf[p] = NEWLINE
        p += 1
    return p
