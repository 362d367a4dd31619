/*
 * The web process's two loops over a `POST /api/v1/transfers` batch, in C: `rows` reads the
 * request body straight into the command rows of a bus request, and `results` writes the
 * response body from the writer's results.
 *
 * Why: in Python (ledger/api/batch.py and codec.request_encode) parsing a batch into `Command`s
 * and encoding them for the bus cost the web process about 2.8 µs per transfer and the response
 * about 1.2, all of it holding the interpreter lock, so a balance read on the same worker
 * waited for the executor thread doing it. `rows` parses without the lock.
 *
 * `rows` takes only bodies it can read exactly as the Python path would; for anything else it
 * returns None and the caller takes that path, which stays the reference and the only one that
 * answers errors or normalises values (tests/unit/test_batchjson.py compares the two). What it
 * takes: an object with a `transfers` list of 1..`max_items` objects, optional `atomic`
 * (true/false) and `ledger` (a string or null), other members ignored. Each value anywhere is a
 * string of printable ASCII without escapes, an integer of at most 18 digits, true, false or
 * null; an item may name `from` or `account` but not both, gives no `expires_at` or `metadata`,
 * and its `type`, when given, is a string other than "open_account" (whose grants only Django
 * writes). No member appears twice in one object. Values are copied as they were written: the
 * writer decodes them as JSON, so the bytes it reads mean what the Python path would have sent.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "../_buffer.h"
#include "../_slots.h"
#include <string.h>

/* -- reading the body (no interpreter lock: only the body's bytes and malloc'd memory) ------- */

typedef struct {
    const char *at, *end;
} Cursor;

enum { V_ABSENT, V_STRING, V_INT, V_NULL, V_TRUE, V_FALSE };

typedef struct {
    int kind;
    const char *text; /* as written; a string with its quotes */
    Py_ssize_t length;
} Value;

static void
skip_space(Cursor *c)
{
    while (c->at < c->end && (*c->at == ' ' || *c->at == '\n' || *c->at == '\r' || *c->at == '\t'))
        c->at++;
}

/* Consumes `ch` (after white space); 0, or -1 when the next character is another. */
static int
expect(Cursor *c, char ch)
{
    skip_space(c);
    if (c->at >= c->end || *c->at != ch)
        return -1;
    c->at++;
    return 0;
}

/* After a member or an element: 1 when a ',' follows (another one comes), 0 when `close`
 * does, -1 for anything else. */
static int
next_or_close(Cursor *c, char close)
{
    skip_space(c);
    if (c->at < c->end && *c->at == ',') {
        c->at++;
        return 1;
    }
    return expect(c, close) < 0 ? -1 : 0;
}

/* A string of printable ASCII without escapes; the value spans its quotes. */
static int
plain_string(Cursor *c, Value *v)
{
    const char *start = c->at, *p = c->at + 1;
    while (p < c->end && *p != '"') {
        unsigned char ch = (unsigned char)*p;
        if (ch < 0x20 || ch > 0x7e || ch == '\\')
            return -1;
        p++;
    }
    if (p >= c->end)
        return -1;
    c->at = p + 1;
    *v = (Value){V_STRING, start, c->at - start};
    return 0;
}

static int
literal(Cursor *c, Value *v, const char *word, int kind)
{
    Py_ssize_t n = (Py_ssize_t)strlen(word);
    if (c->end - c->at < n || memcmp(c->at, word, n) != 0)
        return -1;
    *v = (Value){kind, c->at, n};
    c->at += n;
    return 0;
}

/* An integer without fraction or exponent, at most 18 digits (so within int64). */
static int
integer(Cursor *c, Value *v)
{
    const char *start = c->at, *p = c->at;
    if (*p == '-')
        p++;
    const char *digits = p;
    while (p < c->end && *p >= '0' && *p <= '9')
        p++;
    Py_ssize_t n = p - digits;
    if (n == 0 || n > 18 || (n > 1 && *digits == '0'))
        return -1;
    if (p < c->end && (*p == '.' || *p == 'e' || *p == 'E'))
        return -1;
    c->at = p;
    *v = (Value){V_INT, start, p - start};
    return 0;
}

/* One scalar value of the kinds taken (see the top); -1 for anything else. */
static int
scalar(Cursor *c, Value *v)
{
    skip_space(c);
    if (c->at >= c->end)
        return -1;
    switch (*c->at) {
    case '"':
        return plain_string(c, v);
    case 'n':
        return literal(c, v, "null", V_NULL);
    case 't':
        return literal(c, v, "true", V_TRUE);
    case 'f':
        return literal(c, v, "false", V_FALSE);
    default:
        return integer(c, v);
    }
}

/* A member's name: the index of `names` it is, `count` for another name; -1 when not taken. */
static int
member_name(Cursor *c, const char *const *names, int count)
{
    Value name;
    skip_space(c);
    if (c->at >= c->end || *c->at != '"' || plain_string(c, &name) < 0 || expect(c, ':') < 0)
        return -1;
    const char *text = name.text + 1;
    Py_ssize_t length = name.length - 2;
    for (int i = 0; i < count; i++)
        if ((Py_ssize_t)strlen(names[i]) == length && memcmp(names[i], text, length) == 0)
            return i;
    return count;
}

/* Whether a member was given a value other than null. */
static int
given(const Value *v)
{
    return v->kind != V_ABSENT && v->kind != V_NULL;
}

/* Whether `v` is the string `text`. */
static int
string_is(const Value *v, const char *text)
{
    Py_ssize_t n = (Py_ssize_t)strlen(text);
    return v->kind == V_STRING && v->length == n + 2 && memcmp(v->text + 1, text, n) == 0;
}

/* A byte buffer that grows without the interpreter lock (PyMem_Raw*). */
typedef struct {
    char *data;
    Py_ssize_t size, capacity;
} RawBuffer;

static int
raw_put(RawBuffer *b, const char *text, Py_ssize_t length)
{
    if (b->size + length > b->capacity) {
        Py_ssize_t capacity = (b->size + length) * 2;
        char *data = PyMem_RawRealloc(b->data, capacity);
        if (data == NULL)
            return -1;
        b->data = data;
        b->capacity = capacity;
    }
    memcpy(b->data + b->size, text, length);
    b->size += length;
    return 0;
}

#define PUT_LITERAL(b, text) raw_put((b), (text), (Py_ssize_t)sizeof(text) - 1)

/* The members of an item that it reads; any other member is read and ignored. */
enum { F_TYPE, F_KEY, F_FROM, F_ACCOUNT, F_TO, F_BENEFICIARY, F_AMOUNT, F_HOLD_ID, F_EXPIRES_AT,
       F_ESCROW_ID, F_TRIAL_ID, F_NETTING_BATCH_ID, F_METADATA, F_COUNT };
static const char *const item_members[F_COUNT] = {
    "type", "idempotency_key", "from", "account", "to", "beneficiary", "amount", "hold_id",
    "expires_at", "escrow_id", "trial_id", "netting_batch_id", "metadata"};

/* The members whose ids name a ledger, in the order batch.batch_ledger looks at them. */
static const int id_members[] = {F_FROM, F_ACCOUNT, F_TO, F_BENEFICIARY, F_HOLD_ID};

typedef struct {
    Cursor cursor;
    const char *client;
    Py_ssize_t client_length, max_items;
    RawBuffer out;
    Py_ssize_t count;
    int atomic;
    Value ledger;
    const char *tag; /* the ledger tag of the first id that has one (state.ledger_tag) */
    Py_ssize_t tag_length;
} Batch;

static int
is_lower_alnum(const char *text, Py_ssize_t n)
{
    int cased = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        char ch = text[i];
        if (ch >= 'a' && ch <= 'z')
            cased = 1;
        else if (!(ch >= '0' && ch <= '9'))
            return 0;
    }
    return cased;
}

/* state.ledger_tag of a string value: `<acc|evt|hld>_<tag>_...`. */
static void
find_tag(Batch *batch, const Value *v)
{
    if (batch->tag != NULL || v->kind != V_STRING)
        return;
    const char *text = v->text + 1, *end = v->text + v->length - 1;
    const char *first = memchr(text, '_', end - text);
    if (first == NULL || first - text != 3)
        return;
    if (memcmp(text, "acc", 3) != 0 && memcmp(text, "evt", 3) != 0 && memcmp(text, "hld", 3) != 0)
        return;
    const char *second = memchr(first + 1, '_', end - first - 1);
    if (second == NULL || !is_lower_alnum(first + 1, second - first - 1))
        return;
    batch->tag = first + 1;
    batch->tag_length = second - first - 1;
}

static int
put_value_or_null(RawBuffer *b, const Value *v)
{
    if (v->kind == V_ABSENT || v->kind == V_NULL)
        return PUT_LITERAL(b, "null");
    return raw_put(b, v->text, v->length);
}

/* One item as a command row, in the order of `Command.__slots__`. */
static int
put_row(Batch *batch, Value *f)
{
    Value *account = given(&f[F_FROM]) ? &f[F_FROM] : &f[F_ACCOUNT];
    RawBuffer *b = &batch->out;
    if (PUT_LITERAL(b, "[") < 0)
        return -1;
    if (!given(&f[F_TYPE])) {
        if (PUT_LITERAL(b, "\"transfer\"") < 0)
            return -1;
    } else if (raw_put(b, f[F_TYPE].text, f[F_TYPE].length) < 0) {
        return -1;
    }
    if (PUT_LITERAL(b, ",") < 0 || put_value_or_null(b, &f[F_KEY]) < 0 ||
        PUT_LITERAL(b, ",") < 0 || raw_put(b, batch->client, batch->client_length) < 0)
        return -1;
    const Value *rest[] = {account, &f[F_TO], &f[F_BENEFICIARY], &f[F_AMOUNT], &f[F_HOLD_ID],
                           &f[F_EXPIRES_AT], &f[F_ESCROW_ID], &f[F_TRIAL_ID],
                           &f[F_NETTING_BATCH_ID]};
    for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++)
        if (PUT_LITERAL(b, ",") < 0 || put_value_or_null(b, rest[i]) < 0)
            return -1;
    /* did, kind, tags, safeguarding (open_account only) and metadata (not taken) */
    return PUT_LITERAL(b, ",null,null,null,null,null]");
}

/* 1 taken, 0 not taken, -1 out of memory. */
static int
read_item(Batch *batch)
{
    Cursor *c = &batch->cursor;
    Value f[F_COUNT] = {{0}};
    if (expect(c, '{') < 0)
        return 0;
    skip_space(c);
    if (c->at < c->end && *c->at == '}') {
        c->at++;
    } else {
        for (;;) {
            int member = member_name(c, item_members, F_COUNT);
            Value v;
            if (member < 0 || scalar(c, &v) < 0)
                return 0;
            if (member < F_COUNT) {
                if (f[member].kind != V_ABSENT)
                    return 0;
                f[member] = v;
            }
            int next = next_or_close(c, '}');
            if (next < 0)
                return 0;
            if (next == 0)
                break;
        }
    }
    if ((given(&f[F_FROM]) && given(&f[F_ACCOUNT])) || given(&f[F_EXPIRES_AT]) ||
        given(&f[F_METADATA]) ||
        (given(&f[F_TYPE]) &&
         (f[F_TYPE].kind != V_STRING || string_is(&f[F_TYPE], "open_account"))))
        return 0;
    for (size_t i = 0; i < sizeof id_members / sizeof id_members[0]; i++)
        find_tag(batch, &f[id_members[i]]);
    if ((batch->count > 0 && PUT_LITERAL(&batch->out, ",") < 0) || put_row(batch, f) < 0)
        return -1;
    batch->count++;
    return 1;
}

static int
read_items(Batch *batch)
{
    Cursor *c = &batch->cursor;
    if (expect(c, '[') < 0 || PUT_LITERAL(&batch->out, "[") < 0)
        return 0;
    for (;;) {
        if (batch->count == batch->max_items)
            return 0; /* too many: the Python path answers 413 */
        int taken = read_item(batch);
        if (taken <= 0)
            return taken;
        int next = next_or_close(c, ']');
        if (next < 0)
            return 0;
        if (next == 0)
            return PUT_LITERAL(&batch->out, "]") < 0 ? -1 : 1;
    }
}

enum { B_TRANSFERS, B_ATOMIC, B_LEDGER, B_COUNT };
static const char *const body_members[B_COUNT] = {"transfers", "atomic", "ledger"};

/* 1 taken, 0 not taken, -1 out of memory. */
static int
read_body(Batch *batch)
{
    Cursor *c = &batch->cursor;
    int seen[B_COUNT] = {0};
    if (expect(c, '{') < 0)
        return 0;
    for (;;) {
        int member = member_name(c, body_members, B_COUNT);
        if (member < 0)
            return 0;
        if (member < B_COUNT) {
            if (seen[member])
                return 0;
            seen[member] = 1;
        }
        Value v;
        if (member == B_TRANSFERS) {
            int taken = read_items(batch);
            if (taken <= 0)
                return taken;
        } else if (scalar(c, &v) < 0) {
            return 0;
        } else if (member == B_ATOMIC) {
            if (v.kind != V_TRUE && v.kind != V_FALSE)
                return 0;
            batch->atomic = v.kind == V_TRUE;
        } else if (member == B_LEDGER) {
            if (v.kind != V_STRING && v.kind != V_NULL)
                return 0;
            batch->ledger = v;
        }
        int next = next_or_close(c, '}');
        if (next < 0)
            return 0;
        if (next == 0) {
            skip_space(c);
            return c->at == c->end && seen[B_TRANSFERS] && batch->count > 0;
        }
    }
}

static PyObject *
rows(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"body", "client", "max_items", NULL};
    Py_buffer body, client;
    Py_ssize_t max_items;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*y*n", names, &body, &client, &max_items))
        return NULL;
    Batch batch = {{body.buf, (const char *)body.buf + body.len}, client.buf, client.len,
                   max_items};
    int taken;
    Py_BEGIN_ALLOW_THREADS
    taken = read_body(&batch);
    Py_END_ALLOW_THREADS
    PyObject *result = NULL;
    if (taken < 0) {
        PyErr_NoMemory();
    } else if (taken == 0) {
        result = Py_NewRef(Py_None);
    } else {
        PyObject *ledger = batch.ledger.kind == V_STRING
            ? PyUnicode_FromStringAndSize(batch.ledger.text + 1, batch.ledger.length - 2)
            : Py_NewRef(Py_None);
        PyObject *tag = batch.tag != NULL
            ? PyUnicode_FromStringAndSize(batch.tag, batch.tag_length)
            : Py_NewRef(Py_None);
        PyObject *data = PyBytes_FromStringAndSize(batch.out.data, batch.out.size);
        if (ledger != NULL && tag != NULL && data != NULL)
            result = Py_BuildValue("(OOON)", batch.atomic ? Py_True : Py_False, ledger, tag,
                                   data);
        else
            Py_XDECREF(data);
        Py_XDECREF(ledger);
        Py_XDECREF(tag);
    }
    PyMem_RawFree(batch.out.data);
    PyBuffer_Release(&body);
    PyBuffer_Release(&client);
    return result;
}

/* -- writing the response ------------------------------------------------------------------- */

/*
 * The body is what batch.results_json writes with orjson: {"results":[...]}, each result
 * {"index","status","code","replayed","event"}, the event its stored bytes with "hash" added
 * as the last member (eventjson.event_json). Written from the writer's `Result`s (`results`)
 * or straight from a bus reply (`reply_results`: no `Result` is built, which in Python cost
 * about 3 µs per transfer).
 */

enum { R_CODE, R_EVENT, R_REPLAYED, R_COUNT };
static const char *const result_slots[R_COUNT] = {"code", "event", "replayed"};
enum { E_DATA, E_HASH, E_COUNT };
static const char *const event_slots[E_COUNT] = {"data", "hash"};

static PyTypeObject *result_type, *event_type;
static Py_ssize_t result_offsets[R_COUNT], event_offsets[E_COUNT];
static PyObject *code_names; /* tuple: a result code's number -> its name as bytes */

#define SLOT(obj, offsets, i) SLOT_AT(obj, (offsets)[i])
#define PUT_TEXT(b, text) put_raw((b), (text), (Py_ssize_t)sizeof(text) - 1)

enum { HASH_SIZE = 32 };

static PyObject *
configure(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"result", "event", "code_names", NULL};
    PyObject *result, *event, *codes;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$OOO!", names, &result, &event,
                                     &PyTuple_Type, &codes))
        return NULL;
    if (slot_offsets(result, result_slots, R_COUNT, result_offsets) < 0 ||
        slot_offsets(event, event_slots, E_COUNT, event_offsets) < 0)
        return NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(codes); i++)
        if (!PyBytes_Check(PyTuple_GET_ITEM(codes, i))) {
            PyErr_SetString(PyExc_TypeError, "code_names holds bytes");
            return NULL;
        }
    Py_XSETREF(result_type, (PyTypeObject *)Py_NewRef(result));
    Py_XSETREF(event_type, (PyTypeObject *)Py_NewRef(event));
    Py_XSETREF(code_names, Py_NewRef(codes));
    Py_RETURN_NONE;
}

/* A result code's name, borrowed; NULL (no exception) for a number that names none. */
static PyObject *
code_name(PyObject *code)
{
    if (!PyLong_Check(code))
        return NULL;
    Py_ssize_t number = PyLong_AsSsize_t(code);
    if (number < 0 || number >= PyTuple_GET_SIZE(code_names)) {
        PyErr_Clear();
        return NULL;
    }
    return PyTuple_GET_ITEM(code_names, number);
}

/* One result's object; `body` is NULL for a rejected one (its event is null). */
static int
put_entry(Buffer *b, Py_ssize_t index, PyObject *name, int replayed, const char *body,
          Py_ssize_t body_length, const unsigned char *digest)
{
    if ((index == 0 ? PUT_TEXT(b, "{\"index\":") : PUT_TEXT(b, ",{\"index\":")) < 0 ||
        put_int(b, index) < 0)
        return -1;
    if ((body != NULL ? PUT_TEXT(b, ",\"status\":\"ok\",\"code\":\"")
                      : PUT_TEXT(b, ",\"status\":\"rejected\",\"code\":\"")) < 0 ||
        put_raw(b, PyBytes_AS_STRING(name), PyBytes_GET_SIZE(name)) < 0 ||
        (replayed ? PUT_TEXT(b, "\",\"replayed\":true,\"event\":")
                  : PUT_TEXT(b, "\",\"replayed\":false,\"event\":")) < 0)
        return -1;
    if (body == NULL)
        return PUT_TEXT(b, "null}");
    static const char hex[] = "0123456789abcdef";
    if (put_raw(b, body, body_length - 1) < 0 || PUT_TEXT(b, ",\"hash\":\"") < 0 ||
        reserve(b, 2 * HASH_SIZE + 3) < 0)
        return -1;
    for (int i = 0; i < HASH_SIZE; i++) {
        b->data[b->size++] = hex[digest[i] >> 4];
        b->data[b->size++] = hex[digest[i] & 15];
    }
    return PUT_TEXT(b, "\"}}");
}

/* Whether `body` can have "hash" added before its last byte: a JSON object's bytes. */
static int
is_object(const char *body, Py_ssize_t length)
{
    return length >= 2 && body[0] == '{' && body[length - 1] == '}';
}

/* One Result; 1 written, 0 not for this function, -1 with an exception. */
static int
put_result(Buffer *b, Py_ssize_t index, PyObject *result)
{
    if (!Py_IS_TYPE(result, result_type))
        return 0;
    PyObject *code = SLOT(result, result_offsets, R_CODE);
    PyObject *event = SLOT(result, result_offsets, R_EVENT);
    PyObject *replayed = SLOT(result, result_offsets, R_REPLAYED);
    PyObject *name = code == NULL ? NULL : code_name(code);
    if (name == NULL || (replayed != Py_True && replayed != Py_False))
        return 0;
    if (PyLong_AsLong(code) != 0)
        return put_entry(b, index, name, replayed == Py_True, NULL, 0, NULL) < 0 ? -1 : 1;
    /* A replayed success without its event: the Python path loads it from the log. */
    if (event == NULL || !Py_IS_TYPE(event, event_type))
        return 0;
    PyObject *data = SLOT(event, event_offsets, E_DATA);
    PyObject *hash = SLOT(event, event_offsets, E_HASH);
    if (data == NULL || !PyBytes_Check(data) ||
        !is_object(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data)) || hash == NULL ||
        !PyBytes_Check(hash) || PyBytes_GET_SIZE(hash) != HASH_SIZE)
        return 0;
    return put_entry(b, index, name, replayed == Py_True, PyBytes_AS_STRING(data),
                     PyBytes_GET_SIZE(data), (const unsigned char *)PyBytes_AS_STRING(hash))
                   < 0 ? -1 : 1;
}

/* One row `[code, replayed, seq, account, length]` of a bus reply, its event's hash and bytes
 * at `*offset` of `data` when length >= 0 (codec.reply_results reads the same layout). */
static int
put_reply_row(Buffer *b, Py_ssize_t index, PyObject *row, const char *data, Py_ssize_t size,
              Py_ssize_t *offset)
{
    if (!PyList_Check(row) || PyList_GET_SIZE(row) != 5)
        return 0;
    PyObject *code = PyList_GET_ITEM(row, 0), *replayed = PyList_GET_ITEM(row, 1);
    PyObject *length_object = PyList_GET_ITEM(row, 4);
    PyObject *name = code_name(code);
    if (name == NULL || (replayed != Py_True && replayed != Py_False) ||
        !PyLong_Check(length_object))
        return 0;
    Py_ssize_t length = PyLong_AsSsize_t(length_object);
    if (length == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    const char *body = NULL;
    const unsigned char *digest = NULL;
    if (length >= 0) {
        if (length > size - *offset - HASH_SIZE)
            return 0;
        digest = (const unsigned char *)data + *offset;
        body = data + *offset + HASH_SIZE;
        *offset += HASH_SIZE + length;
    }
    if (PyLong_AsLong(code) != 0)
        body = NULL; /* a rejection's event is null, whatever the reply carries */
    else if (body == NULL || !is_object(body, length))
        return 0; /* a success without its event's bytes: the Python path answers */
    return put_entry(b, index, name, replayed == Py_True, body, length, digest) < 0 ? -1 : 1;
}

static int
configured(void)
{
    if (result_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure() was not called");
        return 0;
    }
    return 1;
}

/* The body around the entries `put(i)` writes; None when one of them returns 0. */
static PyObject *
body_of(Py_ssize_t count, int (*put)(Buffer *, Py_ssize_t, void *), void *context)
{
    Buffer b = {NULL, 0, 0};
    PyObject *out = NULL;
    int written = PUT_TEXT(&b, "{\"results\":[") < 0 ? -1 : 1;
    for (Py_ssize_t i = 0; written > 0 && i < count; i++)
        written = put(&b, i, context);
    if (written > 0 && PUT_TEXT(&b, "]}") == 0)
        out = PyBytes_FromStringAndSize(b.data, b.size);
    else if (written == 0)
        out = Py_NewRef(Py_None);
    PyMem_Free(b.data);
    return out;
}

static int
put_listed_result(Buffer *b, Py_ssize_t i, void *list)
{
    return put_result(b, i, PyList_GET_ITEM((PyObject *)list, i));
}

static PyObject *
results(PyObject *module, PyObject *list)
{
    if (!configured())
        return NULL;
    if (!PyList_Check(list)) {
        PyErr_SetString(PyExc_TypeError, "results() expects a list");
        return NULL;
    }
    return body_of(PyList_GET_SIZE(list), put_listed_result, list);
}

typedef struct {
    PyObject *rows;
    const char *data;
    Py_ssize_t size, offset;
} Reply;

static int
put_listed_row(Buffer *b, Py_ssize_t i, void *context)
{
    Reply *reply = context;
    return put_reply_row(b, i, PyList_GET_ITEM(reply->rows, i), reply->data, reply->size,
                         &reply->offset);
}

static PyObject *
reply_results(PyObject *module, PyObject *args)
{
    PyObject *rows;
    Py_buffer data;
    Py_ssize_t offset;
    if (!PyArg_ParseTuple(args, "O!y*n", &PyList_Type, &rows, &data, &offset))
        return NULL;
    PyObject *out = NULL;
    if (configured()) {
        Reply reply = {rows, data.buf, data.len, offset};
        out = offset >= 0 && offset <= data.len
            ? body_of(PyList_GET_SIZE(rows), put_listed_row, &reply)
            : Py_NewRef(Py_None);
    }
    PyBuffer_Release(&data);
    return out;
}

static PyMethodDef methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     "configure(*, result, event, code_names): the Result and Event classes, and each result "
     "code's name (bytes) by its number."},
    {"rows", (PyCFunction)(void (*)(void))rows, METH_VARARGS | METH_KEYWORDS,
     "rows(body, client, max_items) -> (atomic, ledger, tag, rows) or None: a "
     "transfers body as the JSON list of a bus request's command rows, `client` (JSON) as "
     "each command's client; None when the Python path must read it."},
    {"results", results, METH_O,
     "results(list of Result) -> the response body (bytes), or None when the Python path must "
     "write it."},
    {"reply_results", reply_results, METH_VARARGS,
     "reply_results(rows, data, offset) -> the response body (bytes) for a bus reply's rows and "
     "the event bytes from `offset` of `data`, or None when the Python path must write it."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ledger.api._batchjson",
    "A transfers batch's body to bus rows, and results to its response (see _batchjson.c).",
    -1, methods,
};

PyMODINIT_FUNC
PyInit__batchjson(void)
{
    return PyModule_Create(&module);
}
