/* The Swift archive's consumer test without a Swift toolchain: a C program over the package's
 * C module (turnout_ffiFFI.h, UniFFI's header, and turnout_fast.h), linked through the archive's
 * pkg-config file, calling the symbols the generated Swift calls:
 *
 *   smoke VARIABLE EXPECTED_VERSION   (in a directory with config.json and contexts.jsonl)
 *
 * It checks the library's version, creates a client from config.json (UniFFI's constructor,
 * arguments lowered as the generated Swift lowers them), takes its fast handle (Client.fastHandle,
 * a TurnoutClient * of the C ABI that turnout_fast.h includes), and prints the int64 value of
 * VARIABLE for each line of contexts.jsonl (a JSON object of facets) taken with
 * turnout_fast_get_variable_json, read from the serialised Decision record. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "turnout_ffiFFI.h"
#include "turnout_fast.h"

static void check(RustCallStatus *st, const char *what) {
    if (st->code != 0) {
        fprintf(stderr, "%s failed (status %d): %.*s\n", what, st->code, (int)st->errorBuf.len,
                (const char *)st->errorBuf.data);
        exit(1);
    }
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) { perror(path); exit(1); }
    buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: smoke VARIABLE EXPECTED_VERSION\n"); return 2; }
    const char *variable = argv[1];
    RustCallStatus st = {0};

    RustBuffer v = uniffi_turnout_ffi_fn_func_library_version(&st);
    check(&st, "library_version");
    if (v.len != strlen(argv[2]) || memcmp(v.data, argv[2], v.len) != 0) {
        fprintf(stderr, "library version %.*s, want %s\n", (int)v.len, (const char *)v.data, argv[2]);
        return 1;
    }
    ffi_turnout_ffi_rustbuffer_free(v, &st);

    /* Vec<u8> is lowered with a big-endian i32 length first; a String as its UTF-8 bytes. */
    size_t config_len;
    char *config = slurp("config.json", &config_len);
    uint8_t *framed = malloc(config_len + 4);
    framed[0] = (uint8_t)(config_len >> 24); framed[1] = (uint8_t)(config_len >> 16);
    framed[2] = (uint8_t)(config_len >> 8);  framed[3] = (uint8_t)config_len;
    memcpy(framed + 4, config, config_len);
    ForeignBytes config_bytes = {(int32_t)(config_len + 4), framed};
    RustBuffer config_buf = ffi_turnout_ffi_rustbuffer_from_bytes(config_bytes, &st);
    check(&st, "rustbuffer_from_bytes");
    ForeignBytes no_options = {0, (const uint8_t *)""};
    RustBuffer options_buf = ffi_turnout_ffi_rustbuffer_from_bytes(no_options, &st);
    check(&st, "rustbuffer_from_bytes");
    uint64_t client = uniffi_turnout_ffi_fn_constructor_client_new(config_buf, options_buf, &st);
    check(&st, "Client.new");
    /* A method call consumes one reference of its object: clone first, as the generated Swift does. */
    uint64_t arg = uniffi_turnout_ffi_fn_clone_client(client, &st);
    check(&st, "clone_client");
    TurnoutClient *fast = (TurnoutClient *)(uintptr_t)uniffi_turnout_ffi_fn_method_client_fast_handle(arg, &st);
    check(&st, "Client.fastHandle");

    size_t contexts_len;
    char *contexts = slurp("contexts.jsonl", &contexts_len);
    uint8_t out[512];
    for (char *line = strtok(contexts, "\n"); line; line = strtok(NULL, "\n")) {
        int64_t n = turnout_fast_get_variable_json(fast, (const uint8_t *)variable, strlen(variable),
                                                   (const uint8_t *)line, strlen(line), out, sizeof out);
        if (n < 0 || (size_t)n > sizeof out) { fprintf(stderr, "decision failed for %s\n", line); return 1; }
        /* Decision record: variable (i32 length + UTF-8), then value_json (i8 tag, i32 length + UTF-8). */
        uint32_t name_len = be32(out);
        const uint8_t *p = out + 4 + name_len;
        if (*p != 1) { fprintf(stderr, "no value for %s\n", line); return 1; }
        uint32_t value_len = be32(p + 1);
        printf("%.*s\n", (int)value_len, (const char *)(p + 5));
    }
    turnout_client_free(fast);
    uniffi_turnout_ffi_fn_free_client(client, &st);
    check(&st, "free_client");
    free(framed);
    free(config);
    free(contexts);
    return 0;
}
