/*
 * A growing byte buffer for the native extensions that encode (ledger/core/_fastpath.c builds
 * canonical JSON in one, ledger/_projection.c a Redis command): bytes are appended with
 * `put_raw` after `reserve`, and the caller turns `data[0:size]` into a Python object once.
 */

#ifndef LEDGER_BUFFER_H
#define LEDGER_BUFFER_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

typedef struct {
    char *data;
    Py_ssize_t size, capacity;
} Buffer;

/* Room for `extra` more bytes; 0, or -1 with MemoryError. */
static inline int
reserve(Buffer *b, Py_ssize_t extra)
{
    if (b->size + extra <= b->capacity)
        return 0;
    Py_ssize_t capacity = (b->size + extra) * 2;
    char *data = PyMem_Realloc(b->data, capacity);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->capacity = capacity;
    return 0;
}

static inline int
put_raw(Buffer *b, const char *text, Py_ssize_t length)
{
    if (reserve(b, length) < 0)
        return -1;
    memcpy(b->data + b->size, text, length);
    b->size += length;
    return 0;
}

#endif
