/*
 * The per-event part of `RocksEventStore.append`, in C: the log entries, the as-of index and
 * the idempotency records of one group commit, put into its WriteBatch in key order.
 *
 * Why: in Python this loop cost the writer about four microseconds per transfer (key building,
 * tuples, a sort of tuples, one interpreted call per key), as much as RocksDB's own write. The
 * layout is the one `rocks.py` documents; that module stays the place that defines it, and its
 * contract tests read back everything written here.
 */

#include "../_gil.h"
#include "../_names.h"
#include "../_slots.h"
#include "../_snapshots.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * Events and idempotency records are read through their slots (ledger/_slots.h), bound once
 * by `configure`: by name it was eight type-dictionary searches per transfer.
 */
enum { E_SEQ, E_TYPE, E_DATA, E_HASH, E_SNAPSHOTS, E_COUNT };
static const char *const event_slots[E_COUNT] = {"seq", "type", "data", "hash", "snapshots"};
enum { I_FINGERPRINT, I_CODE, I_SEQ, I_COUNT };
static const char *const record_slots[I_COUNT] = {"fingerprint", "code", "seq"};

static PyTypeObject *event_type, *record_type;
static Py_ssize_t event_offsets[E_COUNT], record_offsets[I_COUNT];

#define SLOT(obj, offsets, i) SLOT_AT(obj, (offsets)[i])

static PyObject *str_transfer;

typedef struct {
    PyObject *key, *value;  /* owned */
} Entry;

static int
compare_entries(const void *a, const void *b)
{
    PyObject *x = ((const Entry *)a)->key, *y = ((const Entry *)b)->key;
    Py_ssize_t nx = PyBytes_GET_SIZE(x), ny = PyBytes_GET_SIZE(y);
    int c = memcmp(PyBytes_AS_STRING(x), PyBytes_AS_STRING(y), nx < ny ? nx : ny);
    return c != 0 ? c : (nx > ny) - (nx < ny);
}

static int
put3(PyObject *put, PyObject *key, PyObject *value, PyObject *family)
{
    PyObject *args[3] = {key, value, family};
    PyObject *done = PyObject_Vectorcall(put, args, 3, NULL);
    Py_XDECREF(done);
    return done == NULL ? -1 : 0;
}

static PyObject *
seq_key(PyObject *seq, unsigned char out[8])
{
    unsigned long long value = PyLong_AsUnsignedLongLong(seq);
    if (value == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    for (int k = 0; k < 8; k++)
        out[k] = (unsigned char)(value >> (56 - 8 * k));
    return PyBytes_FromStringAndSize((const char *)out, 8);
}

/* Put the event's log entry; append its as-of index entries to `entries`. */
static int
put_event(PyObject *put, PyObject *event, PyObject *log, Entry **entries, Py_ssize_t *count,
          Py_ssize_t *capacity)
{
    unsigned char key_bytes[8];
    PyObject *seq = SLOT(event, event_offsets, E_SEQ), *hash = SLOT(event, event_offsets, E_HASH),
             *data = SLOT(event, event_offsets, E_DATA),
             *snapshots = SLOT(event, event_offsets, E_SNAPSHOTS);
    if (seq == NULL || !PyLong_Check(seq) || hash == NULL || !PyBytes_Check(hash) ||
        data == NULL || !PyBytes_Check(data) || snapshots == NULL || !PyList_Check(snapshots)) {
        PyErr_SetString(PyExc_TypeError,
                        "an event's seq must be an int, hash and data bytes, snapshots a list");
        return -1;
    }
    PyObject *key = seq_key(seq, key_bytes);
    PyObject *value = NULL;
    int status = -1;
    if (key == NULL)
        goto done;
    /* log: seq -> chain hash || canonical body */
    value = PyBytes_FromStringAndSize(NULL, PyBytes_GET_SIZE(hash) + PyBytes_GET_SIZE(data));
    if (value == NULL)
        goto done;
    memcpy(PyBytes_AS_STRING(value), PyBytes_AS_STRING(hash), PyBytes_GET_SIZE(hash));
    memcpy(PyBytes_AS_STRING(value) + PyBytes_GET_SIZE(hash), PyBytes_AS_STRING(data),
           PyBytes_GET_SIZE(data));
    if (put3(put, key, value, log) < 0)
        goto done;
    /* by_account: account id || 0x00 || seq -> packed snapshot */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(snapshots); i++) {
        PyObject *account, *snapshot;
        if (snapshot_pair(snapshots, i, &account, &snapshot) < 0)
            goto done;
        Py_ssize_t id_length;
        const char *id = PyUnicode_AsUTF8AndSize(account, &id_length);
        if (id == NULL)
            goto done;
        if (*count == *capacity) {
            Py_ssize_t grown = *capacity ? *capacity * 2 : 1024;
            Entry *more = PyMem_Realloc(*entries, grown * sizeof(Entry));
            if (more == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            *entries = more;
            *capacity = grown;
        }
        PyObject *index_key = PyBytes_FromStringAndSize(NULL, id_length + 1 + 8);
        if (index_key == NULL)
            goto done;
        char *out = PyBytes_AS_STRING(index_key);
        memcpy(out, id, id_length);
        out[id_length] = '\0';
        memcpy(out + id_length + 1, key_bytes, 8);
        (*entries)[*count].key = index_key;
        (*entries)[*count].value = Py_NewRef(snapshot);
        (*count)++;
    }
    status = 0;
done:
    Py_XDECREF(key);
    Py_XDECREF(value);
    return status;
}

/*
 * `IdempotencyRecord.pack()` (its `_FORMAT`, `>16sHq`: fingerprint, result code, seq), written
 * here because calling the method once per command cost as much as the rest of this loop. The
 * contract tests read every record back with `IdempotencyRecord.unpack`.
 */
static PyObject *
pack_record(PyObject *record)
{
    if (!Py_IS_TYPE(record, record_type)) {
        PyErr_SetString(PyExc_TypeError, "records must be IdempotencyRecord instances");
        return NULL;
    }
    PyObject *fingerprint = SLOT(record, record_offsets, I_FINGERPRINT),
             *code = SLOT(record, record_offsets, I_CODE),
             *seq = SLOT(record, record_offsets, I_SEQ);
    if (fingerprint == NULL || !PyBytes_Check(fingerprint) ||
        PyBytes_GET_SIZE(fingerprint) != 16) {
        PyErr_SetString(PyExc_ValueError, "a record's fingerprint must be 16 bytes");
        return NULL;
    }
    if (code == NULL || !PyLong_Check(code) || seq == NULL || !PyLong_Check(seq)) {
        PyErr_SetString(PyExc_TypeError, "a record's code and seq must be ints");
        return NULL;
    }
    unsigned long code_value = PyLong_AsUnsignedLong(code);
    long long seq_value = PyLong_AsLongLong(seq);
    if (PyErr_Occurred())
        return NULL;
    if (code_value > 0xffff) {
        PyErr_SetString(PyExc_OverflowError, "a record's code must fit two bytes");
        return NULL;
    }
    unsigned char out[26];
    memcpy(out, PyBytes_AS_STRING(fingerprint), 16);
    out[16] = (unsigned char)(code_value >> 8);
    out[17] = (unsigned char)code_value;
    for (int k = 0; k < 8; k++)
        out[18 + k] = (unsigned char)((unsigned long long)seq_value >> (56 - 8 * k));
    return PyBytes_FromStringAndSize((const char *)out, sizeof out);
}

static PyObject *
fill(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "fill(put, events, records, log, by_account, idem) takes 6 arguments");
        return NULL;
    }
    PyObject *put = args[0], *events = args[1], *records = args[2];
    if (!PyList_Check(events) || !PyDict_Check(records)) {
        PyErr_SetString(PyExc_TypeError, "fill: events must be a list, records a dict");
        return NULL;
    }
    if (event_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_rocksbatch is not configured");
        return NULL;
    }
    Entry *entries = NULL;
    Py_ssize_t count = 0, capacity = 0;
    GilYield yield;
    gil_yield_start(&yield);
    PyObject *others = PyList_New(0);
    int failed = others == NULL;
    for (Py_ssize_t i = 0; !failed && i < PyList_GET_SIZE(events); i++) {
        PyObject *event = PyList_GET_ITEM(events, i);
        if (!Py_IS_TYPE(event, event_type)) {
            PyErr_SetString(PyExc_TypeError, "events must be Event instances");
            failed = 1;
            break;
        }
        failed = put_event(put, event, args[3], &entries, &count, &capacity) < 0;
        if (failed)
            break;
        gil_yield_point(&yield, i);
        if (!is_name(SLOT(event, event_offsets, E_TYPE), str_transfer))
            failed = PyList_Append(others, event) < 0;
    }
    /* Random keys go in key order: RocksDB inserts a sorted batch several times faster. */
    if (!failed) {
        qsort(entries, count, sizeof(Entry), compare_entries);
        for (Py_ssize_t i = 0; !failed && i < count; i++) {
            failed = put3(put, entries[i].key, entries[i].value, args[4]) < 0;
            gil_yield_point(&yield, i);
        }
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_DECREF(entries[i].key);
        Py_DECREF(entries[i].value);
    }
    /* idem: scoped key -> IdempotencyRecord.pack(), also in key order */
    PyObject *scopes = failed ? NULL : PyDict_Keys(records);
    failed = scopes == NULL || PyList_Sort(scopes) < 0;
    for (Py_ssize_t i = 0; !failed && i < PyList_GET_SIZE(scopes); i++) {
        PyObject *scope = PyList_GET_ITEM(scopes, i);
        PyObject *record = PyDict_GetItemWithError(records, scope);
        PyObject *packed = record ? pack_record(record) : NULL;
        failed = packed == NULL || put3(put, scope, packed, args[5]) < 0;
        Py_XDECREF(packed);
        gil_yield_point(&yield, i);
    }
    Py_XDECREF(scopes);
    PyMem_Free(entries);
    if (failed) {
        Py_XDECREF(others);
        return NULL;
    }
    return others;
}

static PyObject *
configure(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"event", "record", NULL};
    PyObject *event, *record;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$OO:configure", keywords, &event, &record))
        return NULL;
    if (slot_offsets(event, event_slots, E_COUNT, event_offsets) < 0 ||
        slot_offsets(record, record_slots, I_COUNT, record_offsets) < 0)
        return NULL;
    Py_XSETREF(event_type, (PyTypeObject *)Py_NewRef(event));
    Py_XSETREF(record_type, (PyTypeObject *)Py_NewRef(record));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"fill", (PyCFunction)(void (*)(void))fill, METH_FASTCALL,
     "fill(put, events, records, log, by_account, idem) -> the events that are not transfers\n\n"
     "Put a group's log entries, as-of index entries and idempotency records with `put`\n"
     "(a WriteBatch's bound put), each family in key order. The events returned are those\n"
     "that may need records of other families (opened accounts, holds)."},
    {"configure", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     "configure(*, event, record)\n\nBind the slot layout of the event and idempotency\n"
     "record classes; `fill` requires it."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_rocksbatch",
    "The per-event part of a RocksDB group commit's WriteBatch.", -1, methods,
};

PyMODINIT_FUNC
PyInit__rocksbatch(void)
{
    str_transfer = PyUnicode_InternFromString("transfer");
    if (str_transfer == NULL)
        return NULL;
    return PyModule_Create(&module_def);
}
