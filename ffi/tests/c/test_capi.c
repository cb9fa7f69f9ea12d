/*
 * The C ABI test: every exported function of ffi/include/turnout.h, its
 * error paths (NULL handles and pointers, invalid UTF-8, bad config, bad
 * options, bad facets, corrupted batches, a panic turned into a status) and
 * its ownership rule. Built and run by `cargo xtask go` under valgrind
 * (--leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=1),
 * so a leak or an invalid access fails CI.
 *
 * usage: test_capi CONFIG.json     (ffi/tests/c/config.json)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "turnout.h"

static int str_has(TurnoutStr s, const char *needle) {
    TurnoutBytes b = {(uint8_t *)s.ptr, s.len};
    return bytes_has(b, needle);
}

/* Checks a failed call's status and message, then frees the error. */
static void expect_error(TurnoutStatus got, TurnoutStatus want, TurnoutError *err, const char *needle, int line) {
    int ok = got == want && err != NULL && turnout_error_status(err) == want &&
             str_has(turnout_error_message(err), needle);
    if (ok) {
        passed++;
    } else {
        failed++;
        TurnoutStr m = turnout_error_message(err);
        fprintf(stderr, "line %d: want status %d with \"%s\", got %d: %.*s\n", line, (int)want, needle, (int)got,
                (int)m.len, (const char *)m.ptr);
    }
    turnout_error_free(err);
}
#define EXPECT_ERROR(call, want, needle)                     \
    do {                                                     \
        TurnoutError *e_ = NULL;                             \
        TurnoutStatus s_ = (call);                           \
        expect_error(s_, want, e_, needle, __LINE__);        \
    } while (0)
/* The calls inside EXPECT_ERROR pass &e_ as their error out-parameter. */
#define ERR (&e_)

/* Checks a failed call's stable error kind (the same code on every platform), then frees the error. */
static void expect_kind(TurnoutError *err, const char *kind, int line) {
    TurnoutStr k = turnout_error_kind(err);
    if (err != NULL && k.len == strlen(kind) && memcmp(k.ptr, kind, k.len) == 0) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "line %d: want kind %s, got %.*s\n", line, kind, (int)k.len, (const char *)k.ptr);
    }
    turnout_error_free(err);
}
#define EXPECT_KIND(call, kind)                  \
    do {                                         \
        TurnoutError *e_ = NULL;                 \
        (void)(call);                            \
        expect_kind(e_, kind, __LINE__);         \
    } while (0)

/* ---- binary facets (layout in the header) ---- */
typedef struct {
    uint8_t buf[256];
    size_t len;
} Facets;

static void fb_start(Facets *f) {
    f->buf[0] = TURNOUT_FACETS_BINARY;
    f->len = 1;
}
static void fb_name(Facets *f, uint8_t tag, const char *name) {
    f->buf[f->len++] = tag;
    f->buf[f->len++] = (uint8_t)strlen(name); /* a one-byte varint: names < 128 bytes */
    memcpy(f->buf + f->len, name, strlen(name));
    f->len += strlen(name);
}
static void fb_int(Facets *f, const char *name, int64_t v) {
    fb_name(f, TURNOUT_FACET_INT64, name);
    for (int i = 0; i < 8; i++) f->buf[f->len++] = (uint8_t)((uint64_t)v >> (8 * i));
}
static void fb_str(Facets *f, const char *name, const char *v) {
    fb_name(f, TURNOUT_FACET_STRING, name);
    f->buf[f->len++] = (uint8_t)strlen(v);
    memcpy(f->buf + f->len, v, strlen(v));
    f->len += strlen(v);
}
static void fb_bool(Facets *f, const char *name, int v) {
    fb_name(f, TURNOUT_FACET_BOOL, name);
    f->buf[f->len++] = (uint8_t)(v != 0);
}
static void fb_float(Facets *f, const char *name, double v) {
    uint64_t bits;
    memcpy(&bits, &v, 8);
    fb_name(f, TURNOUT_FACET_FLOAT64, name);
    for (int i = 0; i < 8; i++) f->buf[f->len++] = (uint8_t)(bits >> (8 * i));
}

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n);
    if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

static const uint8_t *config;
static size_t config_len;

/* ---- sections ---- */

static void test_versions_and_frees(void) {
    TurnoutStr v = turnout_version();
    CHECK(v.len > 0 && v.ptr != NULL && memchr(v.ptr, '.', v.len) != NULL);
    CHECK(turnout_spec_version() == 1);
    /* Every free accepts NULL / empty. */
    TurnoutBytes empty = {NULL, 0};
    TurnoutBatch no_batch = {0, 0, {NULL, 0}};
    turnout_bytes_free(empty);
    turnout_batch_free(no_batch);
    turnout_error_free(NULL);
    turnout_client_free(NULL);
    turnout_context_free(NULL);
    turnout_variable_free(NULL);
    CHECK(turnout_error_status(NULL) == TURNOUT_STATUS_NULL_ARGUMENT);
    CHECK(turnout_error_message(NULL).len == 0);
    /* A panic inside the library is a status, not a crash. */
    fprintf(stderr, "(two panic messages from turnout_selftest_panic are expected below)\n");
    EXPECT_ERROR(turnout_selftest_panic(ERR), TURNOUT_STATUS_PANIC, "turnout_selftest_panic was called");
    CHECK(turnout_selftest_panic(NULL) == TURNOUT_STATUS_PANIC);
}

static void test_client_errors(void) {
    TurnoutClient *c = (TurnoutClient *)0x1; /* cleared on entry */
    TurnoutBytes report = {(uint8_t *)0x1, 1};
    EXPECT_ERROR(turnout_client_new(S("{not json"), NULL, 0, &c, &report, ERR), TURNOUT_STATUS_CONFIG,
                 "not valid JSON");
    CHECK(c == NULL && report.ptr == NULL && report.len == 0);
    EXPECT_ERROR(turnout_client_new(S("{\"variable\": \"x\", \"rollouts\": [{\"value\": 1, \"constraints\": "
                                      "[{\"target\": \"city\", \"op\": \"~~\", \"value\": \"6\"}]}]}"),
                                    NULL, 0, &c, NULL, ERR),
                 TURNOUT_STATUS_CONFIG, "op");
    EXPECT_ERROR(turnout_client_new(config, config_len, S("{\"servce\": \"x\"}"), &c, NULL, ERR),
                 TURNOUT_STATUS_OPTIONS, "servce");
    EXPECT_ERROR(turnout_client_new(config, config_len, S("{\"maxQueue\": 0}"), &c, NULL, ERR),
                 TURNOUT_STATUS_OPTIONS, "maxQueue");
    EXPECT_ERROR(turnout_client_new(config, config_len, S("{\"service\": \"\xff\"}"), &c, NULL, ERR),
                 TURNOUT_STATUS_INVALID_UTF8, "options");
    EXPECT_ERROR(turnout_client_new(NULL, 5, NULL, 0, &c, NULL, ERR), TURNOUT_STATUS_NULL_ARGUMENT, "config");
    EXPECT_ERROR(turnout_client_new(config, config_len, NULL, 0, NULL, NULL, ERR), TURNOUT_STATUS_NULL_ARGUMENT,
                 "out_client");
    CHECK(c == NULL);
    /* Without an error out-parameter the status alone comes back. */
    CHECK(turnout_client_new(S("[]"), NULL, 0, &c, NULL, NULL) == TURNOUT_STATUS_CONFIG && c == NULL);

    /* NULL client handles. */
    TurnoutBytes out;
    EXPECT_ERROR(turnout_client_update_config(NULL, config, config_len, NULL, ERR), TURNOUT_STATUS_NULL_ARGUMENT,
                 "client");
    EXPECT_ERROR(turnout_client_validate(NULL, config, config_len, NULL, ERR), TURNOUT_STATUS_NULL_ARGUMENT,
                 "client");
    EXPECT_ERROR(turnout_client_variable_names(NULL, &out, ERR), TURNOUT_STATUS_NULL_ARGUMENT, "client");
    EXPECT_ERROR(turnout_client_get_decision(NULL, S("delay"), NULL, 0, &out, ERR), TURNOUT_STATUS_NULL_ARGUMENT,
                 "client");
    EXPECT_ERROR(turnout_client_track(NULL, S("m"), 1.0, NULL, 0, ERR), TURNOUT_STATUS_NULL_ARGUMENT, "client");
    EXPECT_ERROR(turnout_client_set_time_ms(NULL, 1, ERR), TURNOUT_STATUS_NULL_ARGUMENT, "client");
    TurnoutBatch b;
    EXPECT_ERROR(turnout_client_take_batch(NULL, 10, &b, ERR), TURNOUT_STATUS_NULL_ARGUMENT, "client");
    TurnoutTrackingStats st;
    EXPECT_ERROR(turnout_client_tracking_stats(NULL, &st, ERR), TURNOUT_STATUS_NULL_ARGUMENT, "client");
    TurnoutVariable *v;
    TurnoutContext *x;
    EXPECT_ERROR(turnout_client_variable(NULL, S("delay"), &v, ERR), TURNOUT_STATUS_NULL_ARGUMENT, "client");
    EXPECT_ERROR(turnout_client_context(NULL, NULL, 0, &x, ERR), TURNOUT_STATUS_NULL_ARGUMENT, "client");
    CHECK(turnout_client_get_int64(NULL, S("delay"), NULL, 0, -3) == -3);
    CHECK(turnout_client_get_float64(NULL, S("surge"), NULL, 0, -3.5) == -3.5);
    CHECK(turnout_client_get_bool(NULL, S("enabled"), NULL, 0, true) == true);
    CHECK(!turnout_client_ack(NULL, 1) && !turnout_client_nack(NULL, 1));
    int64_t ver = 0;
    CHECK(!turnout_client_config_version(NULL, &ver));
}

static void test_one_shot(TurnoutClient *c) {
    Facets f;
    fb_start(&f);
    fb_int(&f, "city", 6);
    fb_int(&f, "pax", 9007199254740993LL);
    fb_str(&f, "country", "SG");
    fb_bool(&f, "vip", 1);
    fb_float(&f, "score", 0.25);

    /* Typed, JSON facets and binary facets agree. */
    CHECK(turnout_client_get_int64(c, S("delay"), S("{\"city\": 6}"), 0) == 60);
    CHECK(turnout_client_get_int64(c, S("delay"), f.buf, f.len, 0) == 60);
    CHECK(turnout_client_get_int64(c, S("delay"), NULL, 0, 0) == 30);
    CHECK(turnout_client_get_int64(c, S("expVar"), f.buf, f.len, 0) == 2);
    CHECK(turnout_client_get_int64(c, S("expVar"), S("{\"pax\": {\"$int64\": \"9007199254740993\"}}"), 0) == 2);
    CHECK(turnout_client_get_int64(c, S("color"), f.buf, f.len, -1) == -1); /* a string: the default */
    CHECK(turnout_client_get_int64(c, S("nope"), NULL, 0, -9) == -9);
    CHECK(turnout_client_get_float64(c, S("surge"), NULL, 0, 0.0) == 1.5);
    CHECK(turnout_client_get_float64(c, S("delay"), NULL, 0, 0.0) == 30.0);
    CHECK(turnout_client_get_bool(c, S("enabled"), f.buf, f.len, false) == true);
    CHECK(turnout_client_get_bool(c, S("enabled"), S("{\"vip\": true}"), false) == true);
    CHECK(turnout_client_get_bool(c, S("enabled"), NULL, 0, true) == false);
    /* Bad arguments give the default, never a crash. */
    CHECK(turnout_client_get_int64(c, S("delay"), S("{\"city\": [6]}"), -1) == -1);
    CHECK(turnout_client_get_int64(c, S("de\xfflay"), NULL, 0, -2) == -2);
    CHECK(turnout_client_get_int64(c, NULL, 3, NULL, 0, -4) == -4);
    uint8_t truncated[] = {TURNOUT_FACETS_BINARY, TURNOUT_FACET_INT64, 4, 'c', 'i', 't', 'y', 6, 0};
    CHECK(turnout_client_get_int64(c, S("delay"), truncated, sizeof truncated, -5) == -5);

    TurnoutBytes out = {(uint8_t *)0x1, 3};
    CHECK(turnout_client_get_string(c, S("color"), f.buf, f.len, S("none"), &out, NULL) == TURNOUT_STATUS_OK);
    CHECK(bytes_eq(out, "green"));
    turnout_bytes_free(out);
    CHECK(turnout_client_get_string(c, S("delay"), NULL, 0, S("none"), &out, NULL) == TURNOUT_STATUS_OK);
    CHECK(bytes_eq(out, "none"));
    turnout_bytes_free(out);
    CHECK(turnout_client_get_string(c, S("nope"), NULL, 0, NULL, 0, &out, NULL) == TURNOUT_STATUS_OK);
    CHECK(out.ptr == NULL && out.len == 0); /* empty default: nothing to free */
    EXPECT_ERROR(turnout_client_get_string(c, S("color"), NULL, 0, S("\xff"), &out, ERR),
                 TURNOUT_STATUS_INVALID_UTF8, "default_value");
    EXPECT_ERROR(turnout_client_get_string(c, S("color"), NULL, 0, S("x"), NULL, ERR), TURNOUT_STATUS_NULL_ARGUMENT,
                 "out");

    CHECK(turnout_client_get_json(c, S("limits"), NULL, 0, &out, NULL) == TURNOUT_STATUS_OK);
    CHECK(bytes_eq(out, "{\"max\":3}"));
    turnout_bytes_free(out);
    CHECK(turnout_client_get_json(c, S("nope"), NULL, 0, &out, NULL) == TURNOUT_STATUS_OK);
    CHECK(out.ptr == NULL && out.len == 0); /* fallback: empty */
    EXPECT_ERROR(turnout_client_get_json(c, S("limits"), S("{\"a\": {}}"), &out, ERR), TURNOUT_STATUS_FACETS,
                 "`a`");

    CHECK(turnout_client_get_decision(c, S("delay"), S("{\"city\": 6}"), &out, NULL) == TURNOUT_STATUS_OK);
    CHECK(bytes_has(out, "\"value\":60") && bytes_has(out, "\"source\":\"rollout\"") &&
          bytes_has(out, "\"rule\":0") && bytes_has(out, "\"label\":\"singapore\"") &&
          bytes_has(out, "\"reason\":\"TARGETING_MATCH\""));
    turnout_bytes_free(out);
    CHECK(turnout_client_get_decision(c, S("nope"), NULL, 0, &out, NULL) == TURNOUT_STATUS_OK);
    CHECK(bytes_has(out, "\"source\":\"fallback\"") && bytes_has(out, "\"errorCode\":\"FLAG_NOT_FOUND\""));
    turnout_bytes_free(out);
    EXPECT_ERROR(turnout_client_get_decision(c, S("delay"), S("[1]"), &out, ERR), TURNOUT_STATUS_FACETS, "object");
    EXPECT_ERROR(turnout_client_get_decision(c, S("delay"), S("{\"x\": \xff}"), &out, ERR),
                 TURNOUT_STATUS_INVALID_UTF8, "facets");
    EXPECT_ERROR(turnout_client_get_decision(c, S("delay"), truncated, sizeof truncated, &out, ERR),
                 TURNOUT_STATUS_FACETS, "truncated");
    EXPECT_ERROR(turnout_client_get_decision(c, S("delay"), NULL, 0, NULL, ERR), TURNOUT_STATUS_NULL_ARGUMENT,
                 "out_json");

    CHECK(turnout_client_get_variables(c, S("dom"), f.buf, f.len, &out, NULL) == TURNOUT_STATUS_OK);
    CHECK(bytes_has(out, "\"variable\":\"expVar\"") && bytes_has(out, "\"experiment\":\"exp.one\"") &&
          out.ptr[0] == '[');
    turnout_bytes_free(out);
    CHECK(turnout_client_get_variables(c, S("nothing"), NULL, 0, &out, NULL) == TURNOUT_STATUS_OK);
    CHECK(bytes_eq(out, "[]"));
    turnout_bytes_free(out);
    EXPECT_ERROR(turnout_client_get_variables(c, S("dom"), S("7"), &out, ERR), TURNOUT_STATUS_FACETS, "object");

    CHECK(turnout_client_explain(c, S("delay"), S("{\"city\": 6}"), &out, NULL) == TURNOUT_STATUS_OK);
    CHECK(bytes_has(out, "\"steps\":[") && bytes_has(out, "\"decision\":{"));
    turnout_bytes_free(out);
    EXPECT_ERROR(turnout_client_explain(c, S("\xc3"), NULL, 0, &out, ERR), TURNOUT_STATUS_INVALID_UTF8, "name");

    CHECK(turnout_client_track(c, S("fare"), 12.5, f.buf, f.len, NULL) == TURNOUT_STATUS_OK);
    EXPECT_ERROR(turnout_client_track(c, S("fare"), 1.0, S("{\"pax\": null, \"k\": [1]}"), ERR),
                 TURNOUT_STATUS_FACETS, "`k`");
}

static void test_config(TurnoutClient *c) {
    int64_t ver = 0;
    CHECK(turnout_client_config_version(c, &ver) && ver == 7);
    CHECK(!turnout_client_config_version(c, NULL));
    TurnoutBytes names;
    CHECK(turnout_client_variable_names(c, &names, NULL) == TURNOUT_STATUS_OK);
    CHECK(bytes_eq(names, "[\"color\",\"delay\",\"enabled\",\"expVar\",\"limits\",\"surge\"]"));
    turnout_bytes_free(names);
    EXPECT_ERROR(turnout_client_variable_names(c, NULL, ERR), TURNOUT_STATUS_NULL_ARGUMENT, "out_json");

    TurnoutBytes report;
    const char *v2 = "{\"schema\": 1, \"version\": 8, \"rollouts\": [{\"variable\": \"delay\", \"default\": 45}]}";
    CHECK(turnout_client_validate(c, (const uint8_t *)v2, strlen(v2), &report, NULL) == TURNOUT_STATUS_OK);
    CHECK(bytes_has(report, "\"changed\":[\"delay\"]") && bytes_has(report, "\"version\":8"));
    turnout_bytes_free(report);
    CHECK(turnout_client_get_int64(c, S("delay"), NULL, 0, 0) == 30); /* validate installs nothing */
    EXPECT_ERROR(turnout_client_validate(c, S("{}"), &report, ERR), TURNOUT_STATUS_CONFIG, "");

    TurnoutVariable *delay = NULL;
    TurnoutContext *ctx = NULL;
    CHECK(turnout_client_variable(c, S("delay"), &delay, NULL) == TURNOUT_STATUS_OK);
    CHECK(turnout_client_context(c, NULL, 0, &ctx, NULL) == TURNOUT_STATUS_OK);
    CHECK(turnout_context_int64(ctx, delay, 0) == 30);
    CHECK(turnout_client_update_config(c, (const uint8_t *)v2, strlen(v2), &report, NULL) == TURNOUT_STATUS_OK);
    CHECK(bytes_has(report, "\"removed\":[\"color\"") && bytes_has(report, "\"changed\":[\"delay\"]"));
    turnout_bytes_free(report);
    CHECK(turnout_context_int64(ctx, delay, 0) == 45); /* the handle re-resolves after an update */
    CHECK(turnout_client_config_version(c, &ver) && ver == 8);
    /* A rejected update keeps the previous config. */
    EXPECT_ERROR(turnout_client_update_config(c, S("{\"schema\": 1, \"rollouts\": 3}"), &report, ERR),
                 TURNOUT_STATUS_CONFIG, "rollouts");
    CHECK(report.ptr == NULL);
    CHECK(turnout_context_int64(ctx, delay, 0) == 45);
    EXPECT_ERROR(turnout_client_update_config(c, NULL, 1, NULL, ERR), TURNOUT_STATUS_NULL_ARGUMENT, "config");
    CHECK(turnout_client_update_config(c, config, config_len, NULL, NULL) == TURNOUT_STATUS_OK);
    CHECK(turnout_context_int64(ctx, delay, 0) == 30);
    turnout_context_free(ctx);
    turnout_variable_free(delay);
}

static void test_prepared(TurnoutClient *c) {
    TurnoutVariable *delay = NULL, *color = NULL, *enabled = NULL, *surge = NULL, *limits = NULL, *nope = NULL;
    CHECK(turnout_client_variable(c, S("delay"), &delay, NULL) == TURNOUT_STATUS_OK && delay != NULL);
    CHECK(turnout_client_variable(c, S("color"), &color, NULL) == TURNOUT_STATUS_OK);
    CHECK(turnout_client_variable(c, S("enabled"), &enabled, NULL) == TURNOUT_STATUS_OK);
    CHECK(turnout_client_variable(c, S("surge"), &surge, NULL) == TURNOUT_STATUS_OK);
    CHECK(turnout_client_variable(c, S("limits"), &limits, NULL) == TURNOUT_STATUS_OK);
    CHECK(turnout_client_variable(c, S("nope"), &nope, NULL) == TURNOUT_STATUS_OK);
    TurnoutVariable *bad = (TurnoutVariable *)0x1;
    EXPECT_ERROR(turnout_client_variable(c, S("\xfe"), &bad, ERR), TURNOUT_STATUS_INVALID_UTF8, "name");
    CHECK(bad == NULL);
    EXPECT_ERROR(turnout_client_variable(c, S("x"), NULL, ERR), TURNOUT_STATUS_NULL_ARGUMENT, "out_variable");

    Facets f;
    fb_start(&f);
    fb_int(&f, "city", 6);
    fb_str(&f, "country", "SG");
    fb_bool(&f, "vip", 1);
    TurnoutContext *sg = NULL, *plain = NULL;
    CHECK(turnout_client_context(c, f.buf, f.len, &sg, NULL) == TURNOUT_STATUS_OK && sg != NULL);
    CHECK(turnout_client_context(c, S("{\"city\": 3}"), &plain, NULL) == TURNOUT_STATUS_OK);
    TurnoutContext *badctx = (TurnoutContext *)0x1;
    EXPECT_ERROR(turnout_client_context(c, S("{\"city\": {}}"), &badctx, ERR), TURNOUT_STATUS_FACETS, "city");
    CHECK(badctx == NULL);
    uint8_t unknown_tag[] = {TURNOUT_FACETS_BINARY, 42};
    EXPECT_ERROR(turnout_client_context(c, unknown_tag, sizeof unknown_tag, &badctx, ERR), TURNOUT_STATUS_FACETS,
                 "unknown entry tag 42");
    EXPECT_ERROR(turnout_client_context(c, NULL, 0, NULL, ERR), TURNOUT_STATUS_NULL_ARGUMENT, "out_context");

    /* The hot calls. */
    for (int i = 0; i < 3; i++) {
        CHECK(turnout_context_int64(sg, delay, 0) == 60);
        CHECK(turnout_context_int64(plain, delay, 0) == 30);
    }
    CHECK(turnout_context_int64(sg, color, -1) == -1);
    CHECK(turnout_context_int64(sg, nope, -1) == -1);
    CHECK(turnout_context_float64(sg, surge, 0.0) == 1.5);
    CHECK(turnout_context_float64(sg, delay, 0.0) == 60.0);
    CHECK(turnout_context_bool(sg, enabled, false) == true);
    CHECK(turnout_context_bool(plain, enabled, true) == false);
    CHECK(turnout_context_int64(NULL, delay, -1) == -1);
    CHECK(turnout_context_int64(sg, NULL, -2) == -2);
    CHECK(turnout_context_float64(NULL, NULL, -2.5) == -2.5);
    CHECK(turnout_context_bool(NULL, enabled, true) == true);

    TurnoutBytes out;
    CHECK(turnout_context_string(sg, color, S("none"), &out, NULL) == TURNOUT_STATUS_OK && bytes_eq(out, "green"));
    turnout_bytes_free(out);
    CHECK(turnout_context_string(plain, delay, S("none"), &out, NULL) == TURNOUT_STATUS_OK && bytes_eq(out, "none"));
    turnout_bytes_free(out);
    EXPECT_ERROR(turnout_context_string(NULL, color, S("x"), &out, ERR), TURNOUT_STATUS_NULL_ARGUMENT, "context");
    EXPECT_ERROR(turnout_context_string(sg, NULL, S("x"), &out, ERR), TURNOUT_STATUS_NULL_ARGUMENT, "variable");
    EXPECT_ERROR(turnout_context_string(sg, color, S("\xff"), &out, ERR), TURNOUT_STATUS_INVALID_UTF8,
                 "default_value");
    CHECK(turnout_context_json(sg, limits, &out, NULL) == TURNOUT_STATUS_OK && bytes_eq(out, "{\"max\":3}"));
    turnout_bytes_free(out);
    CHECK(turnout_context_json(sg, nope, &out, NULL) == TURNOUT_STATUS_OK && out.ptr == NULL);
    EXPECT_ERROR(turnout_context_json(sg, NULL, &out, ERR), TURNOUT_STATUS_NULL_ARGUMENT, "variable");
    CHECK(turnout_context_decision(sg, delay, &out, NULL) == TURNOUT_STATUS_OK);
    CHECK(bytes_has(out, "\"variable\":\"delay\"") && bytes_has(out, "\"value\":60"));
    turnout_bytes_free(out);
    EXPECT_ERROR(turnout_context_decision(NULL, delay, &out, ERR), TURNOUT_STATUS_NULL_ARGUMENT, "context");
    EXPECT_ERROR(turnout_context_decision(sg, delay, NULL, ERR), TURNOUT_STATUS_NULL_ARGUMENT, "out_json");
    CHECK(turnout_context_track(sg, S("pickupSeconds"), 42.0, NULL) == TURNOUT_STATUS_OK);
    EXPECT_ERROR(turnout_context_track(sg, S("\xff"), 1.0, ERR), TURNOUT_STATUS_INVALID_UTF8, "name");
    EXPECT_ERROR(turnout_context_track(NULL, S("m"), 1.0, ERR), TURNOUT_STATUS_NULL_ARGUMENT, "context");

    turnout_context_free(sg);
    turnout_context_free(plain);
    turnout_variable_free(delay);
    turnout_variable_free(color);
    turnout_variable_free(enabled);
    turnout_variable_free(surge);
    turnout_variable_free(limits);
    turnout_variable_free(nope);
}

/* Handles outlive their client. */
static void test_free_order(void) {
    TurnoutClient *c = NULL;
    CHECK(turnout_client_new(config, config_len, NULL, 0, &c, NULL, NULL) == TURNOUT_STATUS_OK);
    TurnoutVariable *delay = NULL;
    TurnoutContext *ctx = NULL;
    CHECK(turnout_client_variable(c, S("delay"), &delay, NULL) == TURNOUT_STATUS_OK);
    CHECK(turnout_client_context(c, S("{\"city\": 6}"), &ctx, NULL) == TURNOUT_STATUS_OK);
    turnout_client_free(c);
    CHECK(turnout_context_int64(ctx, delay, 0) == 60);
    turnout_variable_free(delay);
    CHECK(turnout_context_int64(ctx, NULL, -1) == -1);
    turnout_context_free(ctx);
}

static void test_clock(TurnoutClient *fixed) {
    CHECK(turnout_client_set_time_ms(fixed, 1800000000000LL, NULL) == TURNOUT_STATUS_OK);
    TurnoutClient *system = NULL;
    CHECK(turnout_client_new(NULL, 0, NULL, 0, &system, NULL, NULL) == TURNOUT_STATUS_OK);
    EXPECT_ERROR(turnout_client_set_time_ms(system, 1, ERR), TURNOUT_STATUS_NO_FIXED_CLOCK, "fixedTimeMs");
    EXPECT_KIND(turnout_client_set_time_ms(system, 1, ERR), "NO_FIXED_CLOCK");
    /* An empty client falls back everywhere. */
    CHECK(turnout_client_get_int64(system, S("delay"), NULL, 0, -1) == -1);
    int64_t ver;
    CHECK(!turnout_client_config_version(system, &ver));
    turnout_client_free(system);
}

static void test_tracking(TurnoutClient *c) {
    TurnoutTrackingStats st;
    CHECK(turnout_client_tracking_stats(c, &st, NULL) == TURNOUT_STATUS_OK);
    CHECK(st.recorded > 0 && st.queued > 0 && st.in_flight == 0);
    EXPECT_ERROR(turnout_client_tracking_stats(c, NULL, ERR), TURNOUT_STATUS_NULL_ARGUMENT, "out_stats");

    TurnoutBatch b;
    CHECK(turnout_client_take_batch(c, 2, &b, NULL) == TURNOUT_STATUS_OK);
    CHECK(b.bytes.len > 0 && b.events == 2);
    uint64_t first = b.seq;
    /* Decode, re-encode: the same bytes. */
    TurnoutBytes json, again;
    CHECK(turnout_decode_batch_json(b.bytes.ptr, b.bytes.len, &json, NULL) == TURNOUT_STATUS_OK);
    CHECK(bytes_has(json, "\"header\":") && bytes_has(json, "\"platform\":\"c-test\"") &&
          bytes_has(json, "\"service\":\"ctest\""));
    CHECK(turnout_encode_batch_json(json.ptr, json.len, &again, NULL) == TURNOUT_STATUS_OK);
    CHECK(again.len == b.bytes.len && memcmp(again.ptr, b.bytes.ptr, again.len) == 0);
    turnout_bytes_free(again);
    EXPECT_ERROR(turnout_encode_batch_json(json.ptr, json.len, NULL, ERR), TURNOUT_STATUS_NULL_ARGUMENT, "out_bytes");
    EXPECT_ERROR(turnout_decode_batch_json(b.bytes.ptr, b.bytes.len, NULL, ERR), TURNOUT_STATUS_NULL_ARGUMENT,
                 "out_json");
    turnout_bytes_free(json);

    /* Corrupted bytes are rejected whole, with the kind of damage. */
    b.bytes.ptr[b.bytes.len - 1] ^= 1;
    EXPECT_ERROR(turnout_decode_batch_json(b.bytes.ptr, b.bytes.len, &json, ERR), TURNOUT_STATUS_BATCH_CHECKSUM,
                 "checksum");
    EXPECT_KIND(turnout_decode_batch_json(b.bytes.ptr, b.bytes.len, &json, ERR), "BATCH_CHECKSUM");
    b.bytes.ptr[b.bytes.len - 1] ^= 1;
    EXPECT_ERROR(turnout_decode_batch_json(S("XRNB...."), &json, ERR), TURNOUT_STATUS_NOT_A_BATCH, "not a turnout");
    EXPECT_KIND(turnout_decode_batch_json(S("XRNB...."), &json, ERR), "NOT_A_BATCH");
    EXPECT_KIND(turnout_decode_batch_json(NULL, 5, &json, ERR), "INVALID_ARGUMENT");
    CHECK(turnout_error_kind(NULL).len == 0);
    EXPECT_ERROR(turnout_decode_batch_json(NULL, 0, &json, ERR), TURNOUT_STATUS_NOT_A_BATCH, "");
    EXPECT_ERROR(turnout_encode_batch_json(S("{\"header\": {}}"), &again, ERR), TURNOUT_STATUS_BATCH_JSON, "header");
    EXPECT_ERROR(turnout_encode_batch_json(S("\xff"), &again, ERR), TURNOUT_STATUS_INVALID_UTF8, "json");

    CHECK(turnout_client_tracking_stats(c, &st, NULL) == TURNOUT_STATUS_OK && st.in_flight == 1);
    /* nack: the same batch comes back first. */
    CHECK(turnout_client_nack(c, first));
    CHECK(!turnout_client_nack(c, first)); /* no longer in flight */
    TurnoutBatch retry;
    CHECK(turnout_client_take_batch(c, 2, &retry, NULL) == TURNOUT_STATUS_OK);
    CHECK(retry.seq == first && retry.bytes.len == b.bytes.len &&
          memcmp(retry.bytes.ptr, b.bytes.ptr, b.bytes.len) == 0);
    CHECK(turnout_client_ack(c, first));
    CHECK(!turnout_client_ack(c, first));
    CHECK(!turnout_client_ack(c, 999999));
    turnout_batch_free(retry);
    turnout_batch_free(b);
    /* Drain, then nothing is waiting. */
    for (;;) {
        CHECK(turnout_client_take_batch(c, 1000, &b, NULL) == TURNOUT_STATUS_OK);
        if (b.bytes.len == 0) break;
        CHECK(turnout_client_ack(c, b.seq));
        turnout_batch_free(b);
    }
    CHECK(b.seq == 0 && b.events == 0 && b.bytes.ptr == NULL);
    EXPECT_ERROR(turnout_client_take_batch(c, 10, NULL, ERR), TURNOUT_STATUS_NULL_ARGUMENT, "out_batch");
    CHECK(turnout_client_tracking_stats(c, &st, NULL) == TURNOUT_STATUS_OK && st.queued == 0 && st.in_flight == 0);
}

/* Decisions on four threads while the main thread updates the config. */
typedef struct {
    TurnoutContext *ctx;
    TurnoutVariable *var;
    int bad;
} Worker;

static void *worker(void *arg) {
    Worker *w = arg;
    for (int i = 0; i < 2000; i++) {
        int64_t v = turnout_context_int64(w->ctx, w->var, -1);
        if (v != 60 && v != 45) w->bad++;
    }
    return NULL;
}

static void test_threads(TurnoutClient *c) {
    const char *v2 = "{\"schema\": 1, \"rollouts\": [{\"variable\": \"delay\", \"default\": 45}]}";
    Worker w[4];
    pthread_t t[4];
    TurnoutVariable *delay = NULL;
    CHECK(turnout_client_variable(c, S("delay"), &delay, NULL) == TURNOUT_STATUS_OK);
    for (int i = 0; i < 4; i++) {
        w[i].var = delay;
        w[i].bad = 0;
        CHECK(turnout_client_context(c, S("{\"city\": 6}"), &w[i].ctx, NULL) == TURNOUT_STATUS_OK);
        pthread_create(&t[i], NULL, worker, &w[i]);
    }
    for (int i = 0; i < 20; i++) {
        const char *cfg = (i % 2) ? (const char *)config : v2;
        size_t len = (i % 2) ? config_len : strlen(v2);
        CHECK(turnout_client_update_config(c, (const uint8_t *)cfg, len, NULL, NULL) == TURNOUT_STATUS_OK);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK(w[i].bad == 0);
        turnout_context_free(w[i].ctx);
    }
    turnout_variable_free(delay);
}

/* Limits on hostile input (docs/spec.md, section 16): TURNOUT_STATUS_LIMIT, with
 * the limit named in the message; the previous config stays in force. */
static void test_limits(void) {
    TurnoutClient *c = NULL;
    EXPECT_ERROR(turnout_client_new(config, config_len, S("{\"maxConfigBytes\": 100}"), &c, NULL, ERR),
                 TURNOUT_STATUS_LIMIT, "limit `config_bytes` exceeded");
    CHECK(c == NULL);
    CHECK(turnout_client_new(config, config_len, S("{\"maxConfigBytes\": 4096}"), &c, NULL, NULL) ==
          TURNOUT_STATUS_OK);
    if (!c) return;
    /* 5,000 bytes: over the client's maximum. */
    char *big = malloc(5001);
    if (!big) return;
    memset(big, ' ', 5000);
    const char *doc = "{\"variable\": \"delay\", \"default\": 1}";
    memcpy(big, doc, strlen(doc));
    EXPECT_ERROR(turnout_client_update_config(c, (const uint8_t *)big, 5000, NULL, ERR), TURNOUT_STATUS_LIMIT,
                 "found 5000, the maximum is 4096");
    EXPECT_ERROR(turnout_client_validate(c, (const uint8_t *)big, 5000, NULL, ERR), TURNOUT_STATUS_LIMIT,
                 "config_bytes");
    /* 100 nested arrays. */
    memset(big, '[', 100);
    memset(big + 100, ']', 100);
    EXPECT_ERROR(turnout_client_update_config(c, (const uint8_t *)big, 200, NULL, ERR), TURNOUT_STATUS_LIMIT,
                 "limit `json_depth` exceeded");
    CHECK(turnout_client_get_int64(c, S("delay"), S("{\"city\": 6}"), 0) == 60); /* still in force */

    /* A facet value of 10,000 bytes, as JSON: LIMIT, or the default for the typed getters. */
    char *facets = malloc(10100);
    if (!facets) {
        free(big);
        return;
    }
    int n = snprintf(facets, 100, "{\"city\": 6, \"note\": \"");
    memset(facets + n, 'x', 10000);
    memcpy(facets + n + 10000, "\"}", 2);
    size_t facets_len = (size_t)n + 10002;
    TurnoutBytes out;
    TurnoutContext *x = NULL;
    CHECK(turnout_client_get_int64(c, S("delay"), (const uint8_t *)facets, facets_len, -1) == -1);
    EXPECT_ERROR(turnout_client_get_decision(c, S("delay"), (const uint8_t *)facets, facets_len, &out, ERR),
                 TURNOUT_STATUS_LIMIT, "limit `facet_value_bytes` exceeded");
    EXPECT_ERROR(turnout_client_context(c, (const uint8_t *)facets, facets_len, &x, ERR), TURNOUT_STATUS_LIMIT,
                 "facet_value_bytes");
    CHECK(x == NULL);
    free(facets);
    free(big);
    turnout_client_free(c);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s CONFIG.json\n", argv[0]);
        return 2;
    }
    uint8_t *cfg = read_file(argv[1], &config_len);
    if (!cfg) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }
    config = cfg;

    test_versions_and_frees();
    test_client_errors();
    test_limits();

    TurnoutClient *c = NULL;
    TurnoutBytes report;
    const char *opts = "{\"service\": \"ctest\", \"platform\": \"c-test\", \"fixedTimeMs\": 1700000000000}";
    CHECK(turnout_client_new(config, config_len, (const uint8_t *)opts, strlen(opts), &c, &report, NULL) ==
          TURNOUT_STATUS_OK);
    CHECK(c != NULL && bytes_has(report, "\"added\":[\"color\",\"delay\""));
    turnout_bytes_free(report);
    if (!c) return 1;

    test_one_shot(c);
    test_config(c);
    test_prepared(c);
    test_free_order();
    test_clock(c);
    test_tracking(c);
    test_threads(c);
    turnout_client_free(c);
    free(cfg);

    printf("capi: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
