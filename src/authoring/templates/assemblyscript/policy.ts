// replica-floor: deny a Deployment or StatefulSet whose replica count is below
// the floor this environment sets (settings {"floors": {"production": 3}}).
// AssemblyScript for wasm32: the input is scanned as UTF-8 bytes in memory; the
// output is built as a (UTF-16) string and encoded to UTF-8 for the host.
// Build: asc policy.ts --runtime stub --use abort=policy/abort --exportStart _initialize -O

@external("opsdeploy", "set_output")
declare function set_output(ptr: usize, len: i32): void;

@external("opsdeploy", "fail")
declare function fail(ptr: usize, len: i32): void;

// AssemblyScript calls `env.abort` on a failed assertion or a bad cast; the
// build routes it here (`--use abort=policy/abort`), so the host gets the message.
function abort(message: string | null, file: string | null, line: u32, column: u32): void {
  const text = (message !== null ? message : "abort") + " at " +
    (file !== null ? file : "?") + ":" + line.toString() + ":" + column.toString();
  const utf8 = String.UTF8.encode(text);
  fail(changetype<usize>(utf8), utf8.byteLength);
  unreachable();
}

export function opsdeploy_abi_version(): i32 {
  return 1;
}

// The stub runtime never frees: each instance evaluates once.
export function opsdeploy_alloc(len: i32): usize {
  return heap.alloc(<usize>len);
}

// ---- JSON scanning over input bytes: values are located, never copied ----

class Span {
  constructor(public p: usize, public e: usize) {}
  get empty(): bool { return this.p >= this.e; }
  text(): string { return String.UTF8.decodeUnsafe(this.p, this.e - this.p); }
}

const NONE = new Span(0, 0);

function at(i: usize): u8 { return load<u8>(i); }

function ws(i: usize, e: usize): usize {
  while (i < e) {
    const c = at(i);
    if (c != 0x20 && c != 0x0a && c != 0x0d && c != 0x09) break;
    i++;
  }
  return i;
}

/** The end of the value starting at i. */
function skip(i: usize, e: usize): usize {
  if (i >= e) return e;
  const c = at(i);
  if (c == 0x22) { // "
    i++;
    while (i < e && at(i) != 0x22) {
      if (at(i) == 0x5c) i++;
      i++;
    }
    return i < e ? i + 1 : e;
  }
  if (c == 0x7b || c == 0x5b) { // { [
    let depth = 0;
    while (i < e) {
      const d = at(i);
      if (d == 0x22) { i = skip(i, e); continue; }
      if (d == 0x7b || d == 0x5b) depth++;
      if (d == 0x7d || d == 0x5d) { depth--; if (depth == 0) return i + 1; }
      i++;
    }
    return e;
  }
  while (i < e) {
    const d = at(i);
    if (d == 0x2c || d == 0x7d || d == 0x5d || d == 0x20 || d == 0x0a) break;
    i++;
  }
  return i;
}

function same(k: Span, key: Span): bool {
  if (k.e - k.p != key.e - key.p) return false;
  for (let i: usize = 0; i < k.e - k.p; i++) {
    if (at(k.p + i) != at(key.p + i)) return false;
  }
  return true;
}

/** The value of `key` (raw UTF-8 bytes) in the object v. */
function getSpan(v: Span, key: Span): Span {
  if (v.empty) return NONE;
  let i = ws(v.p, v.e);
  if (i >= v.e || at(i) != 0x7b) return NONE;
  i = ws(i + 1, v.e);
  while (i < v.e && at(i) == 0x22) {
    const kend = skip(i, v.e);
    const k = new Span(i + 1, kend - 1);
    i = ws(kend, v.e);
    if (i >= v.e || at(i) != 0x3a) return NONE;
    i = ws(i + 1, v.e);
    const vend = skip(i, v.e);
    if (same(k, key)) return new Span(i, vend);
    i = ws(vend, v.e);
    if (i < v.e && at(i) == 0x2c) i = ws(i + 1, v.e);
  }
  return NONE;
}

function get(v: Span, key: string): Span {
  const bytes = String.UTF8.encode(key);
  const p = changetype<usize>(bytes);
  return getSpan(v, new Span(p, p + <usize>bytes.byteLength));
}

/** The string's raw (still escaped) contents. */
function str(v: Span): Span {
  if (v.e - v.p < 2 || at(v.p) != 0x22) return NONE;
  return new Span(v.p + 1, v.e - 1);
}

let parsed: i64 = 0;

/** Whether v is an integer; its value in `parsed`. */
function integer(v: Span): bool {
  let i = v.p;
  if (i >= v.e) return false;
  const neg = at(i) == 0x2d;
  if (neg) i++;
  if (i >= v.e) return false;
  let n: i64 = 0;
  while (i < v.e) {
    const c = at(i);
    if (c < 0x30 || c > 0x39) return false;
    if (n > 100000000000000) return false;
    n = n * 10 + <i64>(c - 0x30);
    i++;
  }
  parsed = neg ? -n : n;
  return true;
}

/** The elements of the array v. */
function items(v: Span): Span[] {
  const out = new Array<Span>();
  if (v.empty) return out;
  let i = ws(v.p, v.e);
  if (i >= v.e || at(i) != 0x5b) return out;
  i = ws(i + 1, v.e);
  while (i < v.e && at(i) != 0x5d) {
    const end = skip(i, v.e);
    out.push(new Span(i, end));
    i = ws(end, v.e);
    if (i < v.e && at(i) == 0x2c) i = ws(i + 1, v.e);
  }
  return out;
}

export function opsdeploy_evaluate(ptr: usize, len: i32): i32 {
  const doc = new Span(ptr, ptr + <usize>len);
  let out = "{\"violations\":[";
  let count = 0;
  const env = str(get(get(doc, "environment"), "name"));
  const floorValue = env.empty ? NONE : getSpan(get(get(doc, "settings"), "floors"), env);
  if (integer(floorValue)) {
    const floor = parsed;
    const releases = items(get(doc, "helm"));
    for (let r = 0; r < releases.length; r++) {
      const manifests = items(get(releases[r], "manifests"));
      for (let m = 0; m < manifests.length; m++) {
        const kind = str(get(manifests[m], "kind")).text();
        if (kind != "Deployment" && kind != "StatefulSet") continue;
        const replicasValue = get(get(get(manifests[m], "object"), "spec"), "replicas");
        let replicas: i64 = 1;
        if (!replicasValue.empty) {
          if (!integer(replicasValue)) continue;
          replicas = parsed;
        }
        if (replicas >= floor) continue;
        const address = kind + "/" + str(get(manifests[m], "name")).text();
        if (count++ > 0) out += ",";
        out += "{\"rule\":\"replica-floor\",\"severity\":\"deny\",\"address\":\"" + address +
          "\",\"message\":\"" + address + " has " + replicas.toString() + " replicas; " +
          env.text() + " needs at least " + floor.toString() + "\"}";
      }
    }
  }
  out += "]}";
  const utf8 = String.UTF8.encode(out);
  set_output(changetype<usize>(utf8), utf8.byteLength);
  return 0;
}
