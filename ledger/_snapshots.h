/*
 * An event's snapshots, as the native extensions read them (ledger/eventstore/_rocksbatch.c,
 * ledger/_projection.c): a list of (account id, packed snapshot) pairs, one per account the
 * event touched. One check of that shape, so the store, the projector and the published
 * balances refuse the same malformed input the same way.
 */

#ifndef LEDGER_SNAPSHOTS_H
#define LEDGER_SNAPSHOTS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* The i-th pair of `snapshots` (a list), its account id (str) and snapshot (bytes) borrowed;
 * 0, or -1 with a TypeError when the item is not such a pair. */
static inline int
snapshot_pair(PyObject *snapshots, Py_ssize_t i, PyObject **account, PyObject **snapshot)
{
    PyObject *item = PyList_GET_ITEM(snapshots, i);
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2 ||
        !PyUnicode_Check(PyTuple_GET_ITEM(item, 0)) ||
        !PyBytes_Check(PyTuple_GET_ITEM(item, 1))) {
        PyErr_SetString(PyExc_TypeError, "a snapshot is not an (account id, bytes) pair");
        return -1;
    }
    *account = PyTuple_GET_ITEM(item, 0);
    *snapshot = PyTuple_GET_ITEM(item, 1);
    return 0;
}

#endif
