/* replica-floor: deny a Deployment or StatefulSet whose replica count is below
 * the floor this environment sets (settings {"floors": {"production": 3}}).
 * Freestanding C for wasm32: no libc, a bump allocator, a small JSON scanner.
 * Build: clang --target=wasm32 -nostdlib -O2 -Wl,--no-entry -o policy.wasm policy.c */

typedef unsigned int u32;
typedef int i32;
typedef long long i64;

__attribute__((import_module("opsdeploy"), import_name("set_output")))
void set_output(const char *ptr, i32 len);

/* The metadata custom section. clang keeps a `section` attribute on data in a
 * data segment, so the section is written in assembly, as rustc does for
 * `#[link_section]`: `.ascii`, not `.asciz`, so no trailing NUL is stored. */
__asm__(".section .custom_section.opsdeploy.metadata,\"\",@\n"
        ".ascii \"{\\\"abi_version\\\":1,\\\"name\\\":\\\"replica-floor\\\",\\\"version\\\":\\\"0.1.0\\\",\"\n"
        ".ascii \"\\\"description\\\":\\\"Deny workloads with fewer replicas than the environment's floor\\\",\"\n"
        ".ascii \"\\\"reads\\\":[\\\"helm\\\"]}\"\n"
        ".text\n");

/* clang lowers copy loops and struct copies to memcpy, which libc would
 * provide; `volatile` keeps this one from being lowered to a call to itself. */
void *memcpy(void *dst, const void *src, unsigned long n) {
    volatile char *d = dst;
    const char *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

/* Bump allocator: each instance evaluates once, so nothing is freed. */
extern unsigned char __heap_base;
static u32 heap_top = 0;

static char *grow_to(u32 end) {
    u32 have = __builtin_wasm_memory_size(0) * 65536u;
    if (end > have) {
        u32 pages = (end - have + 65535u) / 65536u;
        if (__builtin_wasm_memory_grow(0, pages) == (u32)-1) return 0;
    }
    return (char *)1;
}

__attribute__((export_name("opsdeploy_alloc")))
char *opsdeploy_alloc(i32 len) {
    if (heap_top == 0) heap_top = (u32)&__heap_base;
    u32 start = (heap_top + 7u) & ~7u;
    if (!grow_to(start + (u32)len)) return 0;
    heap_top = start + (u32)len;
    return (char *)start;
}

__attribute__((export_name("opsdeploy_abi_version")))
i32 opsdeploy_abi_version(void) { return 1; }

/* ---- JSON scanning over [p, end): values are located, never copied ---- */

typedef struct { const char *p; const char *end; } span;

static const char *ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

/* The end of the value starting at p (p at its first byte). */
static const char *skip(const char *p, const char *end) {
    if (p >= end) return end;
    if (*p == '"') {
        for (p++; p < end && *p != '"'; p++)
            if (*p == '\\') p++;
        return p < end ? p + 1 : end;
    }
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            char c = *p;
            if (c == '"') { p = skip(p, end); continue; }
            if (c == '{' || c == '[') depth++;
            if (c == '}' || c == ']') { depth--; if (depth == 0) return p + 1; }
            p++;
        }
        return end;
    }
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n') p++;
    return p;
}

static int same(span a, const char *b, u32 n) {
    if ((u32)(a.end - a.p) != n) return 0;
    for (u32 i = 0; i < n; i++) if (a.p[i] != b[i]) return 0;
    return 1;
}
static u32 cstrlen(const char *s) { u32 n = 0; while (s[n]) n++; return n; }
static int eq(span s, const char *lit) { return s.p && same(s, lit, cstrlen(lit)); }

/* The value of key[0..n) in the object v, or an empty span. */
static span get_n(span v, const char *key, u32 n) {
    span none = {0, 0};
    const char *p = ws(v.p, v.end);
    if (p >= v.end || *p != '{') return none;
    p = ws(p + 1, v.end);
    while (p < v.end && *p == '"') {
        const char *kend = skip(p, v.end);
        span k = {p + 1, kend - 1};
        p = ws(kend, v.end);
        if (p >= v.end || *p != ':') return none;
        p = ws(p + 1, v.end);
        const char *vend = skip(p, v.end);
        if (same(k, key, n)) { span out = {p, vend}; return out; }
        p = ws(vend, v.end);
        if (p < v.end && *p == ',') p = ws(p + 1, v.end);
    }
    return none;
}

static span get(span v, const char *key) { return get_n(v, key, cstrlen(key)); }

/* The string's raw (still escaped) contents, or an empty span. */
static span str(span v) {
    span none = {0, 0};
    if (!v.p || v.p >= v.end || *v.p != '"') return none;
    span s = {v.p + 1, v.end - 1};
    return s;
}

/* An integer value; 0 when v is not one. */
static int integer(span v, i64 *out) {
    const char *p = v.p;
    if (!p || p >= v.end) return 0;
    int neg = *p == '-';
    if (neg) p++;
    if (p >= v.end || *p < '0' || *p > '9') return 0;
    i64 n = 0;
    for (; p < v.end; p++) {
        if (*p < '0' || *p > '9') return 0;
        if (n > 100000000000000LL) return 0;
        n = n * 10 + (*p - '0');
    }
    *out = neg ? -n : n;
    return 1;
}

/* Elements of the array v, one at a time: *at starts 0. */
static int next(span v, const char **at, span *item) {
    const char *p = *at ? *at : v.p;
    p = ws(p, v.end);
    if (!*at) {
        if (p >= v.end || *p != '[') return 0;
        p = ws(p + 1, v.end);
    } else if (p < v.end && *p == ',') {
        p = ws(p + 1, v.end);
    }
    if (p >= v.end || *p == ']') return 0;
    item->p = p;
    item->end = skip(p, v.end);
    *at = item->end;
    return 1;
}

/* ---- output, built at the top of the heap so it grows in place ---- */

static char *out;
static u32 out_len;

static void put(const char *s, u32 n) {
    if (!grow_to((u32)out + out_len + n)) __builtin_trap();
    for (u32 i = 0; i < n; i++) out[out_len + i] = s[i];
    out_len += n;
}
static void puts_(const char *s) { put(s, cstrlen(s)); }
static void put_span(span s) { put(s.p, (u32)(s.end - s.p)); }
static void put_int(i64 n) {
    char buf[24]; int i = 24;
    int neg = n < 0;
    if (neg) n = -n;
    do { buf[--i] = (char)('0' + n % 10); n /= 10; } while (n);
    if (neg) buf[--i] = '-';
    put(buf + i, (u32)(24 - i));
}

__attribute__((export_name("opsdeploy_evaluate")))
i32 opsdeploy_evaluate(const char *ptr, i32 len) {
    span doc = {ptr, ptr + len};
    out = (char *)((heap_top + 7u) & ~7u);
    out_len = 0;
    puts_("{\"violations\":[");
    span env = str(get(get(doc, "environment"), "name"));
    i64 floor;
    int count = 0;
    /* settings.floors[environment.name] */
    span f = {0, 0};
    if (env.p) f = get_n(get(get(doc, "settings"), "floors"), env.p, (u32)(env.end - env.p));
    if (f.p && integer(f, &floor)) {
        const char *ri = 0;
        span release;
        while (next(get(doc, "helm"), &ri, &release)) {
            const char *mi = 0;
            span m;
            while (next(get(release, "manifests"), &mi, &m)) {
                span kind = str(get(m, "kind"));
                if (!eq(kind, "Deployment") && !eq(kind, "StatefulSet")) continue;
                span replicas_v = get(get(get(m, "object"), "spec"), "replicas");
                i64 replicas = 1;
                if (replicas_v.p && !integer(replicas_v, &replicas)) continue;
                if (replicas >= floor) continue;
                span name = str(get(m, "name"));
                if (count++) puts_(",");
                puts_("{\"rule\":\"replica-floor\",\"severity\":\"deny\",\"address\":\"");
                put_span(kind); puts_("/"); put_span(name);
                puts_("\",\"message\":\"");
                put_span(kind); puts_("/"); put_span(name);
                puts_(" has "); put_int(replicas);
                puts_(" replicas; "); put_span(env);
                puts_(" needs at least "); put_int(floor); puts_("\"}");
            }
        }
    }
    puts_("]}");
    set_output(out, (i32)out_len);
    return 0;
}
