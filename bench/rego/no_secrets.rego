# no-secrets' rule for planned values in Rego, written for speed, for
# bench/compare.sh: every string of `after` of each create or update, minus
# what `after_sensitive` marks, judged by its key (a secret word with a
# non-reference value) and by credential formats. A subset of the built-in
# policy's checks (which also reads configuration constants, variables, files,
# helm and scans, and knows many more formats): it flatters Rego, not opsdeploy.
package no_secrets

import rego.v1

secret_key := `(?i)(passw(or)?d|secret|token|api[_-]?key|private[_-]?key|credential|access[_-]?key)`

# One alternation: each string is matched once.
credential := `AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36}|xox[baprs]-[A-Za-z0-9-]{10,}|-----BEGIN [A-Z ]*PRIVATE KEY-----|sk_live_[0-9a-zA-Z]{24}|AIza[0-9A-Za-z_-]{35}`

reference := `^(\$\{.*\}|\$\(.*\)|vault:.*|arn:aws:secretsmanager:.*|)$`

violations contains msg if {
	some rc in input.resource_changes
	some action in rc.change.actions
	action in {"create", "update"}
	some path, value
	walk(rc.change.after, [path, value])
	is_string(value)
	count(path) > 0
	not marked(rc.change.after_sensitive, path)
	finding(path[count(path) - 1], value)
	msg := sprintf("%s: secret in %v", [rc.address, path])
}

marked(marks, path) if object.get(marks, path, false) == true

finding(key, value) if {
	is_string(key)
	regex.match(secret_key, key)
	not regex.match(reference, value)
}

finding(_, value) if regex.match(credential, value)
