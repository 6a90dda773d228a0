# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""A trial, not part of the package: ``normalise_body``'s whitespace and line rules
(``text._collapse`` and what follows it) in one pass of C, for ``bench_compiled.py``
to measure what native code there would save. Same result as the Python on every
text (checked by the bench on every body of its pages)."""
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from cpython.mem cimport PyMem_Malloc, PyMem_Free

cdef extern from "Python.h":
    object PyUnicode_FromKindAndData(int kind, const void *buffer, Py_ssize_t size)
    int PyUnicode_KIND(object o)
    void *PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)

ctypedef fused char_t:
    uint8_t
    uint16_t
    uint32_t

cdef Py_ssize_t _run(const char_t *src, Py_ssize_t size, char_t *out, uint32_t b) noexcept nogil:
    cdef Py_ssize_t i, n = 0, blanks = 0
    cdef bint line_has = False, pending = False, any_content = False
    cdef uint32_t c
    for i in range(size):
        c = src[i]
        if c == b:
            blanks = 0 if line_has else blanks + 1
            line_has = False
            pending = False
        elif c == 32 or (9 <= c <= 13) or c == 0xA0:
            if line_has:
                pending = True
        else:
            if not line_has:
                if any_content:
                    out[n] = 10
                    n += 1
                    if blanks:
                        out[n] = 10
                        n += 1
                line_has = True
                any_content = True
            elif pending:
                out[n] = 32
                n += 1
            pending = False
            out[n] = <char_t> c
            n += 1
    return n

def collapse_lines(str text, str brk):
    """_collapse + the line rules of normalise_body, in one pass."""
    cdef uint32_t b = ord(brk)
    cdef Py_ssize_t size = PyUnicode_GET_LENGTH(text), n
    cdef int kind = PyUnicode_KIND(text)
    cdef void *data = PyUnicode_DATA(text)
    cdef void *out = PyMem_Malloc((size + 2) * kind)
    if out == NULL:
        raise MemoryError()
    try:
        if kind == 1:
            n = _run(<const uint8_t *> data, size, <uint8_t *> out, b)
        elif kind == 2:
            n = _run(<const uint16_t *> data, size, <uint16_t *> out, b)
        else:
            n = _run(<const uint32_t *> data, size, <uint32_t *> out, b)
        return PyUnicode_FromKindAndData(kind, out, n)
    finally:
        PyMem_Free(out)
