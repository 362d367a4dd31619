/*
 * Slot offsets of a `__slots__` class, for the native extensions (ledger/core/_fastpath.c,
 * ledger/eventstore/_rocksbatch.c, ledger/_projection.c): they read and write objects at these
 * offsets instead of looking attributes up by name, which costs a type-dictionary search per
 * field.
 */

#ifndef LEDGER_SLOTS_H
#define LEDGER_SLOTS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

/* Borrowed reference to the slot at `offset` of `obj` (NULL when unset). */
#define SLOT_AT(obj, offset) (*(PyObject **)((char *)(obj) + (offset)))

/* Fill offsets[i] with the offset of slot names[i] of `type`; -1 with an exception when
 * `type` is not a class or a name is not one of its slots. */
static int
slot_offsets(PyObject *type, const char *const *names, int count, Py_ssize_t *offsets)
{
    if (!PyType_Check(type)) {
        PyErr_SetString(PyExc_TypeError, "configure() expects classes");
        return -1;
    }
    for (int i = 0; i < count; i++) {
        PyObject *descr = PyObject_GetAttrString(type, names[i]);
        if (descr == NULL)
            return -1;
        int is_slot = Py_IS_TYPE(descr, &PyMemberDescr_Type);
        if (is_slot)
            offsets[i] = ((PyMemberDescrObject *)descr)->d_member->offset;
        Py_DECREF(descr);
        if (!is_slot) {
            PyErr_Format(PyExc_TypeError, "%s.%s is not a slot", ((PyTypeObject *)type)->tp_name,
                         names[i]);
            return -1;
        }
    }
    return 0;
}

#endif
