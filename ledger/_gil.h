/*
 * Letting other threads run during a long native loop (ledger/core/_fastpath.c,
 * ledger/eventstore/_rocksbatch.c, ledger/_projection.c).
 *
 * The interpreter asks the thread holding its lock to drop it only between bytecodes, and a
 * loop in C over a whole group commit runs none: deciding 3,000 transfers held the lock for
 * about 14 ms, putting them into the WriteBatch for about 7. Meanwhile the writer process's
 * other threads, which read requests off the bus and send replies, could not run, and a lone
 * payment waited behind them.
 *
 * So the loops release the lock now and then and take it back. Not too often: a waiting thread
 * asks for the lock only after a whole switch interval (`sys.setswitchinterval`) in which it
 * did not change hands, and a release starts that wait over; released every few hundred items
 * (under a millisecond), the lock was taken straight back every time and the waiters starved.
 * Released every two intervals, a waiter has asked by then, and the interpreter hands the lock
 * over before this thread can take it back.
 */

#ifndef LEDGER_GIL_H
#define LEDGER_GIL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <time.h>

#define GIL_CHECK_EVERY 256 /* items between looks at the clock; a power of two */

typedef struct {
    long long period_ns, last_ns;
} GilYield;

static inline long long
gil_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
}

static inline void
gil_yield_start(GilYield *yield)
{
    yield->period_ns = 2LL * 1000 * (long long)_PyEval_GetSwitchInterval();
    yield->last_ns = gil_now_ns();
}

/* Call once per item `i` of a loop that holds the interpreter lock. */
static inline void
gil_yield_point(GilYield *yield, Py_ssize_t i)
{
    if ((i & (GIL_CHECK_EVERY - 1)) != GIL_CHECK_EVERY - 1)
        return;
    long long now = gil_now_ns();
    if (now - yield->last_ns < yield->period_ns)
        return;
    Py_BEGIN_ALLOW_THREADS
    Py_END_ALLOW_THREADS
    yield->last_ns = gil_now_ns();
}

#endif
