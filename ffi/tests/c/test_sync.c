/*
 * The C ABI test of the host protocol (turnout_sync_*, docs/sync.md): a host
 * loop driven by hand (no network: the test plays the server), the ownership
 * of actions, notices and state, the error paths, and concurrent calls on one
 * sync. Built and run by `cargo xtask go` under valgrind like test_capi.c, so
 * a leak or an invalid access fails CI.
 *
 * usage: test_sync
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "turnout.h"

/* The notices since the last call contain `needle` (empty needle: there are none). */
static int notices_have(const TurnoutSync *s, const char *needle) {
    TurnoutBytes out;
    if (turnout_sync_take_notices(s, &out, NULL) != TURNOUT_STATUS_OK) return 0;
    int ok = *needle ? bytes_has(out, needle) : bytes_eq(out, "[]");
    if (!ok) fprintf(stderr, "notices: %.*s (want %s)\n", (int)out.len, (const char *)out.ptr, needle);
    turnout_bytes_free(out);
    return ok;
}

static int state_has(const TurnoutSync *s, const char *needle) {
    TurnoutBytes out;
    if (turnout_sync_state(s, &out, NULL) != TURNOUT_STATUS_OK) return 0;
    int ok = bytes_has(out, needle);
    if (!ok) fprintf(stderr, "state: %.*s (want %s)\n", (int)out.len, (const char *)out.ptr, needle);
    turnout_bytes_free(out);
    return ok;
}

static TurnoutSyncAction next(const TurnoutSync *s, uint64_t now) {
    TurnoutSyncAction a;
    CHECK(turnout_sync_next(s, now, &a, NULL) == TURNOUT_STATUS_OK);
    return a;
}

static const char CONFIG_URL[] = "http://127.0.0.1:1/config";
static const char EVENTS_URL[] = "http://127.0.0.1:1/events";
static const char OPTIONS[] =
    "{\"configUrl\": \"http://127.0.0.1:1/config\", \"eventsUrl\": \"http://127.0.0.1:1/events\", "
    "\"pollIntervalMs\": 1000, \"flushIntervalMs\": 500, \"timeoutMs\": 100, \"jitter\": 0}";
static const char CONFIG[] = "{\"rollouts\": [{\"variable\": \"delay\", \"default\": 30}]}";

static TurnoutClient *new_client(void) {
    TurnoutClient *c = NULL;
    CHECK(turnout_client_new(NULL, 0, S("{\"fixedTimeMs\": 1700000000000, \"clientId\": \"c-sync\"}"), &c, NULL,
                             NULL) == TURNOUT_STATUS_OK);
    return c;
}

static void test_loop(void) {
    TurnoutClient *c = new_client();
    TurnoutSync *s = NULL;
    CHECK(turnout_sync_new(c, S(OPTIONS), &s, NULL) == TURNOUT_STATUS_OK && s != NULL);

    /* The first fetch is due at once, without an ETag. */
    TurnoutSyncAction a = next(s, 0);
    CHECK(a.kind == TURNOUT_SYNC_ACTION_KIND_FETCH && bytes_eq(a.url, CONFIG_URL) && a.etag.len == 0);
    CHECK(a.timeout_ms == 100 && a.max_bytes == 16u << 20 && a.bytes.len == 0);
    turnout_sync_action_free(a);
    CHECK(turnout_sync_on_fetch(s, 10, 200, S("\"v1\""), NULL, 0, S(CONFIG), NULL, 0, NULL, 0, NULL) ==
          TURNOUT_STATUS_OK);
    CHECK(notices_have(s, "{\"notice\":\"ready\"}]"));
    CHECK(state_has(s, "\"ready\":true,\"stale\":false,\"etag\":\"\\\"v1\\\"\""));
    CHECK(turnout_client_get_int64(c, S("delay"), NULL, 0, -1) == 30);

    /* Nothing due: wait until the first upload round (500 ms after the start). */
    a = next(s, 10);
    CHECK(a.kind == TURNOUT_SYNC_ACTION_KIND_WAIT && a.wait_ms == 490 && a.url.len == 0);
    turnout_sync_action_free(a);

    /* A tracked event (and the decision above), a flush asked for: an upload of both. */
    CHECK(turnout_client_track(c, S("pickup"), 3.0, NULL, 0, NULL) == TURNOUT_STATUS_OK);
    CHECK(turnout_sync_flush_now(s, NULL) == TURNOUT_STATUS_OK);
    a = next(s, 20);
    CHECK(a.kind == TURNOUT_SYNC_ACTION_KIND_UPLOAD && bytes_eq(a.url, EVENTS_URL) && a.events == 2);
    CHECK(a.bytes.len > 4 && memcmp(a.bytes.ptr, "TRNB", 4) == 0);
    uint64_t seq = a.seq;
    turnout_sync_action_free(a);
    /* Another seq is ignored; a failure is reported by its kind code; the batch comes back. */
    CHECK(turnout_sync_on_upload(s, 21, seq + 1, 200, NULL, 0, NULL, 0, NULL, 0, NULL) == TURNOUT_STATUS_OK);
    CHECK(turnout_sync_on_upload(s, 22, seq, 0, NULL, 0, S("NETWORK"), S("refused"), NULL) == TURNOUT_STATUS_OK);
    CHECK(notices_have(s, "\"channel\":\"events\",\"kind\":\"NETWORK\",\"status\":null,\"message\":\"refused\""));
    CHECK(state_has(s, "\"uploadFailures\":1"));

    /* A poll asked for: the fetch sends the ETag; a 503 with Retry-After backs off. */
    CHECK(turnout_sync_poll_now(s, NULL) == TURNOUT_STATUS_OK);
    a = next(s, 30);
    CHECK(a.kind == TURNOUT_SYNC_ACTION_KIND_FETCH && bytes_eq(a.etag, "\"v1\""));
    turnout_sync_action_free(a);
    CHECK(turnout_sync_on_fetch(s, 40, 503, NULL, 0, S("1"), NULL, 0, NULL, 0, NULL, 0, NULL) == TURNOUT_STATUS_OK);
    CHECK(notices_have(s, "\"kind\":\"HTTP\",\"status\":503"));
    CHECK(state_has(s, "\"configFailures\":1"));

    /* Stop with flush: the nacked batch once more (same seq), then STOP. */
    CHECK(turnout_sync_stop(s, true, NULL) == TURNOUT_STATUS_OK);
    a = next(s, 50);
    CHECK(a.kind == TURNOUT_SYNC_ACTION_KIND_UPLOAD && a.seq == seq);
    turnout_sync_action_free(a);
    CHECK(turnout_sync_on_upload(s, 60, seq, 202, NULL, 0, NULL, 0, NULL, 0, NULL) == TURNOUT_STATUS_OK);
    CHECK(notices_have(s, "{\"notice\":\"recovered\",\"channel\":\"events\",\"failures\":1}"));
    a = next(s, 61);
    CHECK(a.kind == TURNOUT_SYNC_ACTION_KIND_STOP);
    turnout_sync_action_free(a);
    CHECK(state_has(s, "\"batchesAcked\":1,\"batchesDropped\":0,\"stopped\":true"));

    /* The sync outlives its client (it shares the engine). */
    turnout_client_free(c);
    CHECK(state_has(s, "\"stopped\":true"));
    turnout_sync_free(s);
}

static void test_errors(void) {
    TurnoutClient *c = new_client();
    TurnoutSync *s = (TurnoutSync *)1;
    TurnoutError *e = NULL;

    /* Bad options: OPTIONS, and *out_sync cleared. */
    const char *bad[] = {"{}", "{\"eventsUrl\": \"u\", \"jitter\": 1}", "{\"eventsUrl\": \"u\", \"timeoutMs\": 0}",
                         "{\"configURL\": \"u\"}", "[1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(turnout_sync_new(c, (const uint8_t *)bad[i], strlen(bad[i]), &s, &e) == TURNOUT_STATUS_OPTIONS);
        CHECK(s == NULL && e != NULL && turnout_error_status(e) == TURNOUT_STATUS_OPTIONS);
        turnout_error_free(e);
    }
    CHECK(turnout_sync_new(NULL, S(OPTIONS), &s, NULL) == TURNOUT_STATUS_NULL_ARGUMENT);
    CHECK(turnout_sync_new(c, S(OPTIONS), NULL, NULL) == TURNOUT_STATUS_NULL_ARGUMENT);
    CHECK(turnout_sync_new(c, NULL, 3, &s, NULL) == TURNOUT_STATUS_NULL_ARGUMENT);
    CHECK(turnout_sync_new(c, S("{\"eventsUrl\": \"\xff\"}"), &s, NULL) == TURNOUT_STATUS_INVALID_UTF8);

    CHECK(turnout_sync_new(c, S(OPTIONS), &s, NULL) == TURNOUT_STATUS_OK);
    TurnoutSyncAction a;
    TurnoutBytes out;
    /* NULL handles and out-parameters; a NULL out_action does not consume the action. */
    CHECK(turnout_sync_next(NULL, 0, &a, NULL) == TURNOUT_STATUS_NULL_ARGUMENT && a.kind == TURNOUT_SYNC_ACTION_KIND_STOP);
    CHECK(turnout_sync_next(s, 0, NULL, NULL) == TURNOUT_STATUS_NULL_ARGUMENT);
    CHECK(turnout_sync_take_notices(NULL, &out, NULL) == TURNOUT_STATUS_NULL_ARGUMENT && out.ptr == NULL);
    CHECK(turnout_sync_take_notices(s, NULL, NULL) == TURNOUT_STATUS_NULL_ARGUMENT);
    CHECK(turnout_sync_state(NULL, &out, NULL) == TURNOUT_STATUS_NULL_ARGUMENT);
    CHECK(turnout_sync_state(s, NULL, NULL) == TURNOUT_STATUS_NULL_ARGUMENT);
    CHECK(turnout_sync_poll_now(NULL, NULL) == TURNOUT_STATUS_NULL_ARGUMENT);
    CHECK(turnout_sync_flush_now(NULL, NULL) == TURNOUT_STATUS_NULL_ARGUMENT);
    CHECK(turnout_sync_stop(NULL, true, NULL) == TURNOUT_STATUS_NULL_ARGUMENT);
    CHECK(turnout_sync_on_upload(NULL, 0, 1, 200, NULL, 0, NULL, 0, NULL, 0, NULL) == TURNOUT_STATUS_NULL_ARGUMENT);

    a = next(s, 0);
    CHECK(a.kind == TURNOUT_SYNC_ACTION_KIND_FETCH);
    turnout_sync_action_free(a);
    /* Invalid arguments of a report leave the fetch outstanding. */
    CHECK(turnout_sync_on_fetch(s, 1, 200, NULL, 0, NULL, 0, NULL, 5, NULL, 0, NULL, 0, &e) ==
          TURNOUT_STATUS_NULL_ARGUMENT);
    turnout_error_free(e);
    CHECK(turnout_sync_on_fetch(s, 1, 200, S("\xfe"), NULL, 0, S(CONFIG), NULL, 0, NULL, 0, NULL) ==
          TURNOUT_STATUS_INVALID_UTF8);
    CHECK(state_has(s, "\"ready\":false"));
    /* The request is not reported by its deadline (100 ms): it timed out. */
    a = next(s, 50);
    CHECK(a.kind == TURNOUT_SYNC_ACTION_KIND_WAIT && a.wait_ms == 50);
    turnout_sync_action_free(a);
    a = next(s, 100);
    CHECK(a.kind == TURNOUT_SYNC_ACTION_KIND_WAIT);
    turnout_sync_action_free(a);
    CHECK(notices_have(s, "\"kind\":\"TIMEOUT\""));
    /* An unknown failure code counts as NETWORK; a rejected config keeps nothing. */
    CHECK(turnout_sync_poll_now(s, NULL) == TURNOUT_STATUS_OK);
    turnout_sync_action_free(next(s, 200));
    CHECK(turnout_sync_on_fetch(s, 201, 0, NULL, 0, NULL, 0, NULL, 0, S("GREMLINS"), S("m"), NULL) ==
          TURNOUT_STATUS_OK);
    CHECK(notices_have(s, "\"kind\":\"NETWORK\""));
    CHECK(turnout_sync_poll_now(s, NULL) == TURNOUT_STATUS_OK);
    turnout_sync_action_free(next(s, 300));
    CHECK(turnout_sync_on_fetch(s, 301, 200, S("\"bad\""), NULL, 0, S("{\"rollouts\": 7}"), NULL, 0, NULL, 0,
                                NULL) == TURNOUT_STATUS_OK);
    CHECK(notices_have(s, "\"kind\":\"INVALID_CONFIG\",\"status\":200"));
    CHECK(state_has(s, "\"etag\":null,\"rejectedEtag\":\"\\\"bad\\\"\""));

    /* Stop without flush. */
    CHECK(turnout_sync_stop(s, false, NULL) == TURNOUT_STATUS_OK);
    a = next(s, 400);
    CHECK(a.kind == TURNOUT_SYNC_ACTION_KIND_STOP);
    turnout_sync_action_free(a);

    /* Frees accept NULL and empty. */
    turnout_sync_free(NULL);
    TurnoutSyncAction empty;
    CHECK(turnout_sync_next(NULL, 0, &empty, NULL) == TURNOUT_STATUS_NULL_ARGUMENT);
    turnout_sync_action_free(empty);
    turnout_sync_free(s);
    turnout_client_free(c);
}

/* ---- concurrent calls on one sync (a mutex inside) ---- */

typedef struct {
    TurnoutSync *s;
    int ok;
} Worker;

static void *worker(void *arg) {
    Worker *w = arg;
    for (int i = 0; i < 200; i++) {
        TurnoutBytes out;
        w->ok &= turnout_sync_state(w->s, &out, NULL) == TURNOUT_STATUS_OK;
        turnout_bytes_free(out);
        w->ok &= turnout_sync_take_notices(w->s, &out, NULL) == TURNOUT_STATUS_OK;
        turnout_bytes_free(out);
        w->ok &= turnout_sync_poll_now(w->s, NULL) == TURNOUT_STATUS_OK;
    }
    return NULL;
}

static void test_threads(void) {
    TurnoutClient *c = new_client();
    TurnoutSync *s = NULL;
    CHECK(turnout_sync_new(c, S(OPTIONS), &s, NULL) == TURNOUT_STATUS_OK);
    Worker ws[3];
    pthread_t ts[3];
    for (int i = 0; i < 3; i++) {
        ws[i] = (Worker){s, 1};
        pthread_create(&ts[i], NULL, worker, &ws[i]);
    }
    /* The host loop answers every fetch with the config. */
    for (uint64_t now = 0; now < 200; now++) {
        TurnoutSyncAction a = next(s, now * 1000);
        if (a.kind == TURNOUT_SYNC_ACTION_KIND_FETCH)
            CHECK(turnout_sync_on_fetch(s, now * 1000, 200, S("\"e\""), NULL, 0, S(CONFIG), NULL, 0, NULL, 0,
                                        NULL) == TURNOUT_STATUS_OK);
        turnout_sync_action_free(a);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(ts[i], NULL);
        CHECK(ws[i].ok);
    }
    CHECK(state_has(s, "\"ready\":true"));
    turnout_sync_free(s);
    turnout_client_free(c);
}

int main(void) {
    test_loop();
    test_errors();
    test_threads();
    printf("capi sync: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
