/*
 * The two encoders of ledger/transport/codec.py that the writer's process runs once per
 * event, in C: a bus reply (`reply`: a JSON header line with one row per result, then each
 * success's chain hash and canonical bytes) and a run of events for the committed-event stream
 * (`events`: seq, length, hash and bytes, back to back).
 *
 * Why: the writer's process is the distributed stack's bottleneck (its core 93-97% busy under
 * load), and these two Python loops, a list per result and a `pack` per event plus a
 * `StoredEvent` built for each event the stream publisher took from memory, cost it about
 * 1.2 and 1.5 µs per transfer. The layouts stay defined in codec.py, whose decoders read what
 * is written here; tests/unit/test_transport_codec.py checks both against them.
 */

#include "../_buffer.h"
#include "../_slots.h"

enum { R_CODE, R_EVENT, R_REPLAYED, R_SEQ, R_ACCOUNT, R_COUNT };
static const char *const result_slots[R_COUNT] = {"code", "event", "replayed", "seq", "account"};
enum { E_SEQ, E_DATA, E_HASH, E_COUNT };
static const char *const event_slots[E_COUNT] = {"seq", "data", "hash"};

static PyTypeObject *result_type, *event_type;
static Py_ssize_t result_offsets[R_COUNT], event_offsets[E_COUNT];

#define SLOT(obj, offsets, i) SLOT_AT(obj, (offsets)[i])

enum { HASH_SIZE = 32 };

static PyObject *
configure(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"result", "event", NULL};
    PyObject *result, *event;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$OO", names, &result, &event))
        return NULL;
    if (slot_offsets(result, result_slots, R_COUNT, result_offsets) < 0 ||
        slot_offsets(event, event_slots, E_COUNT, event_offsets) < 0)
        return NULL;
    Py_XSETREF(result_type, (PyTypeObject *)Py_NewRef(result));
    Py_XSETREF(event_type, (PyTypeObject *)Py_NewRef(event));
    Py_RETURN_NONE;
}

static int
configured(void)
{
    if (result_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure(result=..., event=...) was not called");
        return 0;
    }
    return 1;
}

/* A Python int (an IntEnum member included) in decimal; 0, or -1 with an exception. */
static int
put_int_object(Buffer *b, PyObject *value, const char *what)
{
    if (value == NULL || !PyLong_Check(value)) {
        PyErr_Format(PyExc_TypeError, "a result's %s is not an int", what);
        return -1;
    }
    long long number = PyLong_AsLongLong(value);
    if (number == -1 && PyErr_Occurred())
        return -1;
    return put_int(b, number);
}

/* The two-character escapes JSON has for control characters; 0 where \u00XX is needed. */
static const char short_escape[0x20] = {
    ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f', ['\r'] = 'r',
};

/* A str as a JSON string: quote, backslash and control characters escaped, the rest as UTF-8
 * (as orjson writes it); 0, or -1 with an exception. */
static int
put_json_string(Buffer *b, PyObject *text)
{
    Py_ssize_t length;
    const char *utf8 = PyUnicode_AsUTF8AndSize(text, &length);
    if (utf8 == NULL || reserve(b, 2 + 6 * length) < 0)
        return -1;
    char *out = b->data + b->size;
    *out++ = '"';
    for (Py_ssize_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)utf8[i];
        if (c == '"' || c == '\\') {
            *out++ = '\\';
            *out++ = (char)c;
        } else if (c < 0x20 && short_escape[c] != 0) {
            *out++ = '\\';
            *out++ = short_escape[c];
        } else if (c < 0x20) {
            static const char hex[] = "0123456789abcdef";
            memcpy(out, "\\u00", 4);
            out[4] = hex[c >> 4];
            out[5] = hex[c & 0xf];
            out += 6;
        } else {
            *out++ = (char)c;
        }
    }
    *out++ = '"';
    b->size = out - b->data;
    return 0;
}

/* The stored event a replayed success refers to, from `load(seq)`: a new reference to a
 * (seq, body, hash) tuple, Py_None when the log has no such event, NULL with an exception. */
static PyObject *
replayed_event(PyObject *load, PyObject *seq)
{
    PyObject *stored = PyObject_CallOneArg(load, seq);
    if (stored == NULL || stored == Py_None)
        return stored;
    if (!PyTuple_Check(stored) || PyTuple_GET_SIZE(stored) != 3 ||
        !PyBytes_Check(PyTuple_GET_ITEM(stored, 1)) ||
        !PyBytes_Check(PyTuple_GET_ITEM(stored, 2))) {
        Py_DECREF(stored);
        PyErr_SetString(PyExc_TypeError, "load() did not return a (seq, body, hash) event");
        return NULL;
    }
    return stored;
}

/* One result: its row `[code,replayed,seq,account,length]` in `header` and, for a success
 * with an event, its hash and bytes in `blobs`; 0, or -1 with an exception. */
static int
put_result(Buffer *header, Buffer *blobs, PyObject *result, PyObject *load)
{
    PyObject *event = SLOT(result, result_offsets, R_EVENT);
    PyObject *replayed = SLOT(result, result_offsets, R_REPLAYED);
    PyObject *seq = SLOT(result, result_offsets, R_SEQ);
    PyObject *account = SLOT(result, result_offsets, R_ACCOUNT);
    PyObject *stored = NULL, *data = NULL, *chain_hash = NULL;
    if (event == NULL || replayed == NULL || seq == NULL || account == NULL) {
        PyErr_SetString(PyExc_TypeError, "a result with an unset field");
        return -1;
    }
    int is_replayed = PyObject_IsTrue(replayed);
    long long number = PyLong_Check(seq) ? PyLong_AsLongLong(seq) : -1;
    if (is_replayed < 0 || (number == -1 && PyErr_Occurred()))
        return -1;
    if (event != Py_None) {
        if (!Py_IS_TYPE(event, event_type)) {
            PyErr_SetString(PyExc_TypeError, "a result's event is not an Event");
            return -1;
        }
        seq = SLOT(event, event_offsets, E_SEQ);
        data = SLOT(event, event_offsets, E_DATA);
        chain_hash = SLOT(event, event_offsets, E_HASH);
    } else if (is_replayed && number >= 0) {
        stored = replayed_event(load, seq);
        if (stored == NULL)
            return -1;
        if (stored != Py_None) {
            data = PyTuple_GET_ITEM(stored, 1);
            chain_hash = PyTuple_GET_ITEM(stored, 2);
        }
    }
    int failed = 1;
    if (data != NULL && (!PyBytes_Check(data) || chain_hash == NULL ||
                         !PyBytes_Check(chain_hash) || PyBytes_GET_SIZE(chain_hash) != HASH_SIZE)) {
        PyErr_SetString(PyExc_TypeError, "an event without its bytes or 32-byte hash");
        goto done;
    }
    if (put_raw(header, "[", 1) < 0 ||
        put_int_object(header, SLOT(result, result_offsets, R_CODE), "code") < 0 ||
        put_raw(header, is_replayed ? ",true," : ",false,", is_replayed ? 6 : 7) < 0 ||
        put_int_object(header, seq, "seq") < 0 ||
        put_raw(header, ",", 1) < 0)
        goto done;
    if (account == Py_None) {
        if (put_raw(header, "null", 4) < 0)
            goto done;
    } else if (!PyUnicode_Check(account)) {
        PyErr_SetString(PyExc_TypeError, "a result's account is not a str or None");
        goto done;
    } else if (put_json_string(header, account) < 0) {
        goto done;
    }
    if (put_raw(header, ",", 1) < 0 ||
        put_int(header, data == NULL ? -1 : PyBytes_GET_SIZE(data)) < 0 ||
        put_raw(header, "]", 1) < 0)
        goto done;
    if (data != NULL &&
        (put_raw(blobs, PyBytes_AS_STRING(chain_hash), HASH_SIZE) < 0 ||
         put_raw(blobs, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data)) < 0))
        goto done;
    failed = 0;
done:
    Py_XDECREF(stored);
    return failed ? -1 : 0;
}

PyDoc_STRVAR(reply_doc,
"reply(request_id, last_seq, results, load) -> bytes\n\n"
"A bus reply: the JSON line [request_id, last_seq, rows] and a newline, each row\n"
"[code, replayed, seq, account, length], then the hash and bytes of every success that has an\n"
"event (length -1 for the others). A replayed success without its event takes it from\n"
"load(seq), which returns a (seq, body, hash) tuple or None.");

static PyObject *
reply(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyUnicode_Check(args[0]) || !PyLong_Check(args[1]) ||
        !PyList_CheckExact(args[2]) || !PyCallable_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "reply(request_id: str, last_seq: int, results: list, load: callable)");
        return NULL;
    }
    if (!configured())
        return NULL;
    PyObject *results = args[2];
    Buffer header = {NULL, 0, 0}, blobs = {NULL, 0, 0};
    PyObject *out = NULL;
    Py_ssize_t count = PyList_GET_SIZE(results);
    if (reserve(&header, 64 + 48 * count) < 0 || reserve(&blobs, 1 + 320 * count) < 0 ||
        put_raw(&header, "[", 1) < 0 || put_json_string(&header, args[0]) < 0 ||
        put_raw(&header, ",", 1) < 0)
        goto done;
    long long last_seq = PyLong_AsLongLong(args[1]);
    if ((last_seq == -1 && PyErr_Occurred()) || put_int(&header, last_seq) < 0 ||
        put_raw(&header, ",[", 2) < 0)
        goto done;
    /* The list may change under a call to load(); read its size again each time. */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(results); i++) {
        PyObject *result = PyList_GET_ITEM(results, i);
        if (!Py_IS_TYPE(result, result_type)) {
            PyErr_Format(PyExc_TypeError, "results[%zd] is not a Result", i);
            goto done;
        }
        Py_INCREF(result);
        int failed = (i > 0 && put_raw(&header, ",", 1) < 0) ||
                     put_result(&header, &blobs, result, args[3]) < 0;
        Py_DECREF(result);
        if (failed)
            goto done;
    }
    if (put_raw(&header, "]]\n", 3) < 0)
        goto done;
    out = PyBytes_FromStringAndSize(NULL, header.size + blobs.size);
    if (out != NULL) {
        memcpy(PyBytes_AS_STRING(out), header.data, (size_t)header.size);
        if (blobs.size > 0)
            memcpy(PyBytes_AS_STRING(out) + header.size, blobs.data, (size_t)blobs.size);
    }
done:
    PyMem_Free(header.data);
    PyMem_Free(blobs.data);
    return out;
}

/* An event's seq, bytes and hash, borrowed: from a stored event (a (seq, body, hash) tuple)
 * or from a writer's Event; 0, or -1 with an exception. */
static int
event_parts(PyObject *event, PyObject **seq, PyObject **data, PyObject **chain_hash)
{
    if (PyTuple_Check(event) && PyTuple_GET_SIZE(event) == 3) {
        *seq = PyTuple_GET_ITEM(event, 0);
        *data = PyTuple_GET_ITEM(event, 1);
        *chain_hash = PyTuple_GET_ITEM(event, 2);
    } else if (Py_IS_TYPE(event, event_type)) {
        *seq = SLOT(event, event_offsets, E_SEQ);
        *data = SLOT(event, event_offsets, E_DATA);
        *chain_hash = SLOT(event, event_offsets, E_HASH);
    } else {
        PyErr_SetString(PyExc_TypeError, "not a stored event or an Event");
        return -1;
    }
    if (*seq == NULL || !PyLong_Check(*seq) || *data == NULL || !PyBytes_Check(*data) ||
        *chain_hash == NULL || !PyBytes_Check(*chain_hash) ||
        PyBytes_GET_SIZE(*chain_hash) != HASH_SIZE) {
        PyErr_SetString(PyExc_TypeError, "an event without an int seq, its bytes or a 32-byte hash");
        return -1;
    }
    return 0;
}

static void
put_big_endian(unsigned char *out, unsigned long long value, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (unsigned char)(value & 0xff);
        value >>= 8;
    }
}

PyDoc_STRVAR(events_doc,
"events(events) -> bytes\n\n"
"Each event of the list (a stored event or a writer's Event) as its seq (8 bytes, big-endian),\n"
"the length of its bytes (4), its chain hash (32) and its bytes, back to back.");

static PyObject *
events(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 1 || !PyList_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "events(events: list)");
        return NULL;
    }
    if (!configured())
        return NULL;
    PyObject *list = args[0];
    Py_ssize_t count = PyList_GET_SIZE(list), total = 0;
    /* Two passes: check every event and size the output, then copy into it. Nothing here
     * calls back into Python, so the list cannot change between them. */
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *seq, *data, *chain_hash;
        if (event_parts(PyList_GET_ITEM(list, i), &seq, &data, &chain_hash) < 0)
            return NULL;
        unsigned long long number = PyLong_AsUnsignedLongLong(seq);
        if (number == (unsigned long long)-1 && PyErr_Occurred())
            return NULL;
        if (PyBytes_GET_SIZE(data) > 0xffffffffLL) {
            PyErr_SetString(PyExc_OverflowError, "an event of 4 GiB or more");
            return NULL;
        }
        total += 12 + HASH_SIZE + PyBytes_GET_SIZE(data);
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, total);
    if (out == NULL)
        return NULL;
    unsigned char *at = (unsigned char *)PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *seq, *data, *chain_hash;
        event_parts(PyList_GET_ITEM(list, i), &seq, &data, &chain_hash);
        Py_ssize_t length = PyBytes_GET_SIZE(data);
        put_big_endian(at, PyLong_AsUnsignedLongLong(seq), 8);
        put_big_endian(at + 8, (unsigned long long)length, 4);
        memcpy(at + 12, PyBytes_AS_STRING(chain_hash), HASH_SIZE);
        memcpy(at + 12 + HASH_SIZE, PyBytes_AS_STRING(data), (size_t)length);
        at += 12 + HASH_SIZE + length;
    }
    return out;
}

static PyMethodDef methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     "configure(*, result, event): bind the Result and Event classes whose slots are read."},
    {"reply", (PyCFunction)(void (*)(void))reply, METH_FASTCALL, reply_doc},
    {"events", (PyCFunction)(void (*)(void))events, METH_FASTCALL, events_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "ledger.transport._wire",
    "The bus reply and stream encoders, in C (see ledger/transport/_wire.c).", -1, methods,
};

PyMODINIT_FUNC
PyInit__wire(void)
{
    return PyModule_Create(&module_def);
}
