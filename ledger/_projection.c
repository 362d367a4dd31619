/*
 * Two passes over a writer's durable events, in C, for the two projections the writer's process
 * keeps: the read model's (`fold`, for `_Batch.of_events` in ledger/projector.py: each touched
 * account's latest (seq, packed snapshot), and the last seq of each account a plain transfer
 * touched) and the published balances' (`hset`, for ledger/transport/redis_balances.py: the
 * HSET of each touched account's latest snapshot, packed for the wire).
 *
 * Why: both run in the writer's process, and every microsecond of them is taken from the
 * writer's interpreter lock. In Python the fold (a tuple and two dictionary stores per leg,
 * interpreted) cost 1.3-1.7 µs per transfer, here 0.8 on the same events; the HSET (a generator
 * over the snapshots feeding hiredis's packer) was most of the bus replier thread, 13% of the
 * writer process's CPU under load. Most of what remains is waiting for memory (events, tuples
 * and strings scattered over the heap), not interpretation. What they do stays defined by
 * their Python callers' tests: rows projected from a writer's events against rows rebuilt from
 * the log, and the balances a real Redis holds after an HSET.
 */

#include "_buffer.h"
#include "_gil.h"
#include "_names.h"
#include "_slots.h"
#include "_snapshots.h"

enum { E_SEQ, E_TYPE, E_SNAPSHOTS, E_COUNT };
static const char *const event_slots[E_COUNT] = {"seq", "type", "snapshots"};

static PyTypeObject *event_type;
static Py_ssize_t event_offsets[E_COUNT];
static PyObject *str_transfer;

#define EVENT_SLOT(obj, i) SLOT_AT(obj, event_offsets[i])

static PyObject *
configure(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"event", NULL};
    PyObject *event;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$O", names, &event))
        return NULL;
    if (slot_offsets(event, event_slots, E_COUNT, event_offsets) < 0)
        return NULL;
    Py_XSETREF(event_type, (PyTypeObject *)Py_NewRef(event));
    Py_RETURN_NONE;
}

/* Record one event's snapshots; 0, or -1 with an exception. */
static int
fold_event(PyObject *event, PyObject *known, PyObject *last_seq_of, PyObject *others)
{
    PyObject *seq = EVENT_SLOT(event, E_SEQ);
    PyObject *snapshots = EVENT_SLOT(event, E_SNAPSHOTS);
    if (seq == NULL || snapshots == NULL || !PyList_CheckExact(snapshots)) {
        PyErr_SetString(PyExc_TypeError, "an event without its seq or snapshots list");
        return -1;
    }
    int plain = is_name(EVENT_SLOT(event, E_TYPE), str_transfer);
    if (!plain && PyList_Append(others, event) < 0)
        return -1;
    for (Py_ssize_t j = 0; j < PyList_GET_SIZE(snapshots); j++) {
        PyObject *account, *snapshot;
        if (snapshot_pair(snapshots, j, &account, &snapshot) < 0)
            return -1;
        PyObject *pair = PyTuple_Pack(2, seq, snapshot);
        if (pair == NULL)
            return -1;
        int failed = PyDict_SetItem(known, account, pair);
        Py_DECREF(pair);
        if (failed < 0 || (plain && PyDict_SetItem(last_seq_of, account, seq) < 0))
            return -1;
    }
    return 0;
}

PyDoc_STRVAR(fold_doc,
"fold(events, known, last_seq_of) -> the events that are not plain transfers\n\n"
"For each event in order and each (account, snapshot) it carries: known[account] =\n"
"(seq, snapshot); for a plain transfer also last_seq_of[account] = seq. Later events win.");

static PyObject *
fold(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyList_CheckExact(args[0]) || !PyDict_CheckExact(args[1]) ||
        !PyDict_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError, "fold(events: list, known: dict, last_seq_of: dict)");
        return NULL;
    }
    if (event_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure(event=...) was not called");
        return NULL;
    }
    PyObject *events = args[0], *others = PyList_New(0);
    if (others == NULL)
        return NULL;
    GilYield yield;
    gil_yield_start(&yield);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(events); i++) {
        PyObject *event = PyList_GET_ITEM(events, i);
        if (!Py_IS_TYPE(event, event_type)) {
            PyErr_Format(PyExc_TypeError, "events[%zd] is not an Event", i);
            goto error;
        }
        Py_INCREF(event);  /* the lock may go at the yield point, and the list change */
        int failed = fold_event(event, args[1], args[2], others);
        Py_DECREF(event);
        if (failed < 0)
            goto error;
        gil_yield_point(&yield, i);
    }
    return others;
error:
    Py_DECREF(others);
    return NULL;
}

/* One RESP bulk string: $<length>\r\n<bytes>\r\n. */
static int
put_bulk(Buffer *buffer, const char *bytes, Py_ssize_t length)
{
    char digits[24];
    int n = decimal(length, digits);
    if (reserve(buffer, 1 + n + 2 + length + 2) < 0)
        return -1;
    char *out = buffer->data + buffer->size;
    *out++ = '$';
    memcpy(out, digits, (size_t)n);
    out += n;
    *out++ = '\r';
    *out++ = '\n';
    memcpy(out, bytes, (size_t)length);
    out += length;
    *out++ = '\r';
    *out++ = '\n';
    buffer->size = out - buffer->data;
    return 0;
}

/* Record one event's snapshots in `latest` (account id -> snapshot; a later one replaces an
 * earlier one, which keeps its place); 0, or -1 with an exception. */
static int
note_snapshots(PyObject *latest, PyObject *event)
{
    PyObject *snapshots = EVENT_SLOT(event, E_SNAPSHOTS);
    if (snapshots == NULL || !PyList_CheckExact(snapshots)) {
        PyErr_SetString(PyExc_TypeError, "an event without its snapshots list");
        return -1;
    }
    for (Py_ssize_t j = 0; j < PyList_GET_SIZE(snapshots); j++) {
        PyObject *id, *snapshot;
        if (snapshot_pair(snapshots, j, &id, &snapshot) < 0 ||
            PyDict_SetItem(latest, id, snapshot) < 0)
            return -1;
    }
    return 0;
}

PyDoc_STRVAR(hset_doc,
"hset(key, groups, head_field, head) -> bytes\n\n"
"The Redis command HSET key, then each account the events of the groups name with the last\n"
"snapshot they give it (accounts in the order first named), then head_field and head in\n"
"decimal, encoded in RESP as a client sends it. key and head_field are bytes, groups a list\n"
"of lists of events, head an int >= 0.");

static PyObject *
hset(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyBytes_CheckExact(args[0]) || !PyList_CheckExact(args[1]) ||
        !PyBytes_CheckExact(args[2]) || !PyLong_CheckExact(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "hset(key: bytes, groups: list, head_field: bytes, head: int)");
        return NULL;
    }
    if (event_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure(event=...) was not called");
        return NULL;
    }
    long long head = PyLong_AsLongLong(args[3]);
    if (head == -1 && PyErr_Occurred())
        return NULL;
    if (head < 0) {
        PyErr_SetString(PyExc_ValueError, "head must be >= 0");
        return NULL;
    }
    PyObject *groups = args[1];
    Buffer body = {NULL, 0, 0};
    PyObject *latest = PyDict_New();
    if (latest == NULL)
        return NULL;
    for (Py_ssize_t g = 0; g < PyList_GET_SIZE(groups); g++) {
        PyObject *events = PyList_GET_ITEM(groups, g);
        if (!PyList_CheckExact(events)) {
            PyErr_Format(PyExc_TypeError, "groups[%zd] is not a list", g);
            goto error;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(events); i++) {
            PyObject *event = PyList_GET_ITEM(events, i);
            if (!Py_IS_TYPE(event, event_type)) {
                PyErr_Format(PyExc_TypeError, "groups[%zd][%zd] is not an Event", g, i);
                goto error;
            }
            if (note_snapshots(latest, event) < 0)
                goto error;
        }
    }
    Py_ssize_t count = 2 + 2 * PyDict_GET_SIZE(latest) + 2;  /* HSET, key, pairs, head */
    if (reserve(&body, 1 << 16) < 0 ||
        put_bulk(&body, "HSET", 4) < 0 ||
        put_bulk(&body, PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0])) < 0)
        goto error;
    Py_ssize_t position = 0;
    PyObject *id, *snapshot;
    while (PyDict_Next(latest, &position, &id, &snapshot)) {
        Py_ssize_t length;
        const char *account = PyUnicode_AsUTF8AndSize(id, &length);
        if (account == NULL || put_bulk(&body, account, length) < 0 ||
            put_bulk(&body, PyBytes_AS_STRING(snapshot), PyBytes_GET_SIZE(snapshot)) < 0)
            goto error;
    }
    Py_CLEAR(latest);
    char digits[24];
    int n = decimal(head, digits);
    if (put_bulk(&body, PyBytes_AS_STRING(args[2]), PyBytes_GET_SIZE(args[2])) < 0 ||
        put_bulk(&body, digits, n) < 0)
        goto error;
    char header[32];
    header[0] = '*';
    int h = 1 + decimal(count, header + 1);
    header[h++] = '\r';
    header[h++] = '\n';
    PyObject *out = PyBytes_FromStringAndSize(NULL, h + body.size);
    if (out != NULL) {
        memcpy(PyBytes_AS_STRING(out), header, (size_t)h);
        memcpy(PyBytes_AS_STRING(out) + h, body.data, (size_t)body.size);
    }
    PyMem_Free(body.data);
    return out;
error:
    Py_XDECREF(latest);
    PyMem_Free(body.data);
    return NULL;
}

static PyMethodDef methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     "configure(*, event): bind the Event class whose slots fold() and hset() read."},
    {"fold", (PyCFunction)(void (*)(void))fold, METH_FASTCALL, fold_doc},
    {"hset", (PyCFunction)(void (*)(void))hset, METH_FASTCALL, hset_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "ledger._projection",
    "The projections' passes over a writer's events, in C (see ledger/_projection.c).", -1,
    methods,
};

PyMODINIT_FUNC
PyInit__projection(void)
{
    str_transfer = PyUnicode_InternFromString("transfer");
    if (str_transfer == NULL)
        return NULL;
    return PyModule_Create(&module_def);
}
