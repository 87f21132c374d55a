/* libFuzzer target for layer 6 (json): parse (with tokens and count-only,
   which must agree), walk every token checking the links, unescape and
   compare every string, read every number, write the document again with
   the writer, parse that and compare the tokens; read every member of every
   object with the get_* helpers, rewrite a top-level object with the *_field
   writers and read it back through them. abort() on any broken invariant. */
#include "fuzz.h"

#define MAXTOK 2048

/* Writes every token again: strings unescaped and escaped anew, numbers
   as their text; each double is also written and read back. */
static rtws_err reemit(const rtws_json *doc, rtws_json_writer *w, char *tmp) {
    int stack[RTWS_JSON_DEPTH + 1], top = 0, i;
    size_t len;
    for (i = 0; i < (int)doc->count; i++) {
        const rtws_json_tok *t = doc->toks + i;
        while (top && (uint32_t)i >= doc->toks[stack[top - 1]].next) {
            if (doc->toks[stack[--top]].type == RTWS_JSON_OBJECT) rtws_json_write_object_end(w);
            else rtws_json_write_array_end(w);
        }
        switch (t->type) {
        case RTWS_JSON_OBJECT:
        case RTWS_JSON_ARRAY:
            FUZZ_CHECK(top <= RTWS_JSON_DEPTH);
            stack[top++] = i;
            if (t->type == RTWS_JSON_OBJECT) rtws_json_write_object(w);
            else rtws_json_write_array(w);
            break;
        case RTWS_JSON_STRING:
            FUZZ_CHECK(rtws_json_unescape(doc, i, tmp, doc->len + 1, &len) == RTWS_OK);
            if (t->flags & RTWS_JSON_KEY) rtws_json_write_key(w, tmp, len);
            else rtws_json_write_string(w, tmp, len);
            break;
        case RTWS_JSON_NUMBER: rtws_json_write_tok(w, doc, i); break;
        case RTWS_JSON_TRUE: rtws_json_write_bool(w, 1); break;
        case RTWS_JSON_FALSE: rtws_json_write_bool(w, 0); break;
        case RTWS_JSON_NULL: rtws_json_write_null(w); break;
        default: FUZZ_CHECK(0);
        }
    }
    while (top) {
        if (doc->toks[stack[--top]].type == RTWS_JSON_OBJECT) rtws_json_write_object_end(w);
        else rtws_json_write_array_end(w);
    }
    return rtws_json_writer_finish(w, &len);
}

static void check_number(const rtws_json *doc, int i) {
    int64_t v = 0;
    double x = 0, back = 0;
    rtws_err ei = rtws_json_int64(doc, i, &v), ed = rtws_json_double(doc, i, &x);
    FUZZ_CHECK(ei == RTWS_OK || ei == RTWS_ERR_RANGE);
    FUZZ_CHECK(ed == RTWS_OK || ed == RTWS_ERR_RANGE);
    if (ei == RTWS_OK && v > -(INT64_C(1) << 53) && v < (INT64_C(1) << 53))
        FUZZ_CHECK(ed == RTWS_OK && x == (double)v);
    if (ed == RTWS_OK) {
        char buf[64];
        size_t len;
        rtws_json_writer w;
        rtws_json back_doc;
        rtws_json_tok t[2];
        rtws_json_writer_init(&w, buf, sizeof buf);
        FUZZ_CHECK(rtws_json_write_double(&w, x) == RTWS_OK);
        FUZZ_CHECK(rtws_json_writer_finish(&w, &len) == RTWS_OK);
        FUZZ_CHECK(rtws_json_parse(&back_doc, buf, len, t, 2, 0) == RTWS_OK);
        FUZZ_CHECK(rtws_json_double(&back_doc, 0, &back) == RTWS_OK);
        FUZZ_CHECK(memcmp(&back, &x, sizeof x) == 0);
    } else {
        FUZZ_CHECK(x - x != 0.0); /* RANGE: an infinity */
    }
}

/* The get_* helpers agree with get + unescape / int64 / the token type. */
static void check_getters(const rtws_json *doc, int obj, const char *key, char *buf, size_t cap) {
    int v = rtws_json_get(doc, obj, key), r = rtws_json_get_str(doc, obj, key, buf, cap);
    const rtws_json_tok *t = rtws_json_tok_at(doc, v);
    int64_t a = 1, b = 2;
    rtws_err ea = rtws_json_get_int64(doc, obj, key, &a), eb = rtws_json_int64(doc, v, &b);
    size_t len;
    FUZZ_CHECK(t != NULL);
    FUZZ_CHECK(ea == eb && (ea != RTWS_OK || a == b));
    FUZZ_CHECK(ea == RTWS_OK || ea == RTWS_ERR_RANGE || ea == RTWS_ERR_INVALID);
    FUZZ_CHECK((ea == RTWS_ERR_INVALID) == (t->type != RTWS_JSON_NUMBER));
    FUZZ_CHECK(rtws_json_get_bool(doc, obj, key, 7) ==
               (t->type == RTWS_JSON_TRUE ? 1 : t->type == RTWS_JSON_FALSE ? 0 : 7));
    if (t->type != RTWS_JSON_STRING) {
        FUZZ_CHECK(r == RTWS_ERR_INVALID && buf[0] == '\0');
        return;
    }
    FUZZ_CHECK(r == RTWS_OK || r > 0 || r == RTWS_ERR_SYNTAX);
    if (r == RTWS_ERR_SYNTAX) {
        FUZZ_CHECK(buf[0] == '\0');
        return;
    }
    FUZZ_CHECK(strlen(buf) == (size_t)r && rtws_json_eqn(doc, v, buf, (size_t)r));
    FUZZ_CHECK(rtws_json_unescape(doc, v, buf, cap, &len) == RTWS_OK && len == (size_t)r);
    FUZZ_CHECK(rtws_json_get_str(doc, obj, key, buf, (size_t)r) == RTWS_ERR_NOSPACE);
    FUZZ_CHECK(r == 0 || buf[0] == '\0');
}

/* Writes object obj member by member with the *_field writers (strings as
   str_field unless they hold U+0000, numbers and odd members as tok_field,
   booleans as bool_field, the rest as raw_field), measured first, then
   checks every member reads back the same through the get_* helpers. */
static void fields_roundtrip(const rtws_json *doc, char *key, char *buf) {
    static rtws_json_tok t2[MAXTOK];
    rtws_json_writer w;
    rtws_json out;
    size_t need = 0, len, klen, n;
    char *o = NULL, *buf2;
    const char *raw;
    int pass, k, m, r, r2;
    for (pass = 0; pass < 2; pass++) {
        o = pass ? (char *)malloc(need + 1) : NULL;
        rtws_json_writer_init(&w, o, pass ? need + 1 : 0);
        rtws_json_write_object(&w);
        for (k = rtws_json_child(doc, 0), m = 0; k >= 0; k = rtws_json_next(doc, k), m++) {
            const rtws_json_tok *v = doc->toks + k + 1;
            FUZZ_CHECK(rtws_json_unescape(doc, k, key, doc->len + 1, &klen) == RTWS_OK);
            if (strlen(key) != klen) continue; /* not a C string */
            if (v->type == RTWS_JSON_STRING &&
                rtws_json_unescape(doc, k + 1, buf, doc->len + 1, &len) == RTWS_OK &&
                strlen(buf) == len && !(m & 1))
                rtws_json_write_str_field(&w, key, buf);
            else if (v->type == RTWS_JSON_TRUE || v->type == RTWS_JSON_FALSE)
                rtws_json_write_bool_field(&w, key, v->type == RTWS_JSON_TRUE);
            else if (v->type == RTWS_JSON_NUMBER || (m & 1))
                rtws_json_write_tok_field(&w, key, doc, k + 1);
            else if ((raw = rtws_json_raw(doc, k + 1, &n)) != NULL)
                rtws_json_write_raw_field(&w, key, raw, n);
        }
        rtws_json_write_object_end(&w);
        FUZZ_CHECK(rtws_json_writer_finish(&w, &len) == (pass ? RTWS_OK : RTWS_ERR_NOSPACE));
        FUZZ_CHECK(!pass || len == need);
        need = len;
    }
    FUZZ_CHECK(rtws_json_parse(&out, o, need, t2, MAXTOK, 0) == RTWS_OK);
    buf2 = (char *)malloc(need + 1);
    for (k = rtws_json_child(doc, 0); k >= 0; k = rtws_json_next(doc, k)) {
        int64_t a = 1, b = 1;
        FUZZ_CHECK(rtws_json_unescape(doc, k, key, doc->len + 1, &klen) == RTWS_OK);
        if (strlen(key) != klen) continue;
        r = rtws_json_get_str(doc, 0, key, buf, doc->len + 1);
        r2 = rtws_json_get_str(&out, 0, key, buf2, need + 1);
        FUZZ_CHECK(r == r2 && (r < 0 || memcmp(buf, buf2, (size_t)r) == 0));
        FUZZ_CHECK(rtws_json_get_int64(doc, 0, key, &a) == rtws_json_get_int64(&out, 0, key, &b));
        FUZZ_CHECK(a == b);
        FUZZ_CHECK(rtws_json_get_bool(doc, 0, key, 7) == rtws_json_get_bool(&out, 0, key, 7));
    }
    free(buf2);
    free(o);
}

static void walk(const rtws_json *doc, char *tmp, char *tmp2) {
    size_t i;
    for (i = 0; i < doc->count; i++) {
        const rtws_json_tok *t = doc->toks + i;
        size_t len;
        int c, kids = 0;
        FUZZ_CHECK(t->type >= RTWS_JSON_OBJECT && t->type <= RTWS_JSON_NULL);
        FUZZ_CHECK(t->next > i && t->next <= doc->count);
        FUZZ_CHECK(t->parent < (int32_t)i && (t->parent >= 0 || i == 0));
        FUZZ_CHECK((size_t)t->start + t->len <= doc->len);
        if (t->parent >= 0) {
            const rtws_json_tok *up = doc->toks + t->parent;
            FUZZ_CHECK(up->type == RTWS_JSON_OBJECT || up->type == RTWS_JSON_ARRAY);
            FUZZ_CHECK(t->next <= up->next);
            FUZZ_CHECK(t->start > up->start && t->start + t->len < up->start + up->len);
            FUZZ_CHECK(!(t->flags & RTWS_JSON_KEY) == (up->type == RTWS_JSON_ARRAY ||
                                                       doc->toks[i - 1].flags & RTWS_JSON_KEY));
        }
        switch (t->type) {
        case RTWS_JSON_OBJECT:
        case RTWS_JSON_ARRAY:
            FUZZ_CHECK(doc->text[t->start] == (t->type == RTWS_JSON_OBJECT ? '{' : '['));
            FUZZ_CHECK(doc->text[t->start + t->len - 1] == (t->type == RTWS_JSON_OBJECT ? '}' : ']'));
            for (c = rtws_json_child(doc, (int)i); c >= 0; c = rtws_json_next(doc, c)) {
                FUZZ_CHECK(doc->toks[c].parent == (int32_t)i);
                if (t->type == RTWS_JSON_OBJECT) {
                    int v;
                    FUZZ_CHECK(doc->toks[c].flags & RTWS_JSON_KEY);
                    FUZZ_CHECK(rtws_json_unescape(doc, c, tmp, doc->len + 1, &len) == RTWS_OK);
                    if (strlen(tmp) == len) { /* no NUL inside: usable as a C string */
                        v = rtws_json_get(doc, (int)i, tmp);
                        FUZZ_CHECK(v > 0 && v <= c + 1 && rtws_json_eq(doc, v - 1, tmp));
                        check_getters(doc, (int)i, tmp, tmp2, doc->len + 1);
                    }
                } else {
                    FUZZ_CHECK(rtws_json_at(doc, (int)i, (size_t)kids) == c);
                }
                kids++;
            }
            FUZZ_CHECK((uint32_t)kids == t->size);
            break;
        case RTWS_JSON_STRING:
            FUZZ_CHECK(doc->text[t->start - 1] == '"' && doc->text[t->start + t->len] == '"');
            FUZZ_CHECK(rtws_json_unescape(doc, (int)i, tmp, t->len + 1, &len) == RTWS_OK);
            FUZZ_CHECK(len <= t->len && tmp[len] == '\0');
            if (!(t->flags & RTWS_JSON_ESCAPED))
                FUZZ_CHECK(len == t->len && !memcmp(tmp, doc->text + t->start, len));
            FUZZ_CHECK(rtws_json_eqn(doc, (int)i, tmp, len));
            if (len) {
                FUZZ_CHECK(!rtws_json_eqn(doc, (int)i, tmp, len - 1));
                FUZZ_CHECK(rtws_json_unescape(doc, (int)i, tmp, len, &len) == RTWS_ERR_NOSPACE);
            }
            break;
        case RTWS_JSON_NUMBER: check_number(doc, (int)i); break;
        default: FUZZ_CHECK(t->size == 0); break;
        }
    }
}

static int same_tokens(const rtws_json *a, const rtws_json *b, char *tmp) {
    size_t i, len;
    if (a->count != b->count) return 0;
    for (i = 0; i < a->count; i++) {
        const rtws_json_tok *x = a->toks + i, *y = b->toks + i;
        if (x->type != y->type || x->size != y->size || x->next != y->next ||
            x->parent != y->parent ||
            (x->flags & ~RTWS_JSON_ESCAPED) != (y->flags & ~RTWS_JSON_ESCAPED))
            return 0;
        if (x->type == RTWS_JSON_STRING) {
            FUZZ_CHECK(rtws_json_unescape(a, (int)i, tmp, a->len + 1, &len) == RTWS_OK);
            if (!rtws_json_eqn(b, (int)i, tmp, len)) return 0;
        } else if (x->type == RTWS_JSON_NUMBER) {
            if (x->len != y->len || memcmp(a->text + x->start, b->text + y->start, x->len))
                return 0;
        }
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    static rtws_json_tok toks[MAXTOK], toks2[MAXTOK];
    const char *text = (const char *)d;
    rtws_json doc, cnt, doc2;
    rtws_json_writer w;
    rtws_err e, ec;
    char *tmp, *tmp2, *out, *out2;
    size_t need, len;

    e = rtws_json_parse(&doc, text, n, toks, MAXTOK, 0);
    ec = rtws_json_parse(&cnt, text, n, NULL, 0, 0);
    FUZZ_CHECK(e == RTWS_OK || e == RTWS_ERR_NOSPACE || e == RTWS_ERR_SYNTAX ||
               e == RTWS_ERR_UTF8 || e == RTWS_ERR_DEPTH);
    FUZZ_CHECK(doc.err != NULL && cnt.err != NULL);
    if (e == RTWS_OK || e == RTWS_ERR_NOSPACE) {
        FUZZ_CHECK(ec == RTWS_OK && cnt.count == doc.count);
        FUZZ_CHECK(e == RTWS_OK ? doc.count <= MAXTOK : doc.count > MAXTOK);
        FUZZ_CHECK(doc.count >= 1 && doc.count <= n);
        FUZZ_CHECK(doc.err[0] == '\0' || e == RTWS_ERR_NOSPACE);
    } else {
        FUZZ_CHECK(ec == e && cnt.err_off == doc.err_off && doc.err_off <= n);
        FUZZ_CHECK(doc.err[0] != '\0' && doc.count == 0);
        /* a smaller token array changes nothing about the error */
        FUZZ_CHECK(rtws_json_parse(&cnt, text, n, toks2, 3, 0) == e && cnt.err_off == doc.err_off);
    }
    if (e == RTWS_OK && doc.count > 1) {
        /* too few tokens: access must stay inside the ones filled */
        size_t cap = 1 + n % (doc.count - 1), i;
        FUZZ_CHECK(rtws_json_parse(&cnt, text, n, toks2, cap, 0) == RTWS_ERR_NOSPACE);
        FUZZ_CHECK(cnt.count == doc.count && rtws_json_tok_at(&cnt, (int)cap) == NULL);
        for (i = 0; i < cap; i++) {
            int c = rtws_json_child(&cnt, (int)i), k;
            FUZZ_CHECK(c < (int)cap && rtws_json_next(&cnt, (int)i) < (int)cap);
            FUZZ_CHECK(rtws_json_get(&cnt, (int)i, "type") < (int)cap);
            FUZZ_CHECK(rtws_json_at(&cnt, (int)i, 1) < (int)cap);
            for (k = c; k >= 0; k = rtws_json_next(&cnt, k)) FUZZ_CHECK(k < (int)cap);
        }
    }
    if (e != RTWS_OK) return 0;
    FUZZ_CHECK(rtws_json_parse(&cnt, text, n, toks2, doc.count, 0) == RTWS_OK);
    if (doc.count > 1) {
        FUZZ_CHECK(rtws_json_parse(&cnt, text, n, toks2, doc.count - 1, 0) == RTWS_ERR_NOSPACE);
        FUZZ_CHECK(cnt.count == doc.count);
    }

    tmp = (char *)malloc(n + 1);
    tmp2 = (char *)malloc(n + 1);
    walk(&doc, tmp, tmp2);
    if (doc.toks[0].type == RTWS_JSON_OBJECT) fields_roundtrip(&doc, tmp, tmp2);

    /* write it again: measure, then write into exactly that much */
    rtws_json_writer_init(&w, NULL, 0);
    e = reemit(&doc, &w, tmp);
    FUZZ_CHECK(e == RTWS_ERR_NOSPACE);
    need = w.priv_.len;
    out = (char *)malloc(need + 1);
    rtws_json_writer_init(&w, out, need);
    FUZZ_CHECK(reemit(&doc, &w, tmp) == RTWS_OK && w.priv_.len == need);
    FUZZ_CHECK(rtws_json_parse(&doc2, out, need, toks2, MAXTOK, 0) == RTWS_OK);
    FUZZ_CHECK(same_tokens(&doc, &doc2, tmp));
    /* and once more from the copy: the writer's form is a fixed point */
    out2 = (char *)malloc(need + 1);
    rtws_json_writer_init(&w, out2, need + 1);
    FUZZ_CHECK(reemit(&doc2, &w, tmp) == RTWS_OK);
    FUZZ_CHECK(rtws_json_writer_finish(&w, &len) == RTWS_OK && len == need);
    FUZZ_CHECK(memcmp(out, out2, need) == 0 && out2[need] == '\0');
    /* forwarding the whole value verbatim */
    rtws_json_writer_init(&w, out2, need + 1);
    FUZZ_CHECK(rtws_json_write_raw(&w, out, need) == RTWS_OK);
    FUZZ_CHECK(rtws_json_writer_finish(&w, &len) == RTWS_OK && len == need);
    free(out2);
    free(out);
    free(tmp2);
    free(tmp);
    return 0;
}
