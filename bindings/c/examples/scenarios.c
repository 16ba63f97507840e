/* Replays every tests/scenarios file through the C ABI (see tests/scenarios/README.md).
 * Usage: scenarios SERVER_INFO_JSON FILE.json...
 * SERVER_INFO_JSON is the line the test server printed. A small JSON reader is included. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wirecore.h"

/* ---- JSON ---------------------------------------------------------------------------- */

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct json {
    jtype type;
    double num;
    char *str; /* J_STR: decoded, NUL-terminated; len below */
    size_t len;
    size_t n; /* J_ARR/J_OBJ: number of items */
    char **keys;
    struct json **items;
    const char *raw; /* the value's source text */
    size_t raw_len;
} json;

typedef struct {
    const char *p, *end;
    int bad;
} reader;

static void ws(reader *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
        r->p++;
}

static json *jnew(jtype t) {
    json *j = calloc(1, sizeof *j);
    if (!j) abort();
    j->type = t;
    return j;
}

static void jfree(json *j) {
    if (!j) return;
    for (size_t i = 0; i < j->n; i++) {
        if (j->keys) free(j->keys[i]);
        jfree(j->items[i]);
    }
    free(j->keys);
    free(j->items);
    free(j->str);
    free(j);
}

static void put_utf8(char *out, size_t *k, unsigned cp) {
    if (cp < 0x80) out[(*k)++] = (char)cp;
    else if (cp < 0x800) {
        out[(*k)++] = (char)(0xc0 | (cp >> 6));
        out[(*k)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        out[(*k)++] = (char)(0xe0 | (cp >> 12));
        out[(*k)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*k)++] = (char)(0x80 | (cp & 0x3f));
    }
}

static char *jstring(reader *r, size_t *len) {
    if (r->p >= r->end || *r->p != '"') {
        r->bad = 1;
        return NULL;
    }
    r->p++;
    char *out = malloc((size_t)(r->end - r->p) + 1);
    if (!out) abort();
    size_t k = 0;
    while (r->p < r->end && *r->p != '"') {
        char c = *r->p++;
        if (c != '\\') {
            out[k++] = c;
            continue;
        }
        if (r->p >= r->end) break;
        c = *r->p++;
        switch (c) {
        case 'n': out[k++] = '\n'; break;
        case 't': out[k++] = '\t'; break;
        case 'r': out[k++] = '\r'; break;
        case 'b': out[k++] = '\b'; break;
        case 'f': out[k++] = '\f'; break;
        case 'u': {
            unsigned cp = 0;
            for (int i = 0; i < 4 && r->p < r->end; i++) {
                char h = *r->p++;
                cp = cp * 16 + (unsigned)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
            }
            put_utf8(out, &k, cp); /* surrogate pairs are not used by the scenarios */
            break;
        }
        default: out[k++] = c;
        }
    }
    if (r->p >= r->end) r->bad = 1;
    else r->p++;
    out[k] = 0;
    *len = k;
    return out;
}

static json *jvalue(reader *r);

static void jpush(json *j, char *key, json *v) {
    j->items = realloc(j->items, (j->n + 1) * sizeof *j->items);
    if (j->type == J_OBJ) j->keys = realloc(j->keys, (j->n + 1) * sizeof *j->keys);
    if (!j->items || (j->type == J_OBJ && !j->keys)) abort();
    if (j->type == J_OBJ) j->keys[j->n] = key;
    j->items[j->n++] = v;
}

static json *jvalue(reader *r) {
    ws(r);
    if (r->p >= r->end) {
        r->bad = 1;
        return jnew(J_NULL);
    }
    const char *start = r->p;
    json *j;
    char c = *r->p;
    if (c == '{' || c == '[') {
        j = jnew(c == '{' ? J_OBJ : J_ARR);
        char close = c == '{' ? '}' : ']';
        r->p++;
        ws(r);
        if (r->p < r->end && *r->p == close) r->p++;
        else
            for (;;) {
                char *key = NULL;
                if (j->type == J_OBJ) {
                    ws(r);
                    size_t kl;
                    key = jstring(r, &kl);
                    ws(r);
                    if (r->bad || r->p >= r->end || *r->p != ':') {
                        free(key);
                        r->bad = 1;
                        break;
                    }
                    r->p++;
                }
                jpush(j, key, jvalue(r));
                ws(r);
                if (r->bad || r->p >= r->end) {
                    r->bad = 1;
                    break;
                }
                if (*r->p == ',') {
                    r->p++;
                    continue;
                }
                if (*r->p == close) {
                    r->p++;
                    break;
                }
                r->bad = 1;
                break;
            }
    } else if (c == '"') {
        j = jnew(J_STR);
        j->str = jstring(r, &j->len);
    } else if (!strncmp(r->p, "true", 4) || !strncmp(r->p, "false", 5)) {
        j = jnew(J_BOOL);
        j->num = c == 't';
        r->p += c == 't' ? 4 : 5;
    } else if (!strncmp(r->p, "null", 4)) {
        j = jnew(J_NULL);
        r->p += 4;
    } else {
        j = jnew(J_NUM);
        char *e;
        j->num = strtod(r->p, &e);
        if (e == r->p) r->bad = 1;
        r->p = e;
    }
    j->raw = start;
    j->raw_len = (size_t)(r->p - start);
    return j;
}

static json *jparse(const char *s, size_t len) {
    reader r = {s, s + len, 0};
    json *j = jvalue(&r);
    ws(&r);
    if (r.bad || r.p != r.end) {
        jfree(j);
        return NULL;
    }
    return j;
}

static json *jget(const json *j, const char *key) {
    if (!j || j->type != J_OBJ) return NULL;
    for (size_t i = 0; i < j->n; i++)
        if (!strcmp(j->keys[i], key)) return j->items[i];
    return NULL;
}

static const char *jstr(const json *j, const char *key) {
    json *v = jget(j, key);
    return v && v->type == J_STR ? v->str : NULL;
}

/* Whether the dotted path `a.b.c` names a key of the JSON document. */
static int has_path(const json *doc, const char *dotted) {
    char key[256];
    const char *p = dotted;
    while (doc) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof key) return 0;
        memcpy(key, p, n);
        key[n] = 0;
        doc = jget(doc, key);
        if (!dot) return doc != NULL;
        p = dot + 1;
    }
    return 0;
}

/* Every key of `want` is in `have` with an equal value (recursively for objects). */
static int subset(const json *want, const json *have) {
    if (!have) return 0;
    if (want->type == J_OBJ) {
        if (have->type != J_OBJ) return 0;
        for (size_t i = 0; i < want->n; i++)
            if (!subset(want->items[i], jget(have, want->keys[i]))) return 0;
        return 1;
    }
    if (want->type != have->type) return 0;
    switch (want->type) {
    case J_NULL: return 1;
    case J_BOOL:
    case J_NUM: return want->num == have->num;
    case J_STR: return want->len == have->len && !memcmp(want->str, have->str, want->len);
    case J_ARR:
        if (want->n != have->n) return 0;
        for (size_t i = 0; i < want->n; i++)
            if (!subset(want->items[i], have->items[i])) return 0;
        return 1;
    default: return 0;
    }
}

/* ---- helpers ------------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
} buf;

static void bput(buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void bputs(buf *b, const char *s) { bput(b, s, strlen(s)); }

static char fail_msg[1024];
static char skip_msg[512]; /* set by run_file when the file skips C */
static int failf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fail_msg, sizeof fail_msg, fmt, ap);
    va_end(ap);
    return 1;
}

static wirecore_request *make_request(const char *method, const char *url, wirecore_error **err) {
    wirecore_request *req = NULL;
    wirecore_request_new(method, strlen(method), url, strlen(url), &req, err);
    return req;
}

/* A control-API call with the runner's own client; returns the body (caller frees) or NULL. */
static char *control(wirecore_client *c, const char *method, const char *url, const char *body,
                     size_t body_len) {
    wirecore_error *err = NULL;
    wirecore_request *req = make_request(method, url, &err);
    wirecore_response *resp = NULL;
    char *out = NULL;
    if (req && body) {
        wirecore_request_add_header(req, "content-type", 12, "application/json", 16, NULL);
        wirecore_request_set_body(req, (const uint8_t *)body, body_len, NULL);
    }
    if (req && wirecore_client_send(c, req, &resp, &err) == WIRECORE_OK) {
        const uint8_t *data;
        size_t len;
        if (wirecore_response_body(resp, &data, &len, &err) == WIRECORE_OK &&
            wirecore_response_status(resp) < 300) {
            out = malloc(len + 1);
            if (!out) abort();
            memcpy(out, data, len);
            out[len] = 0;
        }
    }
    if (err) fprintf(stderr, "scenarios: control %s: %s\n", url, wirecore_error_message(err));
    wirecore_error_free(err);
    wirecore_response_free(resp);
    return out;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) bput(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return b.p;
}

/* Replaces {name} placeholders with values from the server's info line, and {http_port}. */
static char *substitute(const char *raw, const json *info) {
    const char *http = jstr(info, "http");
    const char *port = http ? strrchr(http, ':') : NULL;
    static const char *names[] = {"http",       "http2",       "http3",      "https",     "bad_tls",
                                  "mtls",       "ca",          "client_cert", "client_key", "blackhole",
                                  "silent",     "dns",         "torture"};
    buf b = {0};
    bput(&b, "", 0);
    for (const char *p = raw; *p;) {
        int done = 0;
        if (*p == '{')
            for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
                size_t nl = strlen(names[i]);
                const char *v = jstr(info, names[i]);
                if (v && !strncmp(p + 1, names[i], nl) && p[1 + nl] == '}') {
                    /* host:port entries are given as addresses without a scheme already */
                    bputs(&b, v);
                    p += nl + 2;
                    done = 1;
                    break;
                }
            }
        if (!done && port && !strncmp(p, "{http_port}", 11)) {
            bputs(&b, port + 1);
            p += 11;
            done = 1;
        }
        if (!done) bput(&b, p++, 1);
    }
    return b.p;
}

/* ---- strictness ---------------------------------------------------------------------- */

/* Every key a scenario file may use, per object; any other key fails the file. */
static const char *TOP_KEYS[] = {"name", "description", "config", "script", "dns",
                                 "steps", "stats", "server", "skip", NULL};
static const char *STEP_KEYS[] = {"request", "outcome", "concurrency", "dns", "wait_ms", NULL};
static const char *REQUEST_KEYS[] = {"method",   "url",           "headers", "body",        "timeout_ms",
                                     "priority", "redirect",      "cache",   "balance_key", "max_redirects",
                                     "traceparent", "tracestate", NULL};
static const char *OUTCOME_KEYS[] = {"status", "error", "body", "body_contains", "body_len",
                                     "json", "json_absent", "headers", "absent_headers",
                                     "version", "reused", "cache_status", "any_of", NULL};
static const char *ALT_KEYS[] = {"status", "error", "body", "body_contains", "body_len",
                                 "json", "json_absent", "headers", "absent_headers",
                                 "version", "reused", "cache_status", NULL};
static const char *SCRIPT_KEYS[] = {"path", "replies", NULL};
static const char *DNS_KEYS[] = {"name", "ips", "ttl", "fail", "remove", "negative_ttl", NULL};
static const char *RANGE_KEYS[] = {"min", "max", NULL};
static const char *LANGUAGES[] = {"rust", "python", "node", "go", "c", NULL};

static int listed(const char **names, const char *k) {
    for (; *names; names++)
        if (!strcmp(*names, k)) return 1;
    return 0;
}

/* Fails when `j` (an object, if given) has a key outside `allowed`. */
static int keys(const json *j, const char **allowed, const char *what) {
    if (!j) return 0;
    if (j->type != J_OBJ) return failf("%s must be an object", what);
    for (size_t i = 0; i < j->n; i++)
        if (!listed(allowed, j->keys[i])) return failf("unknown key %s.%s", what, j->keys[i]);
    return 0;
}

static int keys_each(const json *list, const char **allowed, const char *what) {
    for (size_t i = 0; list && list->type == J_ARR && i < list->n; i++)
        if (keys(list->items[i], allowed, what)) return 1;
    return 0;
}

/* Checks every key of the file before anything runs. */
static int validate(const json *sc) {
    if (keys(sc, TOP_KEYS, "scenario") || keys(jget(sc, "skip"), LANGUAGES, "skip") ||
        keys_each(jget(sc, "script"), SCRIPT_KEYS, "script[]") ||
        keys_each(jget(sc, "dns"), DNS_KEYS, "dns[]"))
        return 1;
    const json *server = jget(sc, "server");
    for (size_t i = 0; server && i < server->n; i++)
        if (server->items[i]->type == J_OBJ && keys(server->items[i], RANGE_KEYS, "server.*"))
            return 1;
    const json *steps = jget(sc, "steps");
    if (!steps || steps->type != J_ARR || !steps->n) return failf("no steps");
    for (size_t i = 0; i < steps->n; i++) {
        const json *st = steps->items[i];
        if (keys(st, STEP_KEYS, "steps[]") || keys_each(jget(st, "dns"), DNS_KEYS, "steps[].dns[]") ||
            keys(jget(st, "request"), REQUEST_KEYS, "steps[].request") ||
            keys(jget(st, "outcome"), OUTCOME_KEYS, "steps[].outcome") ||
            keys_each(jget(jget(st, "outcome"), "any_of"), ALT_KEYS, "steps[].outcome.any_of[]"))
            return 1;
        if (!jget(st, "request") != !jget(st, "outcome"))
            return failf("steps[%zu]: request and outcome go together", i);
    }
    return 0;
}

/* An object whose keys are all min/max: a range for a number. */
static int is_range(const json *j) {
    if (!j || j->type != J_OBJ || !j->n) return 0;
    for (size_t i = 0; i < j->n; i++)
        if (!listed(RANGE_KEYS, j->keys[i])) return 0;
    return 1;
}

static int in_range(const json *range, double got) {
    json *mn = jget(range, "min"), *mx = jget(range, "max");
    return !(mn && got < mn->num) && !(mx && got > mx->num);
}

/* The `stats` outcome: every key given must exist; leaves compare exactly or by range. */
static int check_stats(const json *want, const json *have, const char *path) {
    if (is_range(want)) {
        if (!have || have->type != J_NUM) return failf("stats %s: not a number", path);
        if (!in_range(want, have->num))
            return failf("stats %s: %g not in %.*s", path, have->num, (int)want->raw_len, want->raw);
        return 0;
    }
    if (want->type == J_OBJ) {
        if (!have || have->type != J_OBJ) return failf("stats %s: expected an object", path);
        for (size_t i = 0; i < want->n; i++) {
            char p[512];
            snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", want->keys[i]);
            const json *h = jget(have, want->keys[i]);
            if (!h) return failf("stats %s: no such field", p);
            if (check_stats(want->items[i], h, p)) return 1;
        }
        return 0;
    }
    if (!subset(want, have))
        return failf("stats %s: want %.*s, got %.*s", path, (int)want->raw_len, want->raw,
                     have ? (int)have->raw_len : 4, have ? have->raw : "null");
    return 0;
}

/* ---- one scenario -------------------------------------------------------------------- */

static const char *version_str(int v) {
    return v == 20 ? "HTTP/2.0" : v == 10 ? "HTTP/1.0" : "HTTP/1.1";
}

static const char *cache_status_str(wirecore_cache_status s) {
    switch (s) {
    case WIRECORE_CACHE_HIT: return "hit";
    case WIRECORE_CACHE_MISS: return "miss";
    case WIRECORE_CACHE_STALE: return "stale";
    case WIRECORE_CACHE_REVALIDATED: return "revalidated";
    default: return "none";
    }
}

static int check_outcome(const json *out, wirecore_code code, wirecore_error *err,
                         wirecore_response *resp) {
    const json *alts = jget(out, "any_of");
    if (alts) {
        char why[1024] = "";
        for (size_t i = 0; i < alts->n; i++) {
            if (!check_outcome(alts->items[i], code, err, resp)) return 0;
            size_t used = strlen(why);
            snprintf(why + used, sizeof why - used, "%s%.300s", i ? "; " : "", fail_msg);
        }
        return failf("no outcome of any_of matched: %s", why);
    }
    const char *want_err = jstr(out, "error");
    const uint8_t *body = NULL;
    size_t body_len = 0;
    wirecore_error *body_err = NULL;
    if (code == WIRECORE_OK && wirecore_response_body(resp, &body, &body_len, &body_err) != WIRECORE_OK) {
        code = wirecore_error_kind(body_err);
        err = body_err;
    }
    if (code != WIRECORE_OK) {
        const char *got = wirecore_error_code(err);
        int bad = 0;
        if (!want_err) bad = failf("unexpected error %s: %s", got, wirecore_error_message(err));
        else if (strcmp(got, want_err) || code != wirecore_code_from_str(want_err))
            bad = failf("want error %s, got %s: %s", want_err, got, wirecore_error_message(err));
        wirecore_error_free(body_err);
        return bad;
    }
    unsigned status = wirecore_response_status(resp);
    if (want_err) return failf("want error %s, got status %u", want_err, status);
    json *v;
    if ((v = jget(out, "status")) && v->num != status)
        return failf("want status %g, got %u", v->num, status);
    const char *ver = jstr(out, "version");
    if (ver && strcmp(ver, version_str(wirecore_response_version(resp))))
        return failf("want version %s, got %s", ver, version_str(wirecore_response_version(resp)));
    if ((v = jget(out, "reused")) && (v->num != 0) != wirecore_response_reused(resp))
        return failf("want reused=%g", v->num);
    const char *cs = jstr(out, "cache_status");
    if (cs && strcmp(cs, cache_status_str(wirecore_response_cache_status(resp))))
        return failf("want cache_status %s, got %s", cs,
                     cache_status_str(wirecore_response_cache_status(resp)));
    if ((v = jget(out, "body")) && (v->len != body_len || memcmp(v->str, body, body_len)))
        return failf("want body \"%s\", got \"%.*s\"", v->str, (int)(body_len > 200 ? 200 : body_len),
                     (const char *)body);
    if ((v = jget(out, "body_contains"))) {
        char *text = malloc(body_len + 1);
        if (!text) abort();
        memcpy(text, body, body_len);
        text[body_len] = 0;
        int found = strstr(text, v->str) != NULL;
        free(text);
        if (!found) return failf("body lacks \"%s\"", v->str);
    }
    if ((v = jget(out, "body_len")) && v->num != (double)body_len)
        return failf("want body_len %g, got %zu", v->num, body_len);
    if ((v = jget(out, "json"))) {
        json *have = jparse((const char *)body, body_len);
        int ok = subset(v, have);
        jfree(have);
        if (!ok) return failf("JSON %.*s does not contain %.*s", (int)(body_len > 300 ? 300 : body_len),
                              (const char *)body, (int)v->raw_len, v->raw);
    }
    if ((v = jget(out, "json_absent"))) {
        json *have = jparse((const char *)body, body_len);
        for (size_t i = 0; i < v->n; i++)
            if (!have || has_path(have, v->items[i]->str)) {
                jfree(have);
                return failf("%s should be absent: %.*s", v->items[i]->str,
                             (int)(body_len > 300 ? 300 : body_len), (const char *)body);
            }
        jfree(have);
    }
    if ((v = jget(out, "headers")))
        for (size_t i = 0; i < v->n; i++) {
            const char *val;
            size_t vl;
            const char *name = v->keys[i];
            if (!wirecore_response_header_get(resp, name, strlen(name), &val, &vl) ||
                vl != v->items[i]->len || memcmp(val, v->items[i]->str, vl))
                return failf("header %s: want %s", name, v->items[i]->str);
        }
    if ((v = jget(out, "absent_headers")))
        for (size_t i = 0; i < v->n; i++) {
            const char *name = v->items[i]->str;
            if (wirecore_response_header_get(resp, name, strlen(name), NULL, NULL))
                return failf("header %s should be absent", name);
        }
    return 0;
}

static int run_step(wirecore_client *client, wirecore_queue *q, const json *step) {
    const json *req = jget(step, "request"), *out = jget(step, "outcome");
    json *conc = jget(step, "concurrency");
    int n = conc ? (int)conc->num : 1;
    int failures = 0, pending = 0;
    for (int i = 0; i < n; i++) {
        wirecore_error *err = NULL;
        const char *method = jstr(req, "method");
        wirecore_request *r = make_request(method ? method : "GET", jstr(req, "url"), &err);
        json *v;
        if (r && (v = jget(req, "headers")))
            for (size_t h = 0; h < v->n && !err; h++)
                wirecore_request_add_header(r, v->keys[h], strlen(v->keys[h]), v->items[h]->str,
                                            v->items[h]->len, &err);
        if (r && !err && (v = jget(req, "body")))
            wirecore_request_set_body(r, (const uint8_t *)v->str, v->len, &err);
        if (r && !err && (v = jget(req, "timeout_ms")))
            wirecore_request_set_timeout_ms(r, (uint64_t)v->num, &err);
        if (r && !err && (v = jget(req, "priority"))) {
            uint8_t u;
            bool inc;
            if (wirecore_priority_parse(v->str, v->len, &u, &inc, &err) == WIRECORE_OK)
                wirecore_request_set_priority(r, u, inc, &err);
        }
        json *redirect = jget(req, "redirect"), *max_redirects = jget(req, "max_redirects");
        if (r && !err && (redirect || max_redirects))
            wirecore_request_set_redirect(r, redirect ? redirect->str : NULL, redirect ? redirect->len : 0,
                                          max_redirects ? (int64_t)max_redirects->num : -1, &err);
        if (r && !err && (v = jget(req, "cache")))
            wirecore_request_set_cache_mode(r, v->str, v->len, &err);
        if (r && !err && (v = jget(req, "balance_key")))
            wirecore_request_set_balance_key(r, v->str, v->len, &err);
        json *tp = jget(req, "traceparent"), *ts = jget(req, "tracestate");
        if (r && !err && (tp || ts))
            wirecore_request_set_trace_context(r, tp ? tp->str : NULL, tp ? tp->len : 0, ts ? ts->str : NULL,
                                               ts ? ts->len : 0, &err);
        if (err) { /* rejected before any I/O: that is the outcome */
            wirecore_request_free(r);
            failures += check_outcome(out, wirecore_error_kind(err), err, NULL);
            wirecore_error_free(err);
            continue;
        }
        if (wirecore_client_submit_queue(client, r, q, NULL, NULL, &err) != WIRECORE_OK) {
            failures += failf("submit: %s", wirecore_error_message(err));
            wirecore_error_free(err);
            continue;
        }
        pending++;
    }
    while (pending > 0) {
        wirecore_completion batch[32];
        intptr_t got = wirecore_queue_wait(q, batch, 32, 30000);
        if (got <= 0) return failures + failf("no completion within 30 s");
        for (intptr_t i = 0; i < got; i++) {
            failures += check_outcome(out, batch[i].code, batch[i].error, batch[i].response);
            wirecore_response_free(batch[i].response);
            wirecore_error_free(batch[i].error);
        }
        pending -= (int)got;
    }
    return failures;
}

static int check_server(wirecore_client *ctl, const char *control_url, const json *want) {
    char url[512];
    snprintf(url, sizeof url, "%s/_control/counters", control_url);
    /* Closes and cancellations reach the server after the client sees them: poll briefly. */
    for (int attempt = 0; attempt < 40; attempt++) {
        char *body = control(ctl, "GET", url, NULL, 0);
        json *have = body ? jparse(body, strlen(body)) : NULL;
        free(body);
        int bad = 0;
        for (size_t i = 0; i < want->n && !bad; i++) {
            json *h = jget(have, want->keys[i]), *w = want->items[i];
            if (have && !h) {
                jfree(have);
                return failf("unknown server counter %s", want->keys[i]);
            }
            double got = h ? h->num : -1;
            if (w->type == J_NUM && got != w->num)
                bad = failf("server %s: want %g, got %g", want->keys[i], w->num, got);
            if (w->type == J_OBJ) {
                if (!in_range(w, got))
                    bad = failf("server %s: %g not in %.*s", want->keys[i], got, (int)w->raw_len,
                                w->raw);
            }
        }
        jfree(have);
        if (!bad) return 0;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 1;
}

/* Posts each entry of a `dns` list to the control API. */
static int post_dns(wirecore_client *ctl, const char *control_url, const json *list) {
    char url[512];
    snprintf(url, sizeof url, "%s/_control/dns", control_url);
    for (size_t i = 0; list && i < list->n; i++) {
        char *r = control(ctl, "POST", url, list->items[i]->raw, list->items[i]->raw_len);
        if (!r) return failf("dns entry %zu refused", i);
        free(r);
    }
    return 0;
}

static int run_file(const char *path, const json *info, wirecore_client *ctl) {
    size_t len;
    char *raw = read_file(path, &len);
    if (!raw) return failf("cannot read");
    char *text = substitute(raw, info);
    free(raw);
    json *sc = jparse(text, strlen(text));
    if (!sc) {
        free(text);
        return failf("not valid JSON");
    }
    int failures = 0;
    const char *control_url = jstr(info, "control");
    if (validate(sc)) {
        failures = 1;
        goto done;
    }
    json *skip = jget(jget(sc, "skip"), "c");
    if (skip) {
        printf("skip  %s: %s\n", jstr(sc, "name"), skip->str);
        snprintf(skip_msg, sizeof skip_msg, "%s: %s", jstr(sc, "name"), skip->str);
        goto done;
    }
    char url[512];
    snprintf(url, sizeof url, "%s/_control/reset", control_url);
    free(control(ctl, "POST", url, "{}", 2));
    json *scripts = jget(sc, "script");
    snprintf(url, sizeof url, "%s/_control/script", control_url);
    for (size_t i = 0; scripts && i < scripts->n; i++) {
        char *r = control(ctl, "POST", url, scripts->items[i]->raw, scripts->items[i]->raw_len);
        if (!r) failures += failf("script %zu refused", i);
        free(r);
    }
    failures += post_dns(ctl, control_url, jget(sc, "dns"));
    /* The config as given; the server's CA is added unless it sets `tls` itself. */
    json *cfg = jget(sc, "config");
    buf config = {0};
    bputs(&config, "{");
    if (!jget(cfg, "tls")) {
        bputs(&config, "\"tls\":{\"ca_files\":[\"");
        bputs(&config, jstr(info, "ca"));
        bputs(&config, "\"]}");
        if (cfg && cfg->n) bputs(&config, ",");
    }
    if (cfg && cfg->n) bput(&config, cfg->raw + 1, cfg->raw_len - 1);
    else bputs(&config, "}");
    wirecore_client *client = NULL;
    wirecore_error *err = NULL;
    if (wirecore_client_new(config.p, &client, &err) != WIRECORE_OK) {
        failures += failf("config: %s", wirecore_error_message(err));
        wirecore_error_free(err);
        free(config.p);
        goto done;
    }
    free(config.p);
    wirecore_queue *q = wirecore_queue_new();
    json *steps = jget(sc, "steps");
    for (size_t i = 0; steps && i < steps->n && !failures; i++) {
        const json *st = steps->items[i];
        failures += post_dns(ctl, control_url, jget(st, "dns"));
        json *wait = jget(st, "wait_ms");
        if (wait) { /* time passing is the behaviour under test here (a breaker's open time) */
            struct timespec ts = {(time_t)(wait->num / 1000), (long)fmod(wait->num, 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (!failures && jget(st, "request")) failures += run_step(client, q, st);
        if (failures) {
            char m[1100];
            snprintf(m, sizeof m, "step %zu: %s", i, fail_msg);
            snprintf(fail_msg, sizeof fail_msg, "%.1000s", m);
        }
    }
    json *want_stats = jget(sc, "stats");
    if (!failures && want_stats) {
        char *stats = NULL;
        size_t stats_len = 0;
        json *have = NULL;
        if (wirecore_client_stats_json(client, &stats, &stats_len) == WIRECORE_OK)
            have = jparse(stats, stats_len);
        failures += have ? check_stats(want_stats, have, "") : failf("no stats");
        jfree(have);
        wirecore_string_free(stats);
    }
    wirecore_client_close(client, 2000);
    wirecore_client_free(client);
    wirecore_queue_free(q);
    json *server = jget(sc, "server");
    if (!failures && server) failures += check_server(ctl, control_url, server);
done:
    jfree(sc);
    free(text);
    return failures;
}

/* ---- stats field names ---------------------------------------------------------------- */

/* Where the stats `have` differ from the core's field tree `shape` (tests/stats-fields.json,
 * generated from wirecore::Stats): `{"*": x}` is a data map whose keys are data (origins, error
 * codes), each value shaped `x`; a map of records must not be empty, or nothing was checked. */
static int field_differences(const json *have, const json *shape, const char *path) {
    if (shape->type != J_OBJ) return 0;
    if (!have || have->type != J_OBJ) return failf("stats %s: not an object", path);
    char p[512];
    int f = 0;
    const json *inner = jget(shape, "*");
    if (inner && shape->n == 1) {
        if (inner->type == J_OBJ && have->n == 0) return failf("stats %s: empty, nothing checked", path);
        for (size_t i = 0; i < have->n; i++) {
            snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", have->keys[i]);
            f += field_differences(have->items[i], inner, p);
        }
        return f;
    }
    for (size_t i = 0; i < shape->n; i++) {
        snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", shape->keys[i]);
        const json *h = jget(have, shape->keys[i]);
        if (!h) {
            printf("      stats %s: missing\n", p);
            f += failf("stats %s: missing", p);
        } else {
            f += field_differences(h, shape->items[i], p);
        }
    }
    for (size_t i = 0; i < have->n; i++)
        if (!jget(shape, have->keys[i])) {
            printf("      stats %s%s%s: not a core field\n", path, *path ? "." : "", have->keys[i]);
            f += failf("stats %s%s%s: not a core field", path, *path ? "." : "", have->keys[i]);
        }
    return f;
}

/* C's stats (wirecore_client_stats_json) carry the core's field names, every section filled. */
static int stats_fields(const char *fields_path, const json *info) {
    size_t len;
    char *raw = read_file(fields_path, &len);
    json *shape = raw ? jparse(raw, len) : NULL;
    free(raw);
    if (!shape) return failf("cannot read %s", fields_path);
    const char *http = jstr(info, "http");
    buf config = {0};
    bputs(&config, "{\"rate_limit\":{\"enabled\":true,\"requests\":1000,\"per_ms\":1000},"
                   "\"breaker\":{\"enabled\":true,\"consecutive_failures\":3},"
                   "\"concurrency\":{\"enabled\":true,\"initial_limit\":10},"
                   "\"services\":{\"svc\":{\"endpoints\":[{\"url\":\"");
    bputs(&config, http);
    bputs(&config, "\"}]}}}");
    wirecore_client *client = NULL;
    int f = 0;
    if (wirecore_client_new(config.p, &client, NULL) != WIRECORE_OK) f = failf("stats client");
    free(config.p);
    wirecore_queue *q = wirecore_queue_new();
    for (int i = 0; i < 2 && !f; i++) {
        buf step = {0};
        bputs(&step, "{\"request\":{\"method\":\"GET\",\"url\":\"");
        bputs(&step, i ? "http://svc" : http);
        bputs(&step, "/bytes/1\"},\"outcome\":{\"status\":200}}");
        json *st = jparse(step.p, step.len);
        f += st ? run_step(client, q, st) : failf("stats step");
        jfree(st);
        free(step.p);
    }
    char *stats = NULL;
    size_t stats_len = 0;
    json *have = NULL;
    if (!f && wirecore_client_stats_json(client, &stats, &stats_len) == WIRECORE_OK)
        have = jparse(stats, stats_len);
    if (!f) f += have ? field_differences(have, shape, "") : failf("no stats");
    jfree(have);
    wirecore_string_free(stats);
    wirecore_client_close(client, 2000);
    wirecore_client_free(client);
    wirecore_queue_free(q);
    jfree(shape);
    return f;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s SERVER_INFO_JSON [--stats-fields=FILE] FILE.json...\n", argv[0]);
        return 2;
    }
    json *info = jparse(argv[1], strlen(argv[1]));
    if (!info || !jstr(info, "control")) {
        fprintf(stderr, "scenarios: bad server info line\n");
        return 2;
    }
    wirecore_client *ctl = NULL;
    if (wirecore_client_new(NULL, &ctl, NULL) != WIRECORE_OK) return 1;
    int failed = 0, passed = 0, skipped = 0;
    buf reasons = {0};
    bput(&reasons, "", 0);
    for (int i = 2; i < argc; i++) {
        fail_msg[0] = 0;
        skip_msg[0] = 0;
        const char *fields = "--stats-fields=";
        if (!strncmp(argv[i], fields, strlen(fields))) {
            if (stats_fields(argv[i] + strlen(fields), info)) {
                printf("FAIL  stats field names: %s\n", fail_msg);
                failed++;
            } else {
                printf("ok    stats field names (%s)\n", argv[i] + strlen(fields));
            }
            continue;
        }
        if (run_file(argv[i], info, ctl)) {
            printf("FAIL  %s: %s\n", argv[i], fail_msg);
            failed++;
        } else if (skip_msg[0]) {
            if (skipped++) bputs(&reasons, "; ");
            bputs(&reasons, skip_msg);
        } else {
            printf("ok    %s\n", argv[i]);
            passed++;
        }
    }
    printf("scenarios (c): %d passed, %d skipped (%s), %d failed\n", passed, skipped, reasons.p,
           failed);
    free(reasons.p);
    wirecore_client_free(ctl);
    jfree(info);
    return failed ? 1 : 0;
}
