/*
 * Native fast path of the state machine: plain transfers, decided, applied and sealed in C.
 *
 * Why: a transfer costs the pure-Python machine about ten microseconds of interpreter work
 * (shape check, fingerprint, balance checks, event dict, canonical JSON, two SHA-256), which
 * caps one writer far below the 100,000 transfers/s it must sustain. This module does the
 * same work for the one command shape that dominates traffic and produces the very same
 * bytes, records and state changes; `tests/unit/core/test_fastpath.py` checks that against
 * the Python machine, which stays the reference.
 *
 * What it takes: a transfer whose fields are all well formed and whose only optional parts
 * are `netting_batch_id` and an empty `metadata`, between two open client accounts, with the
 * funds there and an idempotency key never seen before. Anything else (replays, rejections,
 * other command types, metadata, an atomic request) is handed back to the Python machine
 * (`StateMachine._execute_one`) for that command, so every result code and its precedence
 * stay defined in one place. Nothing is changed before the fast path has decided to commit,
 * so a hand-back is always clean.
 *
 * Objects are read and written through their slots (the classes use __slots__), whose offsets
 * `configure` takes from the member descriptors once.
 */

#include "../_buffer.h"
#include "../_gil.h"
#include "../_names.h"
#include "../_slots.h"
#include <openssl/evp.h>
#include <stdint.h>
#include <string.h>

#define MAX_TOKEN_LENGTH 128
#define MAX_AMOUNT INT64_MAX
#define BUCKET_COUNT 5

/* -- slot access ---------------------------------------------------------------------------- */

typedef struct {
    PyTypeObject *type;
    Py_ssize_t *offsets;
    const char *const *names;
    int count;
} SlotClass;

enum { C_TYPE, C_KEY, C_CLIENT, C_ACCOUNT, C_TO, C_BENEFICIARY, C_AMOUNT, C_HOLD_ID,
       C_EXPIRES_AT, C_ESCROW_ID, C_TRIAL_ID, C_NETTING_BATCH_ID, C_DID, C_KIND, C_TAGS,
       C_SAFEGUARDING, C_METADATA, C_COUNT };
static const char *const command_slots[] = {
    "type", "idempotency_key", "client", "account", "to", "beneficiary", "amount", "hold_id",
    "expires_at", "escrow_id", "trial_id", "netting_batch_id", "did", "kind", "tags",
    "safeguarding", "metadata"};

enum { E_SEQ, E_TYPE, E_BODY, E_DATA, E_HASH, E_SNAPSHOTS, E_COUNT };
static const char *const event_slots[] = {"seq", "type", "_body", "data", "hash", "snapshots"};

enum { R_CODE, R_EVENT, R_REPLAYED, R_SEQ, R_ACCOUNT, R_COUNT };
static const char *const result_slots[] = {"code", "event", "replayed", "seq", "account"};

enum { I_FINGERPRINT, I_CODE, I_SEQ, I_COUNT };
static const char *const record_slots[] = {"fingerprint", "code", "seq"};

enum { A_ID, A_KIND, A_STATUS, A_BALANCES, A_LAST_SEQ, A_COUNT };
static const char *const account_slots[] = {"id", "kind", "status", "balances", "last_seq"};

static Py_ssize_t command_offsets[C_COUNT], event_offsets[E_COUNT], result_offsets[R_COUNT],
    record_offsets[I_COUNT], account_offsets[A_COUNT];

static SlotClass Command = {NULL, command_offsets, command_slots, C_COUNT};
static SlotClass Event = {NULL, event_offsets, event_slots, E_COUNT};
static SlotClass Result = {NULL, result_offsets, result_slots, R_COUNT};
static SlotClass Record = {NULL, record_offsets, record_slots, I_COUNT};
static SlotClass Account = {NULL, account_offsets, account_slots, A_COUNT};

static PyObject *ok_code;       /* ResultCode.ok */
static PyObject *bucket_names[BUCKET_COUNT];
static PyObject *str_transfer, *str_available, *str_open, *str_user, *str_commands, *int_32,
    *int_zero;

/* Borrowed reference to a slot's value (NULL when unset). */
#define SLOT(obj, cls, i) SLOT_AT(obj, (cls).offsets[i])

static int
bind_slots(SlotClass *cls, PyObject *type)
{
    if (slot_offsets(type, cls->names, cls->count, cls->offsets) < 0)
        return -1;
    Py_XSETREF(cls->type, (PyTypeObject *)Py_NewRef(type));
    return 0;
}

/*
 * Objects made here hold only strings, bytes, ints and each other in one direction (a result
 * its event, an event its snapshots), so they can never be part of a reference cycle and
 * reference counting frees them all. Keeping them out of the cyclic collector matters: a group
 * leaves tens of thousands of them alive when collection resumes, and each collection would
 * scan them all again (measured: an eighth of the writer's time).
 */
static PyObject *
acyclic(PyObject *obj)
{
    if (obj != NULL && PyObject_IS_GC(obj))
        PyObject_GC_UnTrack(obj);
    return obj;
}

/* A new instance with every slot set (steals nothing; values are new references taken here). */
static PyObject *
new_instance(SlotClass *cls, PyObject *const *values)
{
    PyObject *obj = cls->type->tp_alloc(cls->type, 0);
    if (obj == NULL)
        return NULL;
    for (int i = 0; i < cls->count; i++)
        SLOT(obj, *cls, i) = Py_NewRef(values[i]);
    return acyclic(obj);
}

static int
set_slot(PyObject *obj, SlotClass *cls, int i, PyObject *value)
{
    Py_XSETREF(SLOT(obj, *cls, i), value);  /* steals value */
    return value == NULL ? -1 : 0;
}

/* -- buffers (ledger/_buffer.h) ------------------------------------------------------------ */

#define PUT_LITERAL(b, text) put_raw((b), (text), (Py_ssize_t)sizeof(text) - 1)

/* A JSON string of printable ASCII, escaped as canonical JSON (orjson, RFC 8785) does. */
static int
put_string(Buffer *b, const char *text, Py_ssize_t length)
{
    if (reserve(b, 2 * length + 2) < 0)
        return -1;
    char *out = b->data + b->size;
    *out++ = '"';
    if (memchr(text, '"', length) == NULL && memchr(text, '\\', length) == NULL) {
        memcpy(out, text, length);  /* the usual case: nothing to escape */
        out += length;
    } else {
        for (Py_ssize_t i = 0; i < length; i++) {
            char c = text[i];
            if (c == '"' || c == '\\')
                *out++ = '\\';
            *out++ = c;
        }
    }
    *out++ = '"';
    b->size = out - b->data;
    return 0;
}

static const char hex_digits[] = "0123456789abcdef";

/* `width` lower-case hex digits of `value`, zero-padded, as Python's format(value, "0Nx"). */
static void
write_hex(char *out, unsigned long long value, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = hex_digits[value & 0xf];
        value >>= 4;
    }
}

/* -- BLAKE2b (RFC 7693), unkeyed, for 16-byte request fingerprints ------------------------ */

/* Calling hashlib from here cost more than everything else a transfer does in C; the function
 * is small. Only what `hashlib.blake2b(data, digest_size=16)` computes: no key, salt or
 * personalisation, sequential mode. */

static const uint64_t blake2b_iv[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL};

static const uint8_t blake2b_sigma[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3}};

static inline uint64_t
rotr64(uint64_t x, int n)
{
    return (x >> n) | (x << (64 - n));
}

static inline uint64_t
load64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

#define BLAKE2B_G(a, b, c, d, x, y)     \
    do {                                \
        a = a + b + (x);                \
        d = rotr64(d ^ a, 32);          \
        c = c + d;                      \
        b = rotr64(b ^ c, 24);          \
        a = a + b + (y);                \
        d = rotr64(d ^ a, 16);          \
        c = c + d;                      \
        b = rotr64(b ^ c, 63);          \
    } while (0)

static void
blake2b_compress(uint64_t h[8], const unsigned char block[128], uint64_t counter, int last)
{
    uint64_t m[16], v[16];
    for (int i = 0; i < 16; i++)
        m[i] = load64(block + 8 * i);
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = blake2b_iv[i];
    }
    v[12] ^= counter;  /* the high word of the 128-bit counter stays 0 below 2**64 bytes */
    if (last)
        v[14] = ~v[14];
    for (int r = 0; r < 12; r++) {
        const uint8_t *s = blake2b_sigma[r];
        BLAKE2B_G(v[0], v[4], v[8], v[12], m[s[0]], m[s[1]]);
        BLAKE2B_G(v[1], v[5], v[9], v[13], m[s[2]], m[s[3]]);
        BLAKE2B_G(v[2], v[6], v[10], v[14], m[s[4]], m[s[5]]);
        BLAKE2B_G(v[3], v[7], v[11], v[15], m[s[6]], m[s[7]]);
        BLAKE2B_G(v[0], v[5], v[10], v[15], m[s[8]], m[s[9]]);
        BLAKE2B_G(v[1], v[6], v[11], v[12], m[s[10]], m[s[11]]);
        BLAKE2B_G(v[2], v[7], v[8], v[13], m[s[12]], m[s[13]]);
        BLAKE2B_G(v[3], v[4], v[9], v[14], m[s[14]], m[s[15]]);
    }
    for (int i = 0; i < 8; i++)
        h[i] ^= v[i] ^ v[i + 8];
}

#define FINGERPRINT_SIZE 16

static void
blake2b_16(const unsigned char *data, Py_ssize_t length, unsigned char out[FINGERPRINT_SIZE])
{
    uint64_t h[8];
    memcpy(h, blake2b_iv, sizeof h);
    h[0] ^= 0x01010000ULL | FINGERPRINT_SIZE;  /* depth 1, fanout 1, no key, digest length */
    uint64_t counter = 0;
    while (length > 128) {
        counter += 128;
        blake2b_compress(h, data, counter, 0);
        data += 128;
        length -= 128;
    }
    unsigned char block[128] = {0};
    memcpy(block, data, length);
    blake2b_compress(h, block, counter + length, 1);
    for (int i = 0; i < FINGERPRINT_SIZE; i++)
        out[i] = (unsigned char)(h[i / 8] >> (8 * (i % 8)));
}

/* -- SHA-256 ------------------------------------------------------------------------------ */

/* OpenSSL's one-shot SHA256() looks the algorithm up on every call, which cost more than the
 * hashing; the digest is fetched once and one context is reused. */
static EVP_MD *sha256_md;
static EVP_MD_CTX *sha256_ctx;

static int
sha256(const unsigned char *data, size_t length, unsigned char out[32])
{
    if (EVP_DigestInit_ex(sha256_ctx, sha256_md, NULL) != 1 ||
        EVP_DigestUpdate(sha256_ctx, data, length) != 1 ||
        EVP_DigestFinal_ex(sha256_ctx, out, NULL) != 1) {
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL SHA-256 failed");
        return -1;
    }
    return 0;
}

/* -- field checks --------------------------------------------------------------------------- */

/* The UTF-8 of an exact str made of printable ASCII (NULL otherwise, without an error). With
 * `token`, space is refused too and the length must be 1..128: the machine's token rule. */
static const char *
ascii_text(PyObject *value, int token, Py_ssize_t *length)
{
    if (value == NULL || !PyUnicode_CheckExact(value) || !PyUnicode_IS_ASCII(value))
        return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(value);
    if (token && (n == 0 || n > MAX_TOKEN_LENGTH))
        return NULL;
    const char *text = (const char *)PyUnicode_DATA(value);
    char lowest = token ? 0x21 : 0x20;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (text[i] < lowest || text[i] > 0x7e)
            return NULL;
    }
    *length = n;
    return text;
}

static int
is_client_kind(PyObject *kind)
{
    if (kind == str_user)
        return 1;
    return PyUnicode_Check(kind) && (PyUnicode_CompareWithASCIIString(kind, "user") == 0 ||
                                     PyUnicode_CompareWithASCIIString(kind, "clearing") == 0 ||
                                     PyUnicode_CompareWithASCIIString(kind, "fee_pool") == 0 ||
                                     PyUnicode_CompareWithASCIIString(kind, "reserve") == 0);
}

/* An open account of a client kind, and its `available` balance; NULL if anything else. */
static PyObject *
usable_account(PyObject *accounts, PyObject *id, long long *available)
{
    PyObject *account = PyDict_GetItemWithError(accounts, id);
    if (account == NULL || !Py_IS_TYPE(account, Account.type))
        return NULL;
    PyObject *status = SLOT(account, Account, A_STATUS);
    PyObject *balances = SLOT(account, Account, A_BALANCES);
    if (status == NULL || !is_name(status, str_open) ||
        SLOT(account, Account, A_KIND) == NULL || !is_client_kind(SLOT(account, Account, A_KIND)) ||
        balances == NULL || !PyDict_CheckExact(balances))
        return NULL;
    PyObject *value = PyDict_GetItemWithError(balances, str_available);
    if (value == NULL || !PyLong_CheckExact(value))
        return NULL;
    int overflow;
    *available = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow || (*available == -1 && PyErr_Occurred()))
        return NULL;
    return account;
}

/* -- one transfer --------------------------------------------------------------------------- */

typedef struct {
    PyObject *machine, *state, *accounts, *known, *events, *records;
    PyObject *getrandbits;
    const char *ledger, *tag;
    Py_ssize_t ledger_length, tag_length;
    long long now;
    long long next_seq;
    unsigned char head[32];
    Buffer request, body;  /* reused for every command */
} Group;

static int
load_tail(Group *g)
{
    PyObject *seq = PyObject_GetAttrString(g->state, "next_seq");
    PyObject *head = PyObject_GetAttrString(g->state, "head_hash");
    int status = -1;
    if (seq != NULL && head != NULL && PyBytes_Check(head) && PyBytes_GET_SIZE(head) == 32) {
        g->next_seq = PyLong_AsLongLong(seq);
        memcpy(g->head, PyBytes_AS_STRING(head), 32);
        status = PyErr_Occurred() ? -1 : 0;
    } else if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_TypeError, "state.head_hash must be 32 bytes");
    }
    Py_XDECREF(seq);
    Py_XDECREF(head);
    return status;
}

static int
store_tail(Group *g)
{
    PyObject *seq = PyLong_FromLongLong(g->next_seq);
    PyObject *ts = PyLong_FromLongLong(g->now);
    PyObject *head = PyBytes_FromStringAndSize((const char *)g->head, 32);
    int status = -1;
    if (seq != NULL && ts != NULL && head != NULL &&
        PyObject_SetAttrString(g->state, "next_seq", seq) == 0 &&
        PyObject_SetAttrString(g->state, "last_ts", ts) == 0 &&
        PyObject_SetAttrString(g->state, "head_hash", head) == 0)
        status = 0;
    Py_XDECREF(seq);
    Py_XDECREF(ts);
    Py_XDECREF(head);
    return status;
}

/* `>B5q`: status code (open = 0) then the five buckets, big-endian. */
static PyObject *
packed_snapshot(PyObject *account)
{
    unsigned char out[1 + 8 * BUCKET_COUNT];
    PyObject *balances = SLOT(account, Account, A_BALANCES);
    out[0] = 0;
    for (int i = 0; i < BUCKET_COUNT; i++) {
        PyObject *value = PyDict_GetItemWithError(balances, bucket_names[i]);
        if (value == NULL) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_KeyError, "account without bucket %R", bucket_names[i]);
            return NULL;
        }
        long long v = PyLong_AsLongLong(value);
        if (v == -1 && PyErr_Occurred())
            return NULL;
        uint64_t u = (uint64_t)v;
        for (int k = 0; k < 8; k++)
            out[1 + 8 * i + k] = (unsigned char)(u >> (56 - 8 * k));
    }
    return PyBytes_FromStringAndSize((const char *)out, sizeof out);
}

static int
set_available(PyObject *account, long long value)
{
    PyObject *number = PyLong_FromLongLong(value);
    if (number == NULL)
        return -1;
    int status = PyDict_SetItem(SLOT(account, Account, A_BALANCES), str_available, number);
    Py_DECREF(number);
    return status;
}

/* 16-byte BLAKE2b of the request's canonical field list, as `machine.fingerprint` computes. */
static PyObject *
request_fingerprint(Group *g, const char *from, Py_ssize_t from_length, const char *to,
                    Py_ssize_t to_length, long long amount, const char *netting,
                    Py_ssize_t netting_length, int metadata_empty_dict)
{
    Buffer *b = &g->request;
    b->size = 0;
    /* [type, account, to, beneficiary, amount, hold_id, expires_at, escrow_id, trial_id,
     *  netting_batch_id, did, kind, tags, safeguarding, metadata] */
    if (PUT_LITERAL(b, "[\"transfer\",") < 0 || put_string(b, from, from_length) < 0 ||
        PUT_LITERAL(b, ",") < 0 || put_string(b, to, to_length) < 0 ||
        PUT_LITERAL(b, ",null,") < 0 || put_int(b, amount) < 0 ||
        PUT_LITERAL(b, ",null,null,null,null,") < 0)
        return NULL;
    if ((netting ? put_string(b, netting, netting_length) : PUT_LITERAL(b, "null")) < 0)
        return NULL;
    if (PUT_LITERAL(b, ",null,null,null,null,") < 0 ||
        (metadata_empty_dict ? PUT_LITERAL(b, "{}]") : PUT_LITERAL(b, "null]")) < 0)
        return NULL;
    unsigned char digest[FINGERPRINT_SIZE];
    blake2b_16((const unsigned char *)b->data, b->size, digest);
    return PyBytes_FromStringAndSize((const char *)digest, FINGERPRINT_SIZE);
}

/*
 * Try one command. Returns a new Result, or NULL: with an exception set on failure, without
 * one when the command is not for the fast path (nothing has been changed then).
 */
static PyObject *
try_transfer(Group *g, PyObject *command)
{
    if (!Py_IS_TYPE(command, Command.type))
        return NULL;
    PyObject *type = SLOT(command, Command, C_TYPE);
    if (type == NULL || !is_name(type, str_transfer))
        return NULL;
    for (int i = C_BENEFICIARY; i < C_COUNT; i++) {
        /* Every optional field must be absent, but for the three handled below. */
        if (i == C_AMOUNT || i == C_NETTING_BATCH_ID || i == C_METADATA)
            continue;
        if (SLOT(command, Command, i) != Py_None)
            return NULL;
    }
    Py_ssize_t key_length, client_length, from_length, to_length, netting_length = 0;
    PyObject *key_object = SLOT(command, Command, C_KEY);
    PyObject *from_object = SLOT(command, Command, C_ACCOUNT);
    PyObject *to_object = SLOT(command, Command, C_TO);
    const char *key = ascii_text(key_object, 1, &key_length);
    const char *client = ascii_text(SLOT(command, Command, C_CLIENT), 0, &client_length);
    const char *from = ascii_text(from_object, 1, &from_length);
    const char *to = ascii_text(to_object, 1, &to_length);
    if (key == NULL || client == NULL || from == NULL || to == NULL)
        return NULL;
    if (from_length == to_length && memcmp(from, to, from_length) == 0)
        return NULL;
    const char *netting = NULL;
    PyObject *netting_object = SLOT(command, Command, C_NETTING_BATCH_ID);
    if (netting_object != Py_None &&
        (netting = ascii_text(netting_object, 1, &netting_length)) == NULL)
        return NULL;
    PyObject *metadata = SLOT(command, Command, C_METADATA);
    int metadata_empty_dict = metadata != Py_None;
    if (metadata_empty_dict && (!PyDict_CheckExact(metadata) || PyDict_GET_SIZE(metadata) != 0))
        return NULL;
    PyObject *amount_object = SLOT(command, Command, C_AMOUNT);
    if (amount_object == NULL || !PyLong_CheckExact(amount_object))
        return NULL;
    int overflow;
    long long amount = PyLong_AsLongLongAndOverflow(amount_object, &overflow);
    if (overflow || amount <= 0)
        return NULL;

    /* The idempotency scope, as `machine.idempotency_scope` builds it. */
    PyObject *scope = PyBytes_FromStringAndSize(NULL, client_length + 1 + key_length);
    if (scope == NULL)
        return NULL;
    char *scope_bytes = PyBytes_AS_STRING(scope);
    memcpy(scope_bytes, client, client_length);
    scope_bytes[client_length] = '\0';
    memcpy(scope_bytes + client_length + 1, key, key_length);
    if (PyDict_GetItemWithError(g->known, scope) != NULL || PyErr_Occurred()) {
        Py_DECREF(scope);  /* a replay or a conflict: the Python machine answers those */
        return NULL;
    }

    long long from_balance, to_balance;
    PyObject *source = usable_account(g->accounts, from_object, &from_balance);
    PyObject *target = source ? usable_account(g->accounts, to_object, &to_balance) : NULL;
    if (target == NULL || from_balance < amount || to_balance > MAX_AMOUNT - amount) {
        Py_DECREF(scope);  /* a rejection (or an error raised above): decided in Python */
        return NULL;
    }

    /* Decided: from here on the command commits. */
    PyObject *fingerprint = request_fingerprint(g, from, from_length, to, to_length, amount,
                                                netting, netting_length, metadata_empty_dict);
    PyObject *random_bits = fingerprint ? PyObject_CallOneArg(g->getrandbits, int_32) : NULL;
    unsigned long random_value = random_bits ? PyLong_AsUnsignedLong(random_bits) : 0;
    Py_XDECREF(random_bits);
    if (fingerprint == NULL || PyErr_Occurred()) {
        Py_XDECREF(fingerprint);
        Py_DECREF(scope);
        return NULL;
    }
    long long seq = g->next_seq;
    /* `evt_<tag>_<seq as 12 hex digits><32 random bits as 8>`, as `StateMachine._event_id`. */
    char event_id[4 + MAX_TOKEN_LENGTH + 1 + 20];
    Py_ssize_t event_id_length = 4 + g->tag_length + 1 + 20;
    memcpy(event_id, "evt_", 4);
    memcpy(event_id + 4, g->tag, g->tag_length);
    event_id[4 + g->tag_length] = '_';
    write_hex(event_id + 5 + g->tag_length, (unsigned long long)seq, 12);
    write_hex(event_id + 17 + g->tag_length, random_value & 0xffffffffUL, 8);
    char prev_hex[64];
    for (int i = 0; i < 32; i++)
        write_hex(prev_hex + 2 * i, g->head[i], 2);

    /* The canonical body: keys in sorted order, exactly as `canonical.encode` writes it. The
     * buffer starts with the RFC 9162 leaf prefix so the leaf hash needs no copy. */
    Buffer *b = &g->body;
    b->size = 0;
    int failed =
        PUT_LITERAL(b, "\0{\"client\":") < 0 || put_string(b, client, client_length) < 0 ||
        PUT_LITERAL(b, ",\"details\":{},\"id\":") < 0 ||
        put_string(b, event_id, event_id_length) < 0 ||
        PUT_LITERAL(b, ",\"idempotency_key\":") < 0 || put_string(b, key, key_length) < 0 ||
        PUT_LITERAL(b, ",\"ledger\":") < 0 || put_string(b, g->ledger, g->ledger_length) < 0 ||
        PUT_LITERAL(b, ",\"legs\":[{\"account\":") < 0 || put_string(b, from, from_length) < 0 ||
        PUT_LITERAL(b, ",\"amount\":") < 0 || put_int(b, -amount) < 0 ||
        PUT_LITERAL(b, ",\"bucket\":\"available\"},{\"account\":") < 0 ||
        put_string(b, to, to_length) < 0 || PUT_LITERAL(b, ",\"amount\":") < 0 ||
        put_int(b, amount) < 0 ||
        PUT_LITERAL(b, ",\"bucket\":\"available\"}],\"metadata\":{},\"prev_hash\":\"") < 0 ||
        put_raw(b, prev_hex, 64) < 0 || PUT_LITERAL(b, "\",\"refs\":{") < 0;
    if (!failed && netting != NULL)
        failed = PUT_LITERAL(b, "\"netting_batch_id\":") < 0 ||
                 put_string(b, netting, netting_length) < 0;
    failed = failed || PUT_LITERAL(b, "},\"seq\":") < 0 || put_int(b, seq) < 0 ||
             PUT_LITERAL(b, ",\"ts\":") < 0 || put_int(b, g->now) < 0 ||
             PUT_LITERAL(b, ",\"type\":\"transfer\"}") < 0;
    if (failed) {
        Py_DECREF(fingerprint);
        Py_DECREF(scope);
        return NULL;
    }
    unsigned char chained[64];
    memcpy(chained, g->head, 32);
    if (sha256((const unsigned char *)b->data, b->size, chained + 32) < 0 ||
        sha256(chained, 64, g->head) < 0) {
        Py_DECREF(fingerprint);
        Py_DECREF(scope);
        return NULL;
    }

    /* Apply: the two balances and both accounts' last seq, then their snapshots. */
    PyObject *seq_object = PyLong_FromLongLong(seq);
    PyObject *snapshots = NULL, *event = NULL, *record = NULL, *result = NULL;
    PyObject *data = NULL, *chain_hash = NULL;
    if (seq_object == NULL || set_available(source, from_balance - amount) < 0 ||
        set_available(target, to_balance + amount) < 0)
        goto fail;
    Py_INCREF(seq_object);
    Py_INCREF(seq_object);
    set_slot(source, &Account, A_LAST_SEQ, seq_object);
    set_slot(target, &Account, A_LAST_SEQ, seq_object);
    g->next_seq = seq + 1;

    PyObject *source_snapshot = packed_snapshot(source);
    PyObject *target_snapshot = source_snapshot ? packed_snapshot(target) : NULL;
    if (target_snapshot == NULL) {
        Py_XDECREF(source_snapshot);
        goto fail;
    }
    PyObject *source_pair =
        acyclic(PyTuple_Pack(2, SLOT(source, Account, A_ID), source_snapshot));
    PyObject *target_pair =
        acyclic(PyTuple_Pack(2, SLOT(target, Account, A_ID), target_snapshot));
    Py_DECREF(source_snapshot);
    Py_DECREF(target_snapshot);
    snapshots = source_pair && target_pair ? acyclic(PyList_New(2)) : NULL;
    if (snapshots == NULL) {
        Py_XDECREF(source_pair);
        Py_XDECREF(target_pair);
        goto fail;
    }
    PyList_SET_ITEM(snapshots, 0, source_pair);
    PyList_SET_ITEM(snapshots, 1, target_pair);
    data = PyBytes_FromStringAndSize(b->data + 1, b->size - 1);
    chain_hash = PyBytes_FromStringAndSize((const char *)g->head, 32);
    if (snapshots == NULL || data == NULL || chain_hash == NULL)
        goto fail;
    PyObject *event_values[E_COUNT] = {seq_object, str_transfer, Py_None, data, chain_hash,
                                       snapshots};
    event = new_instance(&Event, event_values);
    PyObject *record_values[I_COUNT] = {fingerprint, int_zero, seq_object};
    record = event ? new_instance(&Record, record_values) : NULL;
    if (record == NULL || PyList_Append(g->events, event) < 0 ||
        PyDict_SetItem(g->known, scope, record) < 0 ||
        PyDict_SetItem(g->records, scope, record) < 0)
        goto fail;
    PyObject *result_values[R_COUNT] = {ok_code, event, Py_False, seq_object, Py_None};
    result = new_instance(&Result, result_values);

fail:
    Py_XDECREF(seq_object);
    Py_XDECREF(snapshots);
    Py_XDECREF(data);
    Py_XDECREF(chain_hash);
    Py_XDECREF(event);
    Py_XDECREF(record);
    Py_DECREF(fingerprint);
    Py_DECREF(scope);
    if (result == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_RuntimeError, "fast path failed after deciding a transfer");
    return result;
}

/* -- module functions ----------------------------------------------------------------------- */

static PyObject *
execute_plain(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "execute_plain(machine, commands, now, known, outcome) takes 5 arguments");
        return NULL;
    }
    if (Command.type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ledger.core._fastpath is not configured");
        return NULL;
    }
    Group g = {0};
    PyObject *commands = args[1], *results = NULL, *execute_one = NULL, *ledger = NULL,
             *tag = NULL, *random = NULL, *journal = NULL;
    g.machine = args[0];
    g.known = args[3];
    g.now = PyLong_AsLongLong(args[2]);
    if (g.now == -1 && PyErr_Occurred())
        return NULL;
    g.state = PyObject_GetAttrString(g.machine, "state");
    if (g.state == NULL)
        return NULL;
    g.accounts = PyObject_GetAttrString(g.state, "accounts");
    g.events = PyObject_GetAttrString(args[4], "events");
    g.records = PyObject_GetAttrString(args[4], "records");
    ledger = PyObject_GetAttrString(g.state, "ledger");
    tag = PyObject_GetAttrString(g.state, "tag");
    journal = PyObject_GetAttrString(g.state, "journal");
    random = PyObject_GetAttrString(g.machine, "_random");
    g.getrandbits = random ? PyObject_GetAttrString(random, "getrandbits") : NULL;
    execute_one = PyObject_GetAttrString(g.machine, "_execute_one");
    if (g.accounts == NULL || g.events == NULL || g.records == NULL || ledger == NULL ||
        tag == NULL || journal == NULL || g.getrandbits == NULL || execute_one == NULL)
        goto done;
    if (!PyList_CheckExact(commands) || !PyDict_CheckExact(g.accounts) ||
        !PyDict_CheckExact(g.known) || !PyList_CheckExact(g.events) ||
        !PyDict_CheckExact(g.records)) {
        PyErr_SetString(PyExc_TypeError, "execute_plain: unexpected argument types");
        goto done;
    }
    g.ledger = ascii_text(ledger, 1, &g.ledger_length);
    g.tag = ascii_text(tag, 1, &g.tag_length);
    /* Inside an atomic request every change must be journalled: that is Python's job. */
    int usable = g.ledger != NULL && g.tag != NULL && journal == Py_None;
    if (load_tail(&g) < 0)
        goto done;
    Py_ssize_t count = PyList_GET_SIZE(commands);
    results = PyList_New(count);
    if (results == NULL)
        goto done;
    int dirty = 0;  /* the fast path has moved the tail since it was last stored */
    GilYield yield;
    gil_yield_start(&yield);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *command = PyList_GET_ITEM(commands, i);
        PyObject *result = usable ? try_transfer(&g, command) : NULL;
        if (result != NULL) {
            dirty = 1;
        } else if (PyErr_Occurred()) {
            break;
        } else {
            PyObject *call_args[4] = {command, args[2], g.known, args[4]};
            if (dirty && store_tail(&g) < 0)
                break;
            dirty = 0;
            result = PyObject_Vectorcall(execute_one, call_args, 4, NULL);
            if (result == NULL || load_tail(&g) < 0) {
                Py_XDECREF(result);
                break;
            }
        }
        PyList_SET_ITEM(results, i, result);
        gil_yield_point(&yield, i);
    }
    if (dirty && store_tail(&g) < 0 && !PyErr_Occurred())
        PyErr_SetString(PyExc_RuntimeError, "cannot store the ledger tail");
    if (PyErr_Occurred())
        Py_CLEAR(results);

done:
    PyMem_Free(g.request.data);
    PyMem_Free(g.body.data);
    Py_XDECREF(g.state);
    Py_XDECREF(g.accounts);
    Py_XDECREF(g.events);
    Py_XDECREF(g.records);
    Py_XDECREF(g.getrandbits);
    Py_XDECREF(ledger);
    Py_XDECREF(tag);
    Py_XDECREF(journal);
    Py_XDECREF(random);
    Py_XDECREF(execute_one);
    return results;
}

static PyObject *
configure(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"command", "event", "result", "record", "account", "ok",
                               "buckets", NULL};
    PyObject *command, *event, *result, *record, *account, *ok, *buckets;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$OOOOOOO:configure", keywords, &command,
                                     &event, &result, &record, &account, &ok, &buckets))
        return NULL;
    if (!PyTuple_Check(buckets) || PyTuple_GET_SIZE(buckets) != BUCKET_COUNT) {
        PyErr_SetString(PyExc_TypeError, "buckets must be a tuple of the five bucket names");
        return NULL;
    }
    /* commands_from_rows fills slots by position: Command's slots must be in our order. */
    PyObject *declared = PyObject_GetAttrString(command, "__slots__");
    int in_order = declared != NULL && PyTuple_Check(declared) &&
                   PyTuple_GET_SIZE(declared) == C_COUNT;
    for (int i = 0; in_order && i < C_COUNT; i++)
        in_order = PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(declared, i),
                                                    command_slots[i]) == 0;
    Py_XDECREF(declared);
    if (!in_order) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "Command's slots are not in the fast path's order");
        return NULL;
    }
    if (bind_slots(&Command, command) < 0 || bind_slots(&Event, event) < 0 ||
        bind_slots(&Result, result) < 0 || bind_slots(&Record, record) < 0 ||
        bind_slots(&Account, account) < 0)
        return NULL;
    for (int i = 0; i < BUCKET_COUNT; i++)
        Py_XSETREF(bucket_names[i], Py_NewRef(PyTuple_GET_ITEM(buckets, i)));
    Py_XSETREF(ok_code, Py_NewRef(ok));
    Py_RETURN_NONE;
}

/*
 * The scoped idempotency key of every command whose key is non-empty text, in order: what the
 * writer fetches the store's records for before a group is decided. Plain ASCII (nearly every
 * key) is joined here; anything else goes to `fallback` (machine.idempotency_scope), which
 * stays the definition.
 */
static PyObject *
scopes(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "scopes(requests, fallback) takes 2 arguments");
        return NULL;
    }
    if (Command.type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ledger.core._fastpath is not configured");
        return NULL;
    }
    PyObject *requests = args[0], *fallback = args[1];
    if (!PyList_Check(requests)) {
        PyErr_SetString(PyExc_TypeError, "scopes: requests must be a list");
        return NULL;
    }
    PyObject *out = PyList_New(0);
    for (Py_ssize_t r = 0; out != NULL && r < PyList_GET_SIZE(requests); r++) {
        PyObject *commands = PyObject_GetAttr(PyList_GET_ITEM(requests, r), str_commands);
        if (commands == NULL || !PyList_Check(commands)) {
            if (commands != NULL)
                PyErr_SetString(PyExc_TypeError, "scopes: a request's commands must be a list");
            Py_XDECREF(commands);
            Py_CLEAR(out);
            break;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(commands); i++) {
            PyObject *command = PyList_GET_ITEM(commands, i);
            if (!Py_IS_TYPE(command, Command.type)) {
                PyErr_SetString(PyExc_TypeError, "scopes: commands must be Command instances");
                Py_CLEAR(out);
                break;
            }
            PyObject *key = SLOT(command, Command, C_KEY);
            PyObject *client = SLOT(command, Command, C_CLIENT);
            if (key == NULL || !PyUnicode_CheckExact(key) || PyUnicode_GET_LENGTH(key) == 0)
                continue;
            PyObject *scope;
            if (client != NULL && PyUnicode_CheckExact(client) && PyUnicode_IS_ASCII(client) &&
                PyUnicode_IS_ASCII(key)) {
                Py_ssize_t client_length = PyUnicode_GET_LENGTH(client);
                Py_ssize_t key_length = PyUnicode_GET_LENGTH(key);
                scope = PyBytes_FromStringAndSize(NULL, client_length + 1 + key_length);
                if (scope != NULL) {
                    char *out_bytes = PyBytes_AS_STRING(scope);
                    memcpy(out_bytes, PyUnicode_DATA(client), client_length);
                    out_bytes[client_length] = '\0';
                    memcpy(out_bytes + client_length + 1, PyUnicode_DATA(key), key_length);
                }
            } else {
                PyObject *pair[2] = {client != NULL ? client : Py_None, key};
                scope = PyObject_Vectorcall(fallback, pair, 2, NULL);
            }
            if (scope == NULL || PyList_Append(out, scope) < 0) {
                Py_XDECREF(scope);
                Py_CLEAR(out);
                break;
            }
            Py_DECREF(scope);
        }
        Py_DECREF(commands);
    }
    return out;
}

/*
 * Commands from rows of their field values in slot order: the bus's wire form of a request
 * (`ledger.transport.codec`). `Command(*row)` runs the dataclass's Python __init__, about a
 * microsecond a command in the writer process, which decodes every command it executes.
 * Values are taken as they are; the state machine validates them.
 */
static PyObject *
commands_from_rows(PyObject *module, PyObject *rows)
{
    if (Command.type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ledger.core._fastpath is not configured");
        return NULL;
    }
    if (!PyList_Check(rows)) {
        PyErr_SetString(PyExc_TypeError, "commands_from_rows: rows must be a list");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(rows);
    PyObject *out = PyList_New(count);
    for (Py_ssize_t i = 0; out != NULL && i < count; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        if (!(PyList_Check(row) || PyTuple_Check(row)) || PySequence_Fast_GET_SIZE(row) != C_COUNT) {
            PyErr_Format(PyExc_TypeError, "a command row must be a list or tuple of %d values", C_COUNT);
            Py_CLEAR(out);
            break;
        }
        PyObject *command = new_instance(&Command, PySequence_Fast_ITEMS(row));
        if (command == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, i, command);
    }
    return out;
}

static PyMethodDef methods[] = {
    {"execute_plain", (PyCFunction)(void (*)(void))execute_plain, METH_FASTCALL,
     "execute_plain(machine, commands, now, known, outcome) -> list of Result\n\n"
     "Execute a non-atomic request's commands in order: plain transfers natively, every other\n"
     "command through machine._execute_one."},
    {"commands_from_rows", commands_from_rows, METH_O,
     "commands_from_rows(rows) -> list of Command\n\n"
     "Commands from rows of their field values in Command.__slots__ order."},
    {"scopes", (PyCFunction)(void (*)(void))scopes, METH_FASTCALL,
     "scopes(requests, fallback) -> list of bytes\n\n"
     "The scoped idempotency key of every command whose key is non-empty text, in order."},
    {"configure", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     "configure(*, command, event, result, record, account, ok, buckets)\n\n"
     "Bind the classes whose slots the fast path reads and writes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_fastpath",
    "Native fast path of the ledger state machine (plain transfers).", -1, methods,
};

PyMODINIT_FUNC
PyInit__fastpath(void)
{
    str_transfer = PyUnicode_InternFromString("transfer");
    str_available = PyUnicode_InternFromString("available");
    str_open = PyUnicode_InternFromString("open");
    str_user = PyUnicode_InternFromString("user");
    str_commands = PyUnicode_InternFromString("commands");
    int_32 = PyLong_FromLong(32);
    int_zero = PyLong_FromLong(0);
    if (str_transfer == NULL || str_available == NULL || str_open == NULL || str_user == NULL ||
        str_commands == NULL || int_32 == NULL || int_zero == NULL)
        return NULL;
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    sha256_ctx = EVP_MD_CTX_new();
    if (sha256_md == NULL || sha256_ctx == NULL) {
        PyErr_SetString(PyExc_ImportError, "OpenSSL has no SHA-256");
        return NULL;
    }
    return PyModule_Create(&module_def);
}
