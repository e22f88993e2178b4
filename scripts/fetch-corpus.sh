#!/usr/bin/env bash
# Downloads the third-party test corpus (terraform plans, trivy reports, SQL
# migrations, secret samples, rendered charts from public repositories). The
# tests read it, but the repository never carries it: tests/corpus.lock.json
# records, for every file, its upstream repository, commit, path and sha256.
# Safe to re-run: a file already present with the recorded sha256 is kept.
#
#   scripts/fetch-corpus.sh [DIR]            download into DIR
#   scripts/fetch-corpus.sh --verify [DIR]   only check DIR against the lock (no network)
#   scripts/fetch-corpus.sh --lock DIR       maintainers: rewrite the lock from DIR/manifest.json
#
# DIR defaults to $OPSDEPLOY_CORPUS, else ../shared/corpus beside the
# repository, where the tests look for it. Files come from
# $OPSDEPLOY_CORPUS_SOURCE/OWNER/REPO/COMMIT/PATH (default
# https://raw.githubusercontent.com; a file:// mirror works too). Needs python3.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import hashlib
import json
import os
import re
import sys
import urllib.parse
import urllib.request

LOCK = "tests/corpus.lock.json"
SOURCE = os.environ.get("OPSDEPLOY_CORPUS_SOURCE", "https://raw.githubusercontent.com").rstrip("/")
USAGE = "usage: scripts/fetch-corpus.sh [--verify] [DIR] | --lock DIR"


def fail(message, hint=None, code=1):
    print(f"error: {message}", file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)
    sys.exit(code)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def manifest_bytes(files):
    """manifest.json as the corpus keeps it: the lock's entries without sha256."""
    entries = [{k: v for k, v in e.items() if k != "sha256"} for e in files]
    return json.dumps(entries, indent=1).encode()


# A derived file was cut out of an upstream file; its manifest `path` says how.
TXTAR = re.compile(r"(?P<src>\S+) :: section `-- (?P<name>.+) --`")
RUST_TEST = re.compile(r"(?P<src>\S+) \(test fn (?P<fn>\w+), raw string `(?P<var>\w+)`\)")
FILTERED = "filtered: only the entries whose path is one of the"


class DeriveError(Exception):
    pass


def txtar_section(text, name):
    """The body of section `-- name --` of a txtar archive, verbatim."""
    body = None
    for line in text.splitlines(keepends=True):
        marker = re.fullmatch(r"-- (.+?) --\r?\n?", line)
        if marker:
            if body is not None:
                break
            if marker.group(1).strip() == name:
                body = []
        elif body is not None:
            body.append(line)
    if body is None:
        raise DeriveError(f"no section `-- {name} --`")
    return "".join(body)


def rust_string(text, fn, var):
    """The string literal bound to `let VAR =` in `fn FN`, as its value."""
    start = re.search(rf"\bfn {re.escape(fn)}\s*\(", text)
    if not start:
        raise DeriveError(f"no fn {fn}")
    let = re.compile(rf"let {re.escape(var)}\s*=\s*").search(text, start.end())
    if not let:
        raise DeriveError(f"no `let {var}` in fn {fn}")
    raw = re.compile(r'r(#*)"').match(text, let.end())
    if raw:
        close = '"' + raw.group(1)
        end = text.find(close, raw.end())
        if end < 0:
            raise DeriveError(f"unterminated raw string in fn {fn}")
        return text[raw.end() : end]
    if not text.startswith('"', let.end()):
        raise DeriveError(f"`let {var}` in fn {fn} is not a string literal")
    out, i = [], let.end() + 1
    escapes = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}
    while i < len(text) and text[i] != '"':
        if text[i] == "\\":
            nxt = text[i + 1]
            if nxt == "\n":  # a line continuation skips the next line's indent
                i += 2
                while i < len(text) and text[i] in " \t\n\r":
                    i += 1
                continue
            if nxt not in escapes:
                raise DeriveError(f"unsupported escape \\{nxt} in fn {fn}")
            out.append(escapes[nxt])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def filtered_entries(text, entry, files):
    """A CredSweeper-style report cut down to the entries about copied samples."""
    samples = {
        "./" + e["path"] for e in files if e["repo"] == entry["repo"] and not e["derived"]
    }
    kept = [
        r for r in json.loads(text)
        if all(line["path"] in samples for line in r.get("line_data_list", []))
    ]
    return json.dumps(kept, indent=1)


def upstream(entry):
    """(upstream file, how to cut the corpus file out of it)."""
    path, derived = entry["path"], entry["derived"]
    if not derived:
        return path, lambda data: data
    m = TXTAR.fullmatch(path)
    if m:
        return m["src"], lambda data: txtar_section(data.decode(), m["name"]).encode()
    m = RUST_TEST.fullmatch(path)
    if m:
        return m["src"], lambda data: rust_string(data.decode(), m["fn"], m["var"]).encode()
    if derived.startswith(FILTERED):
        files = LOCKED["files"]
        return path, lambda data: filtered_entries(data.decode(), entry, files).encode()
    raise DeriveError(f"the lock does not say how to derive it from {path}")


def url(repo, commit, path):
    return f"{SOURCE}/{repo}/{commit}/{urllib.parse.quote(path)}"


def write_atomically(target, data):
    os.makedirs(os.path.dirname(target), exist_ok=True)
    part = target + ".part"
    with open(part, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, target)


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def problems_in(directory):
    """Files of the lock missing from DIR or with another sha256."""
    problems = []
    for e in LOCKED["files"]:
        data = read(os.path.join(directory, e["file"]))
        if data is None:
            problems.append(f"{e['file']}: missing")
        elif sha256(data) != e["sha256"]:
            problems.append(f"{e['file']}: sha256 {sha256(data)[:12]} is not the recorded {e['sha256'][:12]}")
    if sha256(read(os.path.join(directory, "manifest.json")) or b"") != LOCKED["manifest_sha256"]:
        problems.append("manifest.json: missing or not the one the lock records")
    return problems


def show(problems, limit=20):
    for p in problems[:limit]:
        print(f"  --> {p}", file=sys.stderr)
    if len(problems) > limit:
        print(f"  --> and {len(problems) - limit} more", file=sys.stderr)


def verify(directory):
    if not os.path.isdir(directory):
        fail(
            f"there is no corpus at {directory}",
            f"set OPSDEPLOY_CORPUS to the corpus directory, or download it there with scripts/fetch-corpus.sh {directory}",
        )
    problems = problems_in(directory)
    if problems:
        show(problems)
        fail(
            f"the corpus at {directory} does not match {LOCK} ({len(problems)} files)",
            f"run scripts/fetch-corpus.sh {directory}",
        )
    print(f"corpus {directory}: {len(LOCKED['files'])} files match {LOCK}")


def fetch(directory):
    kept = fetched = 0
    problems = []
    sources = {}
    for e in LOCKED["files"]:
        target = os.path.join(directory, e["file"])
        data = read(target)
        if data is not None and sha256(data) == e["sha256"]:
            kept += 1
            continue
        try:
            src, derive = upstream(e)
            where = url(e["repo"], e["commit"], src)
            if where not in sources:
                with urllib.request.urlopen(where, timeout=60) as response:
                    sources[where] = response.read()
            data = derive(sources[where])
        except (OSError, DeriveError, ValueError, UnicodeDecodeError) as err:
            problems.append(f"{e['file']}: {err} ({url(e['repo'], e['commit'], e['path'].split(' ')[0])})")
            continue
        if sha256(data) != e["sha256"]:
            problems.append(
                f"{e['file']}: sha256 {sha256(data)[:12]} is not the recorded {e['sha256'][:12]} ({where}); not written"
            )
            continue
        write_atomically(target, data)
        fetched += 1
    manifest = manifest_bytes(LOCKED["files"])
    if sha256(manifest) != LOCKED["manifest_sha256"]:
        fail(f"{LOCK} is inconsistent: its entries do not give the manifest it records")
    write_atomically(os.path.join(directory, "manifest.json"), manifest)
    print(f"corpus {directory}: {fetched} files downloaded, {kept} already there")
    if problems:
        show(problems)
        fail(
            f"{len(problems)} corpus files could not be fetched or did not match their sha256",
            "check the network to the source (OPSDEPLOY_CORPUS_SOURCE), then run the same command again",
        )


def lock(directory):
    raw = read(os.path.join(directory, "manifest.json"))
    if raw is None:
        fail(f"{directory} has no manifest.json", "name the corpus directory the team keeps")
    entries = json.loads(raw)
    for e in entries:
        data = read(os.path.join(directory, e["file"]))
        if data is None:
            fail(f"{e['file']} is in {directory}/manifest.json but not in {directory}")
        e["sha256"] = sha256(data)
    if manifest_bytes(entries) != raw:
        fail(f"{directory}/manifest.json is not written as the lock reproduces it (json, indent 1)")
    locked = {"manifest_sha256": sha256(raw), "files": entries}
    write_atomically(LOCK, (json.dumps(locked, indent=1) + "\n").encode())
    print(f"wrote {LOCK}: {len(entries)} files")


def main(argv):
    mode = "fetch"
    if argv[:1] in (["--verify"], ["--lock"]):
        mode = argv[0][2:]
        argv = argv[1:]
    if len(argv) > 1 or any(a.startswith("-") for a in argv) or (mode == "lock" and not argv):
        fail("unexpected arguments", USAGE, code=2)
    default = os.environ.get("OPSDEPLOY_CORPUS") or os.path.join("..", "shared", "corpus")
    directory = os.path.abspath(argv[0] if argv else default)
    if mode == "lock":
        return lock(directory)
    global LOCKED
    with open(LOCK) as f:
        LOCKED = json.load(f)
    if mode == "verify":
        return verify(directory)
    fetch(directory)


main(sys.argv[1:])
PY
