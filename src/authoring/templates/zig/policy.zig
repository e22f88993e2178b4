//! replica-floor: deny a Deployment or StatefulSet whose replica count is below
//! the floor this environment sets (settings {"floors": {"production": 3}}).
//! Freestanding Zig for wasm32: no std, a bump allocator, a small JSON scanner.
//! Build: zig build-exe policy.zig -target wasm32-freestanding -fno-entry -rdynamic -O ReleaseSmall

extern "opsdeploy" fn set_output(ptr: [*]const u8, len: i32) void;

// The metadata custom section, emitted the way rustc emits `#[link_section]`:
// a `.custom_section.NAME` section in global assembly.
comptime {
    asm (
        \\.section .custom_section.opsdeploy.metadata,"",@
        \\.ascii "{\"abi_version\":1,\"name\":\"replica-floor\",\"version\":\"0.1.0\","
        \\.ascii "\"description\":\"Deny workloads with fewer replicas than the environment's floor\","
        \\.ascii "\"reads\":[\"helm\"]}"
        \\.text
    );
}

// Bump allocator over pages grown past the module's own memory: each instance
// evaluates once, so nothing is freed.
var heap_top: usize = 0;

fn growTo(end: usize) bool {
    const have = @wasmMemorySize(0) * 65536;
    if (end > have) {
        const pages = (end - have + 65535) / 65536;
        if (@wasmMemoryGrow(0, pages) < 0) return false;
    }
    return true;
}

export fn opsdeploy_alloc(len: i32) i32 {
    if (heap_top == 0) heap_top = @wasmMemorySize(0) * 65536;
    const start = (heap_top + 7) & ~@as(usize, 7);
    const end = start + @as(usize, @intCast(len));
    if (!growTo(end)) return 0;
    heap_top = end;
    return @intCast(start);
}

export fn opsdeploy_abi_version() i32 {
    return 1;
}

// ---- JSON scanning: values are slices of the input, never copied ----

fn ws(s: []const u8, at: usize) usize {
    var i = at;
    while (i < s.len and (s[i] == ' ' or s[i] == '\n' or s[i] == '\r' or s[i] == '\t')) i += 1;
    return i;
}

/// The end of the value starting at s[at].
fn skip(s: []const u8, at: usize) usize {
    var i = at;
    if (i >= s.len) return s.len;
    if (s[i] == '"') {
        i += 1;
        while (i < s.len and s[i] != '"') : (i += 1) {
            if (s[i] == '\\') i += 1;
        }
        return @min(i + 1, s.len);
    }
    if (s[i] == '{' or s[i] == '[') {
        var depth: usize = 0;
        while (i < s.len) {
            const c = s[i];
            if (c == '"') {
                i = skip(s, i);
                continue;
            }
            if (c == '{' or c == '[') depth += 1;
            if (c == '}' or c == ']') {
                depth -= 1;
                if (depth == 0) return i + 1;
            }
            i += 1;
        }
        return s.len;
    }
    while (i < s.len and s[i] != ',' and s[i] != '}' and s[i] != ']' and s[i] != ' ' and s[i] != '\n') i += 1;
    return i;
}

fn same(a: []const u8, b: []const u8) bool {
    if (a.len != b.len) return false;
    for (a, b) |x, y| if (x != y) return false;
    return true;
}

/// The value of `key` in the object v.
fn get(value: ?[]const u8, key: []const u8) ?[]const u8 {
    const v = value orelse return null;
    var i = ws(v, 0);
    if (i >= v.len or v[i] != '{') return null;
    i = ws(v, i + 1);
    while (i < v.len and v[i] == '"') {
        const kend = skip(v, i);
        const k = v[i + 1 .. kend - 1];
        i = ws(v, kend);
        if (i >= v.len or v[i] != ':') return null;
        i = ws(v, i + 1);
        const vend = skip(v, i);
        if (same(k, key)) return v[i..vend];
        i = ws(v, vend);
        if (i < v.len and v[i] == ',') i = ws(v, i + 1);
    }
    return null;
}

/// The string's raw (still escaped) contents.
fn str(value: ?[]const u8) ?[]const u8 {
    const v = value orelse return null;
    if (v.len < 2 or v[0] != '"') return null;
    return v[1 .. v.len - 1];
}

fn integer(value: ?[]const u8) ?i64 {
    const v = value orelse return null;
    var i: usize = 0;
    const neg = v.len > 0 and v[0] == '-';
    if (neg) i = 1;
    if (i >= v.len) return null;
    var n: i64 = 0;
    while (i < v.len) : (i += 1) {
        if (v[i] < '0' or v[i] > '9') return null;
        if (n > 100_000_000_000_000) return null;
        n = n * 10 + (v[i] - '0');
    }
    return if (neg) -n else n;
}

/// Elements of an array, one at a time.
const Items = struct {
    s: []const u8,
    i: usize,

    fn of(value: ?[]const u8) Items {
        const v = value orelse return .{ .s = "", .i = 0 };
        const i = ws(v, 0);
        if (i >= v.len or v[i] != '[') return .{ .s = "", .i = 0 };
        return .{ .s = v, .i = ws(v, i + 1) };
    }

    fn next(self: *Items) ?[]const u8 {
        if (self.i >= self.s.len or self.s[self.i] == ']') return null;
        const start = self.i;
        const end = skip(self.s, start);
        self.i = ws(self.s, end);
        if (self.i < self.s.len and self.s[self.i] == ',') self.i = ws(self.s, self.i + 1);
        return self.s[start..end];
    }
};

// ---- output, built at the top of the heap so it grows in place ----

var out: [*]u8 = undefined;
var out_len: usize = 0;

fn put(s: []const u8) void {
    if (!growTo(@intFromPtr(out) + out_len + s.len)) @trap();
    for (s, 0..) |c, i| out[out_len + i] = c;
    out_len += s.len;
}

fn putInt(value: i64) void {
    var buf: [24]u8 = undefined;
    var i: usize = buf.len;
    var n: u64 = @abs(value);
    while (true) {
        i -= 1;
        buf[i] = '0' + @as(u8, @intCast(n % 10));
        n /= 10;
        if (n == 0) break;
    }
    if (value < 0) {
        i -= 1;
        buf[i] = '-';
    }
    put(buf[i..]);
}

export fn opsdeploy_evaluate(ptr: [*]const u8, len: i32) i32 {
    const doc: []const u8 = ptr[0..@intCast(len)];
    out = @ptrFromInt((heap_top + 7) & ~@as(usize, 7));
    out_len = 0;
    put("{\"violations\":[");
    var count: usize = 0;
    const env = str(get(get(doc, "environment"), "name"));
    const floor = if (env) |e| integer(get(get(get(doc, "settings"), "floors"), e)) else null;
    if (floor) |min| {
        var releases = Items.of(get(doc, "helm"));
        while (releases.next()) |release| {
            var manifests = Items.of(get(release, "manifests"));
            while (manifests.next()) |m| {
                const kind = str(get(m, "kind")) orelse continue;
                if (!same(kind, "Deployment") and !same(kind, "StatefulSet")) continue;
                const replicas_v = get(get(get(m, "object"), "spec"), "replicas");
                const replicas: i64 = if (replicas_v) |r| (integer(r) orelse continue) else 1;
                if (replicas >= min) continue;
                const name = str(get(m, "name")) orelse "";
                if (count > 0) put(",");
                count += 1;
                put("{\"rule\":\"replica-floor\",\"severity\":\"deny\",\"address\":\"");
                put(kind);
                put("/");
                put(name);
                put("\",\"message\":\"");
                put(kind);
                put("/");
                put(name);
                put(" has ");
                putInt(replicas);
                put(" replicas; ");
                put(env.?);
                put(" needs at least ");
                putInt(min);
                put("\"}");
            }
        }
    }
    put("]}");
    set_output(out, @intCast(out_len));
    return 0;
}
