"""Scores opsdeploy and its peers on the exported yardsticks (bench/accuracy/peers.sh).

Secrets: an instance (file and line; line 0: the whole file) counts as flagged when a
tool reports a finding covering its line. Recall = flagged secrets / secrets, false-
positive rate = flagged non-secrets / non-secrets, per category and overall.
Migrations: a case is judged right when the tool's verdict (flags anything / breaks)
equals the label; accuracy = right / cases.
"""
import json
import os
import sys
from collections import defaultdict

out = sys.argv[1]
sec = os.path.join(out, "secrets")
files = os.path.join(sec, "files")
labels = json.load(open(os.path.join(sec, "labels.json")))


def rel(path):
    path = os.path.normpath(path)
    root = os.path.normpath(files)
    if path.startswith(root + os.sep):
        path = path[len(root) + 1 :]
    return path[2:] if path.startswith("./") else path


def trivy():
    found = defaultdict(set)
    report = json.load(open(os.path.join(out, "trivy.json")))
    for r in report.get("Results") or []:
        for s in r.get("Secrets") or []:
            start = s.get("StartLine", 0)
            end = s.get("EndLine", start)
            found[rel(r["Target"])].update(range(start, end + 1))
    return found


def detect_secrets():
    found = defaultdict(set)
    report = json.load(open(os.path.join(out, "detect-secrets.json")))
    for path, items in report.get("results", {}).items():
        for s in items:
            found[rel(path)].add(s["line_number"])
    return found


def credsweeper():
    found = defaultdict(set)
    for c in json.load(open(os.path.join(out, "credsweeper.json"))):
        for ld in c.get("line_data_list", []):
            found[rel(ld["path"])].add(ld["line_num"])
    return found


def opsdeploy():
    return None


tools = [("opsdeploy", opsdeploy()), ("trivy", trivy()), ("detect-secrets", detect_secrets()), ("CredSweeper", credsweeper())]


def flagged(tool, found, inst):
    if tool == "opsdeploy":
        return inst["opsdeploy"]
    lines = found.get(inst["file"], set())
    return bool(lines) if inst["line"] == 0 else inst["line"] in lines


rows = defaultdict(lambda: defaultdict(lambda: [0, 0, 0, 0]))
for inst in labels:
    for tool, found in tools:
        r = rows[inst["category"]][tool]
        hit = flagged(tool, found, inst)
        if inst["secret"]:
            r[0] += 1
            r[1] += hit
        else:
            r[2] += 1
            r[3] += hit


def cell(a, b):
    return f"{b / a:.3f} ({b}/{a})" if a else "—"


names = [t for t, _ in tools]
print("Secrets: recall / false-positive rate")
print()
print("| category | " + " | ".join(names) + " |")
print("|---|" + "---|" * len(names))
totals = {t: [0, 0, 0, 0] for t in names}
for cat in sorted(rows):
    r = rows[cat]
    cells = []
    for t in names:
        a, b, n, f = r[t]
        totals[t] = [x + y for x, y in zip(totals[t], r[t])]
        cells.append(cell(a, b) if a else "FP " + cell(n, f))
    print(f"| {cat} | " + " | ".join(cells) + " |")
print("| **recall, all secrets** | " + " | ".join(cell(totals[t][0], totals[t][1]) for t in names) + " |")
print("| **false-positive rate, all non-secrets** | " + " | ".join(cell(totals[t][2], totals[t][3]) for t in names) + " |")

mig = json.load(open(os.path.join(out, "migrations", "labels.json")))
squawk = dict(l.split() for l in open(os.path.join(out, "squawk.txt")))
res = defaultdict(lambda: {"opsdeploy": [0, 0], "squawk": [0, 0]})
for case in mig:
    for tool, says in [("opsdeploy", case["opsdeploy"]), ("squawk", squawk[case["dir"]] == "flagged")]:
        for key in (case["source"], "all"):
            res[key][tool][0] += 1
            res[key][tool][1] += says == case["breaks"]
print()
print("Migrations: accuracy (breaks the running version or not)")
print()
print("| cases | opsdeploy | squawk |")
print("|---|---|---|")
for key in sorted(res, key=lambda k: (k == "all", k)):
    print(f"| {key} | " + " | ".join(cell(*res[key][t]) for t in ("opsdeploy", "squawk")) + " |")
print()
print(open(os.path.join(out, "versions.txt")).read().replace("\n", " ").strip())
