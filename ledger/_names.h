/*
 * Comparing a string read from an object with a name the extension interned
 * (ledger/core/_fastpath.c, ledger/eventstore/_rocksbatch.c, ledger/_projection.c).
 */

#ifndef LEDGER_NAMES_H
#define LEDGER_NAMES_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* `value` (may be NULL: an unset slot) equals the interned `name`: pointer equality first (the
 * machine's constants are interned too), the full comparison only for strings that were built
 * at run time. */
static inline int
is_name(PyObject *value, PyObject *name)
{
    return value == name ||
           (value != NULL && PyUnicode_Check(value) && PyUnicode_Compare(value, name) == 0);
}

#endif
