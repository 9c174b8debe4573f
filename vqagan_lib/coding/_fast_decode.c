/* The arithmetic decoder of arithmetic.py in C, on fixed-point numbers of bounded width, exact by proof.

arithmetic.py decodes on unbounded Python integers. Here the two numbers the decoder follows,

    d = v - low   (how far the payload v lies into the current interval)   and   w = the interval's width,

are fractions of 1 held as F-bit fixed-point integers (64-bit limbs, least significant first), with F a
little above the payload's length: F bits hold every digit of v, and each step's floor moves d and w by
less than one unit in the last place. So after k symbols the held w is below the exact one by at most k
units and the held d above it by at most k(k+3)/2 (both bounds are carried along). Each symbol is

    s with  start[s] <= floor(d * 2^p / w) < start[s] + freq[s],

read from the top 64 bits of w and the matching bits of d (in practice from a window of the top limbs, with the
full numbers updated once per block of symbols: see decode_run). The error bounds put that quotient within
2^-45 of the exact one, so whenever its fractional part is further than 2^(p-56) from a whole number, the
floor is exact and so is the symbol. The end of the run is checked the same way: the payload is the
canonical (shortest) encoding of the symbols exactly when no number with more trailing zeros than the
payload's lies in the final interval, tested with the bounds on the unsafe side.

Whenever a proof fails (a near-whole quotient, an interval too narrow for the bounds, a payload that may
not be canonical) the function answers 0 and the caller runs the exact Python decoder, which then decodes
or raises its own error. So this file changes what is fast, never what is decoded or refused.
Needs a C compiler with unsigned __int128 (GCC, Clang); without one, arithmetic.py runs alone.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;

static int bit_length64(uint64_t x) { return x ? 64 - __builtin_clzll(x) : 0; }

/* Bits [shift, shift + 128) of the little-endian number x (limbs 0..n-1). */
static u128 bits_at(const uint64_t *x, int n, long shift) {
    long limb = shift / 64;
    int offset = (int)(shift % 64);
    uint64_t x0 = limb < n ? x[limb] : 0, x1 = limb + 1 < n ? x[limb + 1] : 0, x2 = limb + 2 < n ? x[limb + 2] : 0;
    if (offset == 0) return ((u128)x1 << 64) | x0;
    uint64_t lo = (x0 >> offset) | (x1 << (64 - offset));
    uint64_t hi = (x1 >> offset) | (x2 << (64 - offset));
    return ((u128)hi << 64) | lo;
}

/* Bit length of the little-endian number x[0..n-1]. */
static long bit_length(const uint64_t *x, int n) {
    for (int i = n - 1; i >= 0; i--)
        if (x[i]) return 64L * i + bit_length64(x[i]);
    return 0;
}

/* Whether d * 2^p >= m * w, exactly (limbs 0..top+2 of d and w; every limb above is zero). */
static int scaled_at_least(const uint64_t *d, const uint64_t *w, int top, uint64_t m, int p) {
    u128 carry = 0;
    uint64_t borrow = 0, prev_d = 0;
    for (int j = 0; j <= top + 2; j++) {
        uint64_t left = (d[j] << p) | (prev_d >> (64 - p));
        u128 a = (u128)w[j] * m + carry;
        uint64_t right = (uint64_t)a;
        carry = a >> 64;
        borrow = (left < right) || (left - right < borrow);
        prev_d = d[j];
    }
    return !borrow && !carry && !(prev_d >> (64 - p));
}

/* Top limb of w (at most `top`), and the symbol decision on the number pair (d, w):
   1 = proven, q set; 0 = q too near a whole number to prove; -1 = w too narrow for `err` (or d above w).
   `err` bounds how far the held d and w may lie from the exact ones, in their last place, either way. */
static int settle_top(const uint64_t *w, int top) {
    while (top > 0 && !w[top]) top--;
    return top;
}

static int decide(const uint64_t *d, const uint64_t *w, int top, int n, u128 err, int p, uint64_t *q_out,
                  uint64_t *rem_out, uint64_t *w_top_out) {
    long msb = 64L * top + bit_length64(w[top]) - 1;
    long shift = msb - 63;
    /* the top 64 bits of w and the matching bits of d, off by at most 2^shift + err <= 2^(shift+1) each */
    if (shift < 0 || (shift < 128 && err > ((u128)1 << shift))) return -1;
    uint64_t w_top = (uint64_t)bits_at(w, n, shift);  /* in [2^63, 2^64) */
    u128 d_top = bits_at(d, n, shift);
    if (d_top >> 64) return -1;  /* d above w: only a payload outside every interval, or rounding at the edge */
    u128 num = d_top << p;
    uint64_t q = (uint64_t)(num / w_top), rem = (uint64_t)(num % w_top);
    uint64_t tol = w_top >> (56 - p);  /* the quotient is within 2^(p-61) of the exact one; this is 16x that */
    *q_out = q, *rem_out = rem, *w_top_out = w_top;
    if (q >> p) return -1;
    /* Near a whole number the floor is not proven, except at zero: no quotient lies below it. */
    return !((rem < tol && q) || rem > w_top - tol);
}

/* d -= floor(C w / 2^S) and w = floor(F w / 2^S) in place (1 <= S <= 64; limbs 0..top+2, all above are zero).
   Returns whether d went below zero; *rounded tells, for each product, whether bits below 2^S were dropped. */
static int update(uint64_t *d, uint64_t *w, int top, int n, uint64_t C, uint64_t F, int S, int *rounded_c,
                  int *rounded_f) {
    u128 carry_c = 0, carry_f = 0;
    uint64_t prev_c = 0, prev_f = 0, borrow = 0;
    uint64_t below = S == 64 ? ~(uint64_t)0 : ((uint64_t)1 << S) - 1;
    int last = top + 2 < n ? top + 2 : n - 1;
    for (int j = 0; j <= last + 1; j++) {
        uint64_t wj = j <= last ? w[j] : 0;
        u128 a = (u128)wj * C + carry_c, b = (u128)wj * F + carry_f;
        uint64_t low_c = (uint64_t)a, low_f = (uint64_t)b;
        carry_c = a >> 64, carry_f = b >> 64;
        if (j == 0) {
            *rounded_c = (low_c & below) != 0, *rounded_f = (low_f & below) != 0;
        } else {
            uint64_t sub = S == 64 ? low_c : (prev_c >> S) | (low_c << (64 - S));
            uint64_t dj = d[j - 1];
            d[j - 1] = dj - sub - borrow;
            borrow = (dj < sub) || (dj - sub < borrow);
            w[j - 1] = S == 64 ? low_f : (prev_f >> S) | (low_f << (64 - S));
        }
        prev_c = low_c, prev_f = low_f;
    }
    for (int j = last + 1; j < n && borrow; j++) {  /* only a d already below zero borrows this far */
        uint64_t dj = d[j];
        d[j] = dj - 1;
        borrow = dj == 0;
    }
    return (int)borrow;
}

/* The symbol whose slice of the table holds q: the first with start + freq > q. */
static Py_ssize_t symbol_at(const int64_t *start, const int64_t *freq, Py_ssize_t size, uint64_t q) {
    Py_ssize_t lo = 0, hi = size - 1;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if ((uint64_t)(start[mid] + freq[mid]) > q) hi = mid; else lo = mid + 1;
    }
    return lo;
}

enum { WINDOW = 6 };  /* limbs of the window: w's top limb, 3 below it, 1 above for d, 1 spare */

/* Decode one run; 1 = decoded and proven canonical, 0 = no proof (the caller decodes exactly), -1 = no memory.

   A full-width update per symbol would cost a pass over every limb. Instead symbols are decided in blocks: a
   window of the top limbs of d and w (bits from 64 lo up) follows each symbol on its own, and the block's
   symbols, composed into one map d -= floor(C w / 2^S), w = floor(F w / 2^S) with C, F < 2^64, are applied to
   the full numbers once, when S would pass 64 bits. The window is rounded, so its decisions carry their own
   error bound (window units, either way); any decision it cannot prove is made again on the full numbers,
   after the block so far is applied there, where an exact comparison settles ties while nothing is rounded. */
static int decode_run(const uint8_t *data, Py_ssize_t length, const int64_t *starts, const int64_t *freqs,
                      Py_ssize_t size, const int64_t *rows, Py_ssize_t n, int p, int64_t *out, long fraction_bits) {
    int limbs = (int)(fraction_bits / 64) + 3;  /* w starts at 1.0 = 2^F: one limb above F, two of slack */
    uint64_t *d = calloc((size_t)limbs * 2, sizeof(uint64_t));
    if (!d) return -1;
    uint64_t *w = d + limbs;
    long F = fraction_bits;
    /* d = v: byte j of the payload is worth 2^(F - 8(j+1)). */
    for (Py_ssize_t j = 0; j < length; j++) {
        long at = F - 8 * (long)(j + 1);
        d[at / 64] |= (uint64_t)data[j] << (at % 64);
    }
    w[F / 64] = (uint64_t)1 << (F % 64);
    int top = (int)(F / 64);  /* highest limb of w that may be non-zero */
    u128 err_w = 0;  /* held w <= exact w <= held w + err_w */
    u128 err_d = 0;  /* held d - err_d <= exact d <= held d */
    int ok = 1, rc, rf;
    /* the open block: window limbs (full limb lo + j), its error bounds, its composed map */
    uint64_t wd[WINDOW], ww[WINDOW], nd[WINDOW], nw[WINDOW];
    int open = 0, lo = 0, wtop = 0, S = 0;
    u128 win_err_d = 0, win_err_w = 0, C = 0, Fm = 1;
#define FLUSH()                                                                                   \
    do {                                                                                          \
        if (open && S) {                                                                          \
            if (update(d, w, top, limbs, (uint64_t)C, (uint64_t)Fm, S, &rc, &rf)) { ok = 0; break; } \
            err_d += err_w + (rc ? 1 : 0);                                                        \
            err_w += rf ? 1 : 0;                                                                  \
            top = settle_top(w, top);                                                             \
        }                                                                                         \
        open = 0;                                                                                 \
    } while (0)
    for (Py_ssize_t i = 0; i < n && ok; i++) {
        const int64_t *start = starts + rows[i] * size, *freq = freqs + rows[i] * size;
        uint64_t q, rem, w_top;
        if (open && S + p > 64) FLUSH();
        if (!ok) break;
        if (!open) {  /* a fresh window on the full numbers: w's top limb, three below it, one above */
            top = settle_top(w, top);
            lo = top > 3 ? top - 3 : 0;
            for (int j = 0; j < WINDOW; j++) {
                wd[j] = lo + j < limbs ? d[lo + j] : 0;
                ww[j] = lo + j < limbs ? w[lo + j] : 0;
            }
            wtop = top - lo;
            /* the held numbers' own errors in window units, plus one for the bits below the window */
            win_err_d = lo ? (lo == 1 ? (err_d >> 64) + 2 : 2) : err_d;
            win_err_w = lo ? (lo == 1 ? (err_w >> 64) + 2 : 2) : err_w;
            open = 1, S = 0, C = 0, Fm = 1;
        }
        int proven = decide(wd, ww, wtop, WINDOW, win_err_d > win_err_w ? win_err_d : win_err_w, p, &q, &rem, &w_top);
        if (proven == 1) {
            Py_ssize_t s = symbol_at(start, freq, size, q);
            uint64_t c = (uint64_t)start[s], f = (uint64_t)freq[s];
            u128 next_F = Fm * f;
            memcpy(nd, wd, sizeof wd), memcpy(nw, ww, sizeof ww);
            if (!(next_F >> 64) && !update(nd, nw, wtop, WINDOW, c, f, p, &rc, &rf)) {
                out[i] = s;
                memcpy(wd, nd, sizeof wd), memcpy(ww, nw, sizeof ww);
                wtop = settle_top(ww, wtop);
                win_err_d += win_err_w + 1;
                win_err_w += 1;
                C = (C << p) + Fm * c, Fm = next_F, S += p;
                continue;
            }
        }
        /* Not proven in the window (or it would overflow the block): the full numbers decide this symbol. */
        FLUSH();
        if (!ok) break;
        top = settle_top(w, top);
        proven = decide(d, w, top, limbs, err_d > err_w ? err_d : err_w, p, &q, &rem, &w_top);
        if (proven == 0 && !err_d && !err_w) {  /* nothing rounded yet: an exact comparison settles it */
            uint64_t tol = w_top >> (56 - p);
            uint64_t up = rem < tol ? q : q + 1;
            q = scaled_at_least(d, w, top, up, p) ? up : up - 1;
            proven = !(q >> p);
        }
        if (proven != 1) { ok = 0; break; }
        Py_ssize_t s = symbol_at(start, freq, size, q);
        out[i] = s;
        if (update(d, w, top, limbs, (uint64_t)start[s], (uint64_t)freq[s], p, &rc, &rf)) { ok = 0; break; }
        err_d += err_w + (rc ? 1 : 0);
        err_w += rf ? 1 : 0;
        top = settle_top(w, top);
    }
    if (ok) FLUSH();
#undef FLUSH
    if (ok) {
        /* Canonical: v is the number of the final interval with the most trailing zeros. With u = 2^(trailing
           zeros of v), no multiple of 2u lies in [v - d, v - d + w): exact d < u and exact w - exact d <= u. */
        Py_ssize_t last = length - 1;
        while (last >= 0 && !data[last]) last--;
        if (last < 0) {
            ok = length == 0;  /* v = 0 is canonical only as no bytes at all */
        } else if (last != length - 1) {
            ok = 0;  /* a zero last byte: the canonical encoding is shorter */
        } else {
            long u_bit = F - 8 * (long)length + __builtin_ctz(data[last]);
            /* exact w - exact d <= (w + err_w) - (d - err_d): held w + err_w + err_d - d, formed in place in w */
            u128 add = (u128)err_w + err_d;
            uint64_t carry = 0;
            for (int j = 0; j < limbs; j++) {
                uint64_t a = j == 0 ? (uint64_t)add : j == 1 ? (uint64_t)(add >> 64) : 0;
                u128 s = (u128)w[j] + a + carry;
                w[j] = (uint64_t)s, carry = (uint64_t)(s >> 64);
            }
            uint64_t borrow = 0;
            for (int j = 0; j < limbs; j++) {
                uint64_t wj = w[j], dj = d[j];
                w[j] = wj - dj - borrow;
                borrow = (wj < dj) || (wj - dj < borrow);
            }
            /* the bound on exact w - exact d, against u: below it, or equal to it */
            int gap_ok = !borrow && bit_length(w, limbs) <= u_bit;
            if (!borrow && !gap_ok) {
                gap_ok = 1;
                for (int j = 0; j < limbs; j++)
                    if (w[j] != ((j == u_bit / 64) ? (uint64_t)1 << (u_bit % 64) : 0)) { gap_ok = 0; break; }
            }
            ok = gap_ok && bit_length(d, limbs) <= u_bit;
        }
    }
    free(d);
    return ok;
}

static PyObject *fast_decode(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer data, starts, freqs, rows, out;
    int precision;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "y*y*y*y*w*ni", &data, &starts, &freqs, &rows, &out, &size, &precision))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = rows.len / 8, tables = size > 0 ? starts.len / 8 / size : 0;
    if (precision < 1 || precision > 24 || size < 1 || starts.len != freqs.len || starts.len % (8 * size) ||
        rows.len % 8 || out.len != rows.len || n >= ((Py_ssize_t)1 << 31)) {
        PyErr_SetString(PyExc_ValueError, "fast_decode: tables, rows and out do not fit together");
        goto done;
    }
    const int64_t *row = rows.buf;
    for (Py_ssize_t i = 0; i < n; i++)
        if (row[i] < 0 || row[i] >= tables) {
            PyErr_SetString(PyExc_ValueError, "fast_decode: a row names no table");
            goto done;
        }
    long total = (long)precision * (long)n;
    int ok;
    Py_BEGIN_ALLOW_THREADS
    /* First with F just above the payload (almost every run); if the interval outran it, with F above every
       digit the run could hold, where nothing is rounded at all. */
    long payload_bits = 8L * (long)data.len;
    long first = ((payload_bits + 191) / 64) * 64;
    ok = decode_run(data.buf, data.len, starts.buf, freqs.buf, size, row, n, precision, out.buf, first);
    if (ok == 0) {
        long wide = (((payload_bits > total ? payload_bits : total) + 191) / 64) * 64;
        if (wide > first)
            ok = decode_run(data.buf, data.len, starts.buf, freqs.buf, size, row, n, precision, out.buf, wide);
    }
    Py_END_ALLOW_THREADS
    if (ok < 0) PyErr_NoMemory();
    else result = PyBool_FromLong(ok);
done:
    PyBuffer_Release(&data), PyBuffer_Release(&starts), PyBuffer_Release(&freqs);
    PyBuffer_Release(&rows), PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"decode", fast_decode, METH_VARARGS,
     "decode(data, starts, freqs, rows, out, size, precision) -> bool: symbols into out when proven, else False"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fast_decode", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__fast_decode(void) { return PyModule_Create(&module); }
