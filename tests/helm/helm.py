"""The helm the tests put on PATH (tests/fake-bin/helm runs this file).

Charts are loaded, rendered, linted, shown and their dependencies built by
Helm itself: helm-python-sdk binds the Helm v4 Go SDK as a shared library
(scripts/setup.sh installs it into .tools/venv). What a real helm keeps in a
cluster is simulated: releases live in JSON files, one per release, under
$FAKE_HELM_STATE/NAMESPACE/RELEASE.json, each revision with its status,
user-supplied and computed values and the manifest Helm rendered for it with a
client-side install dry run. Every call is appended to
$FAKE_HELM_STATE/calls.log.

Failures are injected as a cluster would cause them:
FAKE_HELM_FAIL_UPGRADE=release[,release] keeps those releases from becoming
ready (with --rollback-on-failure, or its old name --atomic, helm rolls the
release back or, on a first install, uninstalls it); FAKE_HELM_FAIL_ROLLBACK=1
makes every rollback time out. tests/helm/README.md lists what differs from a
helm with a cluster.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import sys
from dataclasses import dataclass, field

STATE = os.environ.get("FAKE_HELM_STATE")
DEADLINE = "context deadline exceeded"


class Fail(Exception):
    """An error helm prints as `Error: MESSAGE` before exiting 1."""


def library():
    """helm_python, imported only by the commands that render or read charts
    (loading the 85 MB Go library costs ~0.3 s a call)."""
    try:
        import helm_python
    except ImportError as err:
        raise Fail(
            f"the test helm needs helm-python-sdk (the Helm 4 library): {err}; run scripts/setup.sh"
        ) from err
    return helm_python


# --- command line ------------------------------------------------------------

VALUE_FLAGS = ["--values", "--set", "--set-string", "--set-json"]
SHORT = {"-n": "--namespace", "-f": "--values", "-o": "--output", "-a": "--all", "-A": "--all-namespaces", "-q": "--short"}
GLOBAL_VALUED = ["--namespace", "--kube-context", "--kubeconfig"]
GLOBAL_BOOLS = ["--debug"]
# Flags whose value is optional (pflag NoOptDefVal): `--wait` means `--wait=watcher`.
OPTIONAL_VALUE = {"--wait": "watcher"}
# Helm 3 names Helm 4 still accepts, with pflag's warning.
DEPRECATED = {"--atomic": "use --rollback-on-failure instead", "--force": "use --force-replace instead"}


@dataclass
class Args:
    positional: list[str] = field(default_factory=list)
    flags: dict[str, str | bool] = field(default_factory=dict)
    repeated: dict[str, list[str]] = field(default_factory=dict)

    def get(self, flag, default=None):
        return self.flags.get(flag, default)

    def many(self, flag):
        return self.repeated.get(flag, [])


def parse(argv, valued=(), bools=()):
    """pflag's rules: `--flag value`, `--flag=value`, `-n value`, repeatable
    value flags; an unknown flag is an error."""
    valued = set(valued) | set(GLOBAL_VALUED) | set(VALUE_FLAGS if "--values" in valued else [])
    bools = set(bools) | set(GLOBAL_BOOLS)
    out = Args()
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            out.positional.extend(argv[i:])
            break
        if not arg.startswith("-") or arg == "-":
            out.positional.append(arg)
            continue
        name, eq, value = arg.partition("=")
        if not name.startswith("--"):
            if name not in SHORT:
                raise Fail(f"unknown shorthand flag: '{name[1:2]}' in {arg}")
            name = SHORT[name]
        if name in DEPRECATED and (name in bools or name in valued):
            sys.stderr.write(f"Flag {name} has been deprecated, {DEPRECATED[name]}\n")
        if name in OPTIONAL_VALUE:
            out.flags[name] = value if eq else OPTIONAL_VALUE[name]
        elif name in bools:
            if eq and value not in ("true", "false"):
                raise Fail(f'invalid argument "{value}" for "{name}" flag: strconv.ParseBool: parsing "{value}": invalid syntax')
            out.flags[name] = not eq or value == "true"
        elif name in valued:
            if not eq:
                if i >= len(argv):
                    raise Fail(f"flag needs an argument: {name}")
                value = argv[i]
                i += 1
            if name in VALUE_FLAGS:
                out.repeated.setdefault(name, []).append(value)
            else:
                out.flags[name] = value
        else:
            raise Fail(f"unknown flag: {name}")
    return out


def arity(args, command, usage, low, high=None):
    n = len(args.positional)
    high = low if high is None else high
    if low <= n <= high:
        return
    if low == high:
        need = f"requires {low} argument{'s' if low != 1 else ''}"
    elif n < low:
        need = f"requires at least {low} argument{'s' if low != 1 else ''}"
    else:
        need = f"accepts at most {high} arg(s), received {n}"
    raise Fail(f'"helm {command}" {need}\n\nUsage:  helm {usage}')


def duration(text):
    """A Go duration (`90s`, `2m`, `1h30m`, `500ms`) in seconds."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise Fail(f'invalid argument "{text}" for "--timeout" flag: time: invalid duration "{text}"')
    return sum(float(n) * units[u] for n, u in parts)


# --- values and charts -------------------------------------------------------


def merge_maps(base, override):
    """Helm's mergeMaps: maps merge deeply, anything else replaces."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_maps(out[key], value)
        else:
            out[key] = value
    return out


def user_values(args):
    """The values a user passes, in helm's order: files, then --set-json,
    --set and --set-string, each parsed by Helm."""
    helm = library()
    values = {}
    for path in args.many("--values"):
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError:
            raise Fail(f"open {path}: no such file or directory") from None
        try:
            values = merge_maps(values, helm.values_from_yaml(text) or {})
        except helm.HelmError as err:
            raise Fail(f"failed to parse {path}: {err}") from None
    for flag, parser in (
        ("--set-json", helm.parse_set_json),
        ("--set", helm.parse_set_string),
        ("--set-string", helm.parse_set_string_values),
    ):
        for expression in args.many(flag):
            try:
                values = merge_maps(values, parser(expression))
            except helm.HelmError as err:
                raise Fail(f"failed parsing {flag} data: {err}") from None
    return values


def load_chart(ref):
    helm = library()
    if not os.path.exists(ref):
        if "/" in ref and not ref.startswith((".", "/")):
            raise Fail(f"repo {ref.split('/')[0]} not found")
        raise Fail(f'path "{ref}" not found')
    try:
        return helm.Chart.load(ref)
    except helm.HelmError as err:
        raise Fail(str(err)) from None


def render(ref, name, namespace, values):
    """Helm's client-side install dry run of chart `ref`: (release, chart
    metadata, computed values, hooks as (path, manifest))."""
    helm = library()
    with load_chart(ref) as chart:
        try:
            helm.validate_release_name(name)
            config = helm.Config(storage_driver="memory", namespace=namespace)
            with config:
                release = config.install(chart, name, values, namespace=namespace, dry_run="client")
            files = chart.render(values, name=name, namespace=namespace, is_install=True)
        except helm.HelmError as err:
            raise Fail(str(err)) from None
        return release, chart.metadata, chart.merge_values(values), hooks(files)


SEPARATOR = re.compile(r"(?m)^---\s*$")


def hooks(files):
    """The rendered documents a `helm.sh/hook` annotation makes hooks, which
    the release manifest leaves out and `helm template` prints after it."""
    import yaml

    found = []
    for path in sorted(files):
        if os.path.basename(path).startswith("_") or path.endswith("NOTES.txt"):
            continue
        for doc in SEPARATOR.split(files[path]):
            try:
                obj = yaml.safe_load(doc)
            except yaml.YAMLError:
                continue  # the install dry run has already accepted the file
            annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
            if isinstance(annotations, dict) and "helm.sh/hook" in annotations:
                found.append((path, doc.strip()))
    return found


# --- output ------------------------------------------------------------------


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def ansic(iso):
    t = datetime.datetime.strptime(iso[:26], "%Y-%m-%dT%H:%M:%S.%f")
    return t.strftime("%a %b ") + f"{t.day:2d}" + t.strftime(" %H:%M:%S %Y")


def go_time(iso):
    t = datetime.datetime.strptime(iso[:26], "%Y-%m-%dT%H:%M:%S.%f")
    return t.strftime("%Y-%m-%d %H:%M:%S.%f") + " +0000 UTC"


def emit(value, fmt):
    """`-o json` (Go's compact encoding) or `-o yaml`."""
    if fmt == "json":
        print(json.dumps(value, separators=(",", ":")))
    elif fmt == "yaml":
        import yaml

        sys.stdout.write(yaml.safe_dump(value, default_flow_style=False))
    else:
        raise Fail(f'invalid argument "{fmt}" for "-o, --output" flag: invalid format type')


def table(header, rows):
    """helm's tables: columns padded to their widest cell, tab-separated."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("\t".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


def print_status(rev, name, namespace):
    """helm's status block (the table output of upgrade and status)."""
    print(f"NAME: {name}")
    print(f"LAST DEPLOYED: {ansic(rev['updated'])}")
    print(f"NAMESPACE: {namespace}")
    print(f"STATUS: {rev['status']}")
    print(f"REVISION: {rev['revision']}")
    print(f"DESCRIPTION: {rev['description']}")
    print("TEST SUITE: None")
    if rev.get("notes"):
        print(f"NOTES:\n{rev['notes'].strip()}")


# --- the release store -------------------------------------------------------


def store_path(namespace, name):
    if not STATE:
        raise Fail("FAKE_HELM_STATE is not set: the test helm keeps its releases there")
    return os.path.join(STATE, namespace, name + ".json")


def load(namespace, name):
    try:
        with open(store_path(namespace, name), encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return []


def save(namespace, name, revisions):
    path = store_path(namespace, name)
    if not revisions:
        if os.path.exists(path):
            os.remove(path)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".part", "w", encoding="utf-8") as f:
        json.dump(revisions, f, indent=1)
    os.replace(path + ".part", path)


def releases(namespace=None):
    """(namespace, name, revisions) of every release, or one namespace's."""
    if not STATE or not os.path.isdir(STATE):
        return []
    out = []
    for ns in sorted(os.listdir(STATE)):
        if namespace not in (None, ns) or not os.path.isdir(os.path.join(STATE, ns)):
            continue
        for file in sorted(os.listdir(os.path.join(STATE, ns))):
            if file.endswith(".json"):
                out.append((ns, file[: -len(".json")], load(ns, file[: -len(".json")])))
    return out


def supersede(revisions):
    for r in revisions:
        if r["status"] == "deployed":
            r["status"] = "superseded"


def new_revision(revisions, status, description, source):
    """Appends a revision carrying `source`'s chart, values and manifest."""
    rev = {k: source[k] for k in ("chart", "app_version", "values", "computed", "manifest", "notes")}
    rev.update(
        revision=(revisions[-1]["revision"] if revisions else 0) + 1,
        updated=rfc3339(now()),
        status=status,
        description=description,
    )
    revisions.append(rev)
    return rev


def find_revision(revisions, number):
    if not revisions:
        raise Fail("release: not found")
    if number is None or int(number) <= 0:
        return revisions[-1]
    for r in revisions:
        if r["revision"] == int(number):
            return r
    raise Fail("release: not found")


def history_entry(r):
    return {k: r[k] for k in ("revision", "updated", "status", "chart", "app_version", "description")}


# --- commands ----------------------------------------------------------------


def cmd_version(argv):
    args = parse(argv, bools=["--short"])
    version = library().helm_sdk_version()
    if args.get("--short"):
        print(version)
    else:
        print(f'version.BuildInfo{{Version:"{version}", GitCommit:"", GitTreeState:"", GoVersion:""}}')


def cmd_template(argv):
    args = parse(argv, valued=["--values", "--version"], bools=["--no-hooks"])
    arity(args, "template", "template [NAME] [CHART] [flags]", 1, 2)
    name, chart = args.positional if len(args.positional) == 2 else ["release-name", args.positional[0]]
    namespace = args.get("--namespace", "default")
    release, _, _, hook_docs = render(chart, name, namespace, user_values(args))
    out = [release["manifest"].strip() + "\n"]
    if not args.get("--no-hooks"):
        out += [f"---\n# Source: {path}\n{doc}\n" for path, doc in hook_docs]
    sys.stdout.write("".join(out))


SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}


def cmd_lint(argv):
    args = parse(argv, valued=["--values"], bools=["--strict", "--quiet", "--with-subcharts"])
    helm = library()
    charts = args.positional or ["."]
    values = user_values(args)
    failed = 0
    for chart in charts:
        if not args.get("--quiet"):
            print(f"==> Linting {chart}")
        try:
            report = helm.lint(
                chart,
                values,
                strict=bool(args.get("--strict")),
                namespace=args.get("--namespace", "default"),
                with_subcharts=bool(args.get("--with-subcharts")),
            )
        except helm.HelmError as err:
            raise Fail(str(err)) from None
        worst = max((m["severity"] for m in report["messages"]), default=0)
        bad = worst == 3 or (args.get("--strict") and worst == 2)
        failed += bool(bad)
        if args.get("--quiet") and not bad:
            continue
        if args.get("--quiet"):
            print(f"==> Linting {chart}")
        for m in report["messages"]:
            print(f"[{SEVERITY.get(m['severity'], 'UNKNOWN')}] {m['path']}: {m['error']}")
        print()
    summary = f"{len(charts)} chart(s) linted, {failed} chart(s) failed"
    if failed:
        raise Fail(summary)
    print(summary)


def cmd_show(argv):
    if not argv or argv[0] not in ("all", "chart", "values", "readme", "crds"):
        raise Fail('"helm show" requires a subcommand: all, chart, values, readme or crds')
    what, args = argv[0], parse(argv[1:], valued=["--version"])
    arity(args, f"show {what}", f"show {what} [CHART] [flags]", 1)
    helm = library()
    load_chart(args.positional[0]).close()
    try:
        sys.stdout.write(helm.show(args.positional[0], output_format=what))
    except helm.HelmError as err:
        raise Fail(str(err)) from None


def cmd_dependency(argv):
    if argv[:1] != ["build"]:
        raise Fail(f'unknown command "{argv[0] if argv else ""}" for "helm dependency": the test helm builds dependencies only')
    args = parse(argv[1:], bools=["--skip-refresh"])
    arity(args, "dependency build", "dependency build CHART [flags]", 0, 1)
    helm = library()
    try:
        helm.dependency_build(
            args.positional[0] if args.positional else ".",
            skip_refresh=bool(args.get("--skip-refresh")),
        )
    except helm.HelmError as err:
        raise Fail(str(err)) from None


def cmd_upgrade(argv):
    args = parse(
        argv,
        valued=["--values", "--version", "--timeout"],
        # Without a cluster, namespaces, jobs and replaced objects are not modelled.
        bools=[
            "--install", "--atomic", "--rollback-on-failure", "--create-namespace",
            "--reset-values", "--cleanup-on-fail", "--force", "--force-replace", "--wait-for-jobs",
        ],
    )
    arity(args, "upgrade", "upgrade [RELEASE] [CHART] [flags]", 2)
    name, chart = args.positional
    namespace = args.get("--namespace", "default")
    duration(args.get("--timeout", "5m0s"))
    revisions = load(namespace, name)
    installing = not revisions or revisions[-1]["status"] == "uninstalled"
    if installing and not args.get("--install"):
        raise Fail(f'UPGRADE FAILED: "{name}" has no deployed releases')
    values = user_values(args)
    given = any(args.many(f) for f in VALUE_FLAGS)
    if not installing and not given and not args.get("--reset-values"):
        values = revisions[-1]["values"]  # helm reuses the last values when none are given
    prefix = "" if installing else "UPGRADE FAILED: "
    try:
        release, meta, computed, _ = render(chart, name, namespace, values)
    except Fail as err:
        raise Fail(f"{prefix}{err}") from None
    rendered = {
        "chart": f"{meta.get('name')}-{meta.get('version')}",
        "app_version": str(meta.get("appVersion", "")),
        "values": values,
        "computed": computed,
        "manifest": release["manifest"],
        "notes": release.get("notes", ""),
    }
    atomic = args.get("--atomic") or args.get("--rollback-on-failure")
    failing = name in os.environ.get("FAKE_HELM_FAIL_UPGRADE", "").split(",")
    if failing:
        upgrade_failure(revisions, name, namespace, rendered, installing, atomic)
    if installing and revisions and revisions[-1]["status"] != "failed":
        revisions[-1]["status"] = "superseded"  # install --replace of a kept history
    supersede(revisions)
    rev = new_revision(revisions, "deployed", "Install complete" if installing else "Upgrade complete", rendered)
    save(namespace, name, revisions)
    if installing:
        print(f'Release "{name}" does not exist. Installing it now.')
    else:
        print(f'Release "{name}" has been upgraded. Happy Helming!')
    print_status(rev, name, namespace)


def upgrade_failure(revisions, name, namespace, rendered, installing, atomic):
    """The release never becomes ready: recorded as failed, then undone as
    --rollback-on-failure says; raises helm's error."""
    previous = next((r for r in reversed(revisions) if r["status"] == "deployed"), None)
    if installing:
        if atomic:
            save(namespace, name, [])  # uninstalled, history and all
            raise Fail(f"release {name} failed, and has been uninstalled due to rollback-on-failure being set: {DEADLINE}")
        new_revision(revisions, "failed", f'Release "{name}" failed: {DEADLINE}', rendered)
        save(namespace, name, revisions)
        raise Fail(f"release {name} failed: {DEADLINE}")
    new_revision(revisions, "failed", f'Upgrade "{name}" failed: {DEADLINE}', rendered)
    if atomic and previous is not None:
        supersede(revisions)
        new_revision(revisions, "deployed", f"Rollback to {previous['revision']}", previous)
        save(namespace, name, revisions)
        raise Fail(
            f"UPGRADE FAILED: release {name} failed, and has been rolled back due to rollback-on-failure being set: {DEADLINE}"
        )
    save(namespace, name, revisions)
    raise Fail(f"UPGRADE FAILED: {DEADLINE}")


def cmd_rollback(argv):
    args = parse(argv, valued=["--timeout"], bools=["--force", "--cleanup-on-fail", "--no-hooks", "--wait-for-jobs"])
    arity(args, "rollback", "rollback <RELEASE> [REVISION] [flags]", 1, 2)
    name = args.positional[0]
    namespace = args.get("--namespace", "default")
    duration(args.get("--timeout", "5m0s"))
    revisions = load(namespace, name)
    if not revisions:
        raise Fail("release: not found")
    wanted = int(args.positional[1]) if len(args.positional) == 2 else 0
    if wanted <= 0:
        wanted = revisions[-1]["revision"] - 1
    target = next((r for r in revisions if r["revision"] == wanted), None)
    if target is None:
        raise Fail(f"release has no {wanted} version")
    if os.environ.get("FAKE_HELM_FAIL_ROLLBACK"):
        raise Fail(f"release {name} failed: {DEADLINE}")
    supersede(revisions)
    if revisions[-1]["status"] == "uninstalled":
        revisions[-1]["status"] = "superseded"
    new_revision(revisions, "deployed", f"Rollback to {wanted}", target)
    save(namespace, name, revisions)
    print("Rollback was a success! Happy Helming!")


def cmd_history(argv):
    args = parse(argv, valued=["--output", "--max"])
    arity(args, "history", "history RELEASE_NAME [flags]", 1)
    revisions = load(args.get("--namespace", "default"), args.positional[0])
    if not revisions:
        raise Fail("release: not found")
    shown = [history_entry(r) for r in revisions[-int(args.get("--max", 256)) :]]
    fmt = args.get("--output", "table")
    if fmt == "table":
        table(
            ["REVISION", "UPDATED", "STATUS", "CHART", "APP VERSION", "DESCRIPTION"],
            [[r["revision"], ansic(r["updated"]), r["status"], r["chart"], r["app_version"], r["description"]] for r in shown],
        )
    else:
        emit(shown, fmt)


def cmd_status(argv):
    args = parse(argv, valued=["--output", "--revision"])
    arity(args, "status", "status RELEASE_NAME [flags]", 1)
    name = args.positional[0]
    namespace = args.get("--namespace", "default")
    rev = find_revision(load(namespace, name), args.get("--revision"))
    fmt = args.get("--output", "table")
    if fmt == "table":
        print_status(rev, name, namespace)
        return
    emit(
        {
            "name": name,
            "info": {
                "last_deployed": rev["updated"],
                "description": rev["description"],
                "status": rev["status"],
                "notes": rev.get("notes", ""),
            },
            "config": rev["values"],
            "manifest": rev["manifest"],
            "version": rev["revision"],
            "namespace": namespace,
        },
        fmt,
    )


def cmd_get(argv):
    if not argv or argv[0] not in ("manifest", "values", "notes"):
        raise Fail('"helm get" requires a subcommand: manifest, values or notes')
    what, args = argv[0], parse(argv[1:], valued=["--revision", "--output"], bools=["--all"])
    arity(args, f"get {what}", f"get {what} RELEASE_NAME [flags]", 1)
    rev = find_revision(load(args.get("--namespace", "default"), args.positional[0]), args.get("--revision"))
    if what == "manifest":
        sys.stdout.write(rev["manifest"])
    elif what == "notes":
        print("NOTES:")
        sys.stdout.write(rev.get("notes", ""))
    else:
        values = rev["computed"] if args.get("--all") else (rev["values"] or None)
        fmt = args.get("--output", "table")
        if fmt == "table":
            print("COMPUTED VALUES:" if args.get("--all") else "USER-SUPPLIED VALUES:")
            emit(values, "yaml")
        else:
            emit(values, fmt)


def cmd_uninstall(argv):
    args = parse(argv, valued=["--timeout"], bools=["--keep-history", "--ignore-not-found", "--no-hooks"])
    if not args.positional:
        raise Fail('"helm uninstall" requires at least 1 argument\n\nUsage:  helm uninstall RELEASE_NAME [...] [flags]')
    duration(args.get("--timeout", "5m0s"))
    namespace = args.get("--namespace", "default")
    for name in args.positional:
        revisions = load(namespace, name)
        if not revisions or revisions[-1]["status"] == "uninstalled":
            if args.get("--ignore-not-found"):
                continue
            raise Fail(f"uninstall: Release not loaded: {name}: release: not found")
        if args.get("--keep-history"):
            revisions[-1]["status"] = "uninstalled"
            revisions[-1]["description"] = "Uninstallation complete"
            save(namespace, name, revisions)
        else:
            save(namespace, name, [])
        print(f'release "{name}" uninstalled')


def cmd_list(argv):
    args = parse(
        argv,
        valued=["--output", "--filter"],
        bools=["--all", "--all-namespaces", "--short", "--deployed", "--failed", "--uninstalled", "--superseded", "--pending"],
    )
    states = [s for s in ("deployed", "failed", "uninstalled", "superseded") if args.get(f"--{s}")]
    if args.get("--all"):
        states = ["deployed", "failed", "uninstalled", "superseded", "pending-install", "pending-upgrade"]
    states = states or ["deployed", "failed"]
    namespace = None if args.get("--all-namespaces") else args.get("--namespace", "default")
    rows = [
        (ns, name, revs[-1])
        for ns, name, revs in releases(namespace)
        if revs and revs[-1]["status"] in states and re.search(args.get("--filter", ""), name)
    ]
    if args.get("--short"):
        for _, name, _ in rows:
            print(name)
        return
    listed = [
        {
            "name": name,
            "namespace": ns,
            "revision": str(r["revision"]),
            "updated": go_time(r["updated"]),
            "status": r["status"],
            "chart": r["chart"],
            "app_version": r["app_version"],
        }
        for ns, name, r in rows
    ]
    fmt = args.get("--output", "table")
    if fmt == "table":
        table(
            ["NAME", "NAMESPACE", "REVISION", "UPDATED", "STATUS", "CHART", "APP VERSION"],
            [list(e.values()) for e in listed],
        )
    else:
        emit(listed, fmt)


COMMANDS = {
    "version": cmd_version,
    "template": cmd_template,
    "lint": cmd_lint,
    "show": cmd_show,
    "dependency": cmd_dependency,
    "dep": cmd_dependency,
    "upgrade": cmd_upgrade,
    "rollback": cmd_rollback,
    "history": cmd_history,
    "hist": cmd_history,
    "status": cmd_status,
    "get": cmd_get,
    "uninstall": cmd_uninstall,
    "list": cmd_list,
    "ls": cmd_list,
}


def main(argv):
    if STATE:
        os.makedirs(STATE, exist_ok=True)
        with open(os.path.join(STATE, "calls.log"), "a", encoding="utf-8") as log:
            log.write(" ".join(argv) + "\n")
    if not argv:
        raise Fail("the test helm needs a command: " + ", ".join(sorted(COMMANDS)))
    command = COMMANDS.get(argv[0])
    if command is None:
        raise Fail(f'unknown command "{argv[0]}" for "helm"')
    command(argv[1:])


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except Fail as err:
        sys.stdout.flush()
        sys.stderr.write(f"Error: {err}\n")
        sys.exit(1)
