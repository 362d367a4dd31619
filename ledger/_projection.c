/*
 * The projector's pass over the events of a round (`_Batch.of_events` in ledger/projector.py),
 * in C: each touched account's latest (seq, packed snapshot), and the last seq of each account a
 * plain transfer touched.
 *
 * Why: the projector runs in the writer's process, and every microsecond of it is taken from
 * the writer's interpreter lock. In Python this loop (a tuple and two dictionary stores per
 * leg, interpreted) cost 1.3-1.7 µs per transfer, about a third of the projector's CPU; here
 * 0.8 on the same events. Most of what remains is waiting for memory (events, tuples and
 * strings scattered over the heap), not interpretation. What it does stays defined by
 * `of_events`, whose tests compare rows projected from a writer's events with rows rebuilt
 * from the log.
 */

#include "_gil.h"
#include "_names.h"
#include "_slots.h"

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
        PyObject *item = PyList_GET_ITEM(snapshots, j);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2) {
            PyErr_SetString(PyExc_TypeError, "a snapshot is not an (account, bytes) pair");
            return -1;
        }
        PyObject *account = PyTuple_GET_ITEM(item, 0);
        PyObject *pair = PyTuple_Pack(2, seq, PyTuple_GET_ITEM(item, 1));
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

static PyMethodDef methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     "configure(*, event): bind the Event class whose slots fold() reads."},
    {"fold", (PyCFunction)(void (*)(void))fold, METH_FASTCALL, fold_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "ledger._projection",
    "The projector's per-event pass, in C (see ledger/_projection.c).", -1, methods,
};

PyMODINIT_FUNC
PyInit__projection(void)
{
    str_transfer = PyUnicode_InternFromString("transfer");
    if (str_transfer == NULL)
        return NULL;
    return PyModule_Create(&module_def);
}
