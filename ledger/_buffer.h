/*
 * A growing byte buffer for the native extensions that encode (ledger/core/_fastpath.c builds
 * canonical JSON in one, ledger/_projection.c a Redis command, ledger/transport/_wire.c a bus
 * reply): bytes are appended with `put_raw` after `reserve`, and the caller turns
 * `data[0:size]` into a Python object once.
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

/* `value` in decimal into `out`; the count of characters. By hand: snprintf cost more than
 * the rest of an event's canonical encoding, and most of a bus reply's row. */
static inline int
decimal(long long value, char out[24])
{
    char digits[24];
    int n = 0;
    unsigned long long magnitude = value < 0 ? 0ULL - (unsigned long long)value
                                             : (unsigned long long)value;
    do {
        digits[n++] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude != 0);
    int at = 0;
    if (value < 0)
        out[at++] = '-';
    while (n > 0)
        out[at++] = digits[--n];
    return at;
}

static inline int
put_int(Buffer *b, long long value)
{
    if (reserve(b, 24) < 0)
        return -1;
    b->size += decimal(value, b->data + b->size);
    return 0;
}

#endif
