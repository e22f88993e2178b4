//! Secret detection: credential formats recognised by their shape, values
//! assigned to secret-sounding keys, and high-entropy values; placeholders and
//! references (`${VAR}`, `{{ .Values.x }}`, `vault:`, `secretKeyRef`, ...) are
//! not secrets. Pure functions over text, so the same code judges a file line
//! by line and a key/value pair from a plan or a manifest.

use std::sync::OnceLock;

use regex::Regex;

use crate::stand_in::stand_in;

/// What was found and where; never the value itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Rule id, e.g. `aws-access-key-id`, `secret-key-value`.
    pub rule: &'static str,
    /// Human name of what it looks like.
    pub what: &'static str,
    /// The key the value is assigned to, when there is one.
    pub key: Option<String>,
    /// The value with everything past a public prefix masked.
    pub redacted: String,
    /// 1-based line in a file (`None` for structured values).
    pub line: Option<u32>,
    /// Last line of a multi-line secret (a private key block).
    pub end_line: Option<u32>,
}

/// A credential format recognised by its shape wherever it appears.
struct Format {
    rule: &'static str,
    what: &'static str,
    re: &'static str,
    /// Characters of the match that are a public prefix (shown unmasked).
    prefix: usize,
}

const FORMATS: &[Format] = &[
    Format {
        rule: "aws-access-key-id",
        what: "AWS access key id",
        re: r"(?-u:\b)(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?-u:\b)",
        prefix: 4,
    },
    Format {
        rule: "github-token",
        what: "GitHub token",
        re: r"(?-u:\b)(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,40}(?-u:\b)|github_pat_[A-Za-z0-9_]{82}",
        prefix: 4,
    },
    Format {
        rule: "gitlab-token",
        what: "GitLab token",
        re: r"(?-u:\b)gl(?:pat|oas|dt|rt|rtr|cbt|ptt|ft|imt|agent|soat|ffct|wt)-[A-Za-z0-9_.\-]{16,}|(?-u:\b)GR1348941[A-Za-z0-9_\-]{20}|(?-u:\b)_gitlab_session=[0-9a-f]{32}(?-u:\b)",
        prefix: 6,
    },
    Format {
        rule: "slack-token",
        what: "Slack token",
        // Numbered segments after the type: `-xoxo-` in a file name is not one.
        re: r"(?-u:\b)xox[abprse]-(?:[0-9]{6,}-)+[A-Za-z0-9]{10,}|(?-u:\b)xoxe\.xox[bp]-1-[A-Za-z0-9]{20,}|(?-u:\b)xapp-[0-9]-[A-Z0-9]{6,}-[0-9]{6,}-[A-Za-z0-9]{20,}",
        prefix: 5,
    },
    Format {
        rule: "slack-webhook",
        what: "Slack webhook URL",
        re: r"https?://hooks\.slack\.com/(?:services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]{16,}|(?:workflows|triggers)/T[A-Z0-9]+/A[A-Z0-9]+/[0-9]+/[A-Za-z0-9]{16,})",
        prefix: 23,
    },
    Format {
        rule: "stripe-key",
        what: "Stripe key",
        re: r"(?-u:\b)(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{20,}|(?-u:\b)whsec_[A-Za-z0-9]{24,}",
        prefix: 8,
    },
    Format {
        rule: "google-credential",
        what: "Google credential",
        re: r"(?-u:\b)AIza[0-9A-Za-z_\-]{35}|(?-u:\b)GOCSPX-[A-Za-z0-9_\-]{20,}|(?-u:\b)ya29\.[A-Za-z0-9_\-]{20,}|(?-u:\b)1//0[A-Za-z0-9_\-]{40,}",
        prefix: 4,
    },
    Format {
        rule: "hashicorp-token",
        what: "HashiCorp Vault/Terraform token",
        re: r"(?-u:\b)[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_\-=]{60,}|(?-u:\b)hv[sbr]\.[A-Za-z0-9_\-]{24,}",
        prefix: 4,
    },
    Format {
        rule: "docker-token",
        what: "Docker token",
        re: r"(?-u:\b)dckr_(?:pat|oat)_[A-Za-z0-9_\-]{20,}|(?-u:\b)SWMTKN-1-[a-z0-9]{50}-[a-z0-9]{25}(?-u:\b)|(?-u:\b)SWMKEY-1-[A-Za-z0-9+/]{43}",
        prefix: 9,
    },
    Format {
        rule: "jwt",
        what: "JSON Web Token",
        re: r"(?-u:\b)eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{10,}",
        prefix: 3,
    },
    Format {
        rule: "azure-client-secret",
        what: "Azure client secret",
        re: r"(?:^|[^A-Za-z0-9_~.\-])[A-Za-z0-9_~.\-]{3}[0-9]Q~[A-Za-z0-9_~.\-]{31,34}(?:$|[^A-Za-z0-9_~.\-])",
        prefix: 0,
    },
    Format {
        rule: "aws-bedrock-key",
        what: "Amazon Bedrock API key",
        re: r"(?-u:\b)bedrock-api-key-[A-Za-z0-9+/=]{20,}|(?-u:\b)ABSK[A-Za-z0-9+/]{100,}={0,2}",
        prefix: 4,
    },
    Format {
        rule: "aws-appsync-key",
        what: "AWS AppSync API key",
        re: r"(?-u:\b)da2-[a-z0-9]{26}(?-u:\b)",
        prefix: 4,
    },
    Format {
        rule: "grafana-token",
        what: "Grafana token",
        re: r"(?-u:\b)glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}(?-u:\b)|(?-u:\b)eyJrIjoi[A-Za-z0-9+/=]{40,}|(?-u:\b)glc_[A-Za-z0-9+/=]{32,}",
        prefix: 5,
    },
    Format {
        rule: "openai-key",
        what: "OpenAI API key",
        re: r"(?-u:\b)sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{58,74}T3BlbkFJ[A-Za-z0-9_\-]{58,74}|(?-u:\b)sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}",
        prefix: 3,
    },
    Format {
        rule: "anthropic-key",
        what: "Anthropic API key",
        re: r"(?-u:\b)sk-ant-(?:api|admin)[0-9]{2}-[A-Za-z0-9_\-]{80,}",
        prefix: 7,
    },
    Format {
        rule: "huggingface-token",
        what: "Hugging Face token",
        re: r"(?-u:\b)hf_[A-Za-z0-9]{34}(?-u:\b)",
        prefix: 3,
    },
    Format {
        rule: "package-registry-token",
        what: "package registry token",
        re: r"(?-u:\b)npm_[A-Za-z0-9]{36}(?-u:\b)|(?-u:\b)pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}|(?-u:\b)rubygems_[a-f0-9]{48}(?-u:\b)|(?-u:\b)oy2[a-z0-9]{43}(?-u:\b)",
        prefix: 4,
    },
    Format {
        rule: "saas-api-key",
        what: "SaaS API key",
        // SendGrid, DigitalOcean, Shopify, Doppler, Atlassian, Postman,
        // Groq, Tavily, Databricks, Artifactory, Dropbox, New Relic, Linear,
        // Sourcegraph, Telegram bots, Mailgun: each vendor's documented shape.
        re: r"(?-u:\b)SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}(?-u:\b)|(?-u:\b)do[opr]_v1_[a-f0-9]{64}(?-u:\b)|(?-u:\b)shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}(?-u:\b)|(?-u:\b)dp\.(?:pt|st|ct|sa|scim|audit)\.[A-Za-z0-9.]{40,}|(?-u:\b)ATATT3[A-Za-z0-9_\-=]{100,}|(?-u:\b)PMAK-[a-f0-9]{24}-[a-f0-9]{34}(?-u:\b)|(?-u:\b)gsk_[A-Za-z0-9]{48,}|(?-u:\b)tvly-[A-Za-z0-9]{32}(?-u:\b)|(?-u:\b)dapi[a-f0-9]{32}(?:-[0-9])?(?-u:\b)|(?-u:\b)AKCp[A-Za-z0-9]{69}(?-u:\b)|(?-u:\b)sl\.[A-Za-z0-9_\-]{130,}|(?-u:\b)NR(?:AK|II|AA|RA|IQ)-[A-Za-z0-9_\-]{20,}|(?-u:\b)lin_api_[A-Za-z0-9]{40}(?-u:\b)|(?-u:\b)sgp_(?:[a-f0-9]{16}_|local_)?[a-f0-9]{40}(?-u:\b)|(?-u:\b)[0-9]{8,10}:AA[A-Za-z0-9_\-]{32,33}(?-u:\b)|(?-u:\b)key-[a-f0-9]{32}(?-u:\b)|(?-u:\b)glptt-[a-f0-9]{40}(?-u:\b)|(?-u:\b)dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}(?-u:\b)",
        prefix: 4,
    },
    Format {
        rule: "saas-token",
        what: "SaaS token",
        // Mapbox, Twilio API keys, Salesforce access tokens, Vault unseal
        // keys, Adafruit IO, Dependency-Track, Jina, Twitch stream keys,
        // Mailchimp, Azure DevOps: each vendor's documented shape.
        re: r"(?-u:\b)(?:sk|tk)\.eyJ1[A-Za-z0-9_\-]{20,}\.[A-Za-z0-9_\-]{20,}|(?-u:\b)SK[0-9a-f]{32}(?-u:\b)|(?-u:\b)00D[A-Za-z0-9]{12,15}![A-Za-z0-9._]{80,}|(?i:unseal key [0-9]+: )[A-Za-z0-9+/]{43,}={0,2}|(?i:operator unseal )[A-Za-z0-9+/]{43,}={0,2}|(?-u:\b)aio_[A-Za-z0-9]{28}(?-u:\b)|(?-u:\b)odt_[A-Za-z0-9]{32,}(?-u:\b)|(?-u:\b)jina_[a-f0-9]{32}[A-Za-z0-9_\-]{20,}|(?-u:\b)live_[0-9]{6,12}_[A-Za-z0-9]{30}(?-u:\b)|(?-u:\b)[a-f0-9]{32}-us[0-9]{1,2}(?-u:\b)|(?-u:\b)[A-Za-z0-9]{76}AZDO[A-Za-z0-9]{4}(?-u:\b)",
        prefix: 4,
    },
    Format {
        rule: "onepassword-token",
        what: "1Password service account token",
        re: r"(?-u:\b)ops_eyJ[A-Za-z0-9+/=_\-]{100,}",
        prefix: 4,
    },
    Format {
        rule: "age-secret-key",
        what: "age secret key",
        re: r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}",
        prefix: 15,
    },
    Format {
        rule: "chat-webhook",
        what: "chat webhook URL",
        re: r"https://[a-z0-9.\-]*(?:outlook\.office\.com|webhook\.office\.com)/webhook(?:b2)?/[a-f0-9\-]{36}@[a-f0-9\-]{36}/[A-Za-z]+/[a-f0-9]{32}/[a-f0-9\-]{36}|https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]{17,20}/[A-Za-z0-9_\-]{60,}",
        prefix: 30,
    },
    Format {
        rule: "azure-sas-signature",
        what: "Azure SAS signature",
        re: r"[?&]sig=[A-Za-z0-9%+/]{30,}(?:%3D|=){0,2}",
        prefix: 0,
    },
    Format {
        rule: "dockerconfig",
        what: "Docker registry credentials",
        re: r#"\.docker(?:configjson|cfg)"?\s*[:=]\s*"?[A-Za-z0-9+/]{8,}={0,2}"#,
        prefix: 0,
    },
];

fn formats() -> &'static [(Regex, &'static Format)] {
    static RES: OnceLock<Vec<(Regex, &'static Format)>> = OnceLock::new();
    RES.get_or_init(|| {
        FORMATS
            .iter()
            .map(|f| (Regex::new(f.re).expect("format regexes are valid"), f))
            .collect()
    })
}

/// All formats in one pattern: most values match none, and one search of a
/// combined automaton costs far less fuel than one per format.
fn any_format() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        let all: Vec<String> = FORMATS.iter().map(|f| format!("(?:{})", f.re)).collect();
        Regex::new(&all.join("|")).expect("format regexes are valid")
    })
}

/// Whether a line can hold anything a rule looks for: a format, a secret
/// word, a URL, a key block, a pragma. One pass instead of a dozen searches
/// on the many lines of a script or config that hold nothing.
fn interesting(line: &str) -> bool {
    static R: OnceLock<Regex> = OnceLock::new();
    let re = R.get_or_init(|| {
        let mut all: Vec<String> = FORMATS.iter().map(|f| format!("(?:{})", f.re)).collect();
        all.push(
            r"(?i:pas|pw|psw|ssw|secret|sercret|token|key|cred|auth|bearer|identified)|://|-----BEGIN |LS0t|</| -"
                .to_string(),
        );
        Regex::new(&all.join("|")).expect("detector regexes are valid")
    });
    re.is_match(line) || line.split_whitespace().any(|w| w.len() >= 20)
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("detector regexes are valid"))
}

/// Candidate keys: identifiers, with `.`/`-` inside (`ANY.secret`, `api-key`).
fn key_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"[A-Za-z][A-Za-z0-9_.\-]*")
}

/// What follows a key: closing quote or bracket, a separator (`=`, `:`, `:=`,
/// `=>`, `==`, `!=`, `->`, or blanks), an optional quote, the value. Anchored
/// at the key's end.
fn value_after_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r#"(?x)^
        ["'\]>]*[\t\ ]*
        (?P<sep> := | => | == | != | -> | [=:(] | [\t\ ] )
        [\t\ ]*\(?[\t\ ]*
        (?:!![a-z]+[\t\ ]+)?                      # a YAML tag: !!binary, !!str
        \\{0,2}(?P<q>["'`]?)
        (?P<value>[^\s"'`,;)<>\\]+)
    "#,
    )
}

/// `<add key="DbPassword" value="…"/>` (.NET appSettings and the like).
fn xml_key_value_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r#"(?i)\b(?:key|name)\s*=\s*"(?P<key>[^"]+)"\s+value\s*=\s*"(?P<value>[^"]*)""#,
    )
}

/// `<password>value</password>` and `<passphrase> value </passphrase>`.
fn xml_element_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"<(?P<key>[A-Za-z_][A-Za-z0-9_.\-]*)(?:\s[^>]*)?>\s*(?P<value>[^<\s][^<]*?)\s*</",
    )
}

fn private_key_begin() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"-----BEGIN (?P<kind>[A-Z0-9 ]*)PRIVATE KEY(?: BLOCK)?-----",
    )
}

fn url_credentials() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        // The password runs to the last `@` before the host, so `p@ss` and
        // `$ecret` stay whole; a socket path host starts with `%2F`.
        r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://(?P<user>[^\s:/@'\x22]*):(?P<value>[^\s/'\x22]+)@[A-Za-z0-9.\-\[%]",
    )
}

/// Credentials in a URL's query or a JDBC property list:
/// `?user=app&password=…`, `;password=…`, `?access_token=…`, `&sig=…`.
fn query_credentials() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"(?i)[?&;](?P<key>password|passwd|pwd|pass|secret|client_secret|token|access_token|auth_token|api_key|apikey|api-key)=(?P<value>[^&;\s'\x22#<>]+)",
    )
}

/// `Authorization: Basic …` / `Bearer …` / `Token …`, in a header line, a
/// `curl -H`, or a config value.
fn auth_header() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r#"(?i)authorization["']?\s*[:=]\s*["']?(?P<scheme>basic|bearer|token|ssws)\s+(?P<value>[A-Za-z0-9+/=._~\-]{8,})"#,
    )
}

/// `Host=db;Username=app;Password=…;` (ADO.NET, JDBC properties, ODBC).
fn connection_string_password() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"(?i)(?:^|;)\s*(?:password|pwd)\s*=\s*(?P<value>[^;]+)")
}

fn sql_identified_by() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r#"(?i)(?-u:\b)identified\s+(?:with\s+'?\w+'?\s+)?(?:by|as)\s+["']?(?P<value>[^\s"';\\]+)"#,
    )
}

fn cli_password() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    // `mysql -pSECRET`, `-passin pass:SECRET`, `curl -u user:SECRET`,
    // `--user 'name:SECRET'`, `--password SECRET`, `--token=SECRET`.
    re(
        &R,
        r#"(?:\s-p(?P<mysql>[^\s"'-][^\s"']{5,})|(?-u:\b)pass:(?P<passin>[^\s"']+)|(?:^|\s)(?:-u\s*|--user[=\s]\s*)["']?[^\s:"'$]+:(?P<curl>[^\s"']+)|\s--(?P<flag>password|passwd|pass|token|api-key|apikey|secret|client-secret|auth-token|access-token)(?:=|\s+)["']?(?P<long>[^\s"']+)|\s(?P<kv>password|passwd|token|secret)=(?P<kvv>[^\s"'&;]+))"#,
    )
}

/// `-p SECRET` after a login-like command (`docker login -u x -p …`,
/// `psexec -u x -p …`, `sshpass -p …`); elsewhere `-p` is a port or a path.
fn short_p_password() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r#"(?i)(?:\blogin\b|psexec|sshpass|connect-viserver|\s-u\s+\S+).*?\s-(?:p|password)\s+["']?(?P<value>[^\s"']+)"#,
    )
}

/// Secret-sounding key components. A key is split at `_ . - space` and camel
/// case; one component naming a secret makes the key secret.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "pswd",
    "psswd",
    "pswrd",
    "psword",
    "pssword",
    "psswrd",
    "paswd",
    "paswrd",
    "pasword",
    "pw",
    "pass",
    "secret",
    "secrets",
    "token",
    "apikey",
    "credential",
    "credentials",
    "privatekey",
    "secretkey",
    "accesskey",
    "authkey",
    "sercret",
    "bearer",
    "pat",
    "sharedaccesskey",
    "accountkey",
];

/// Substrings one of which every secret key contains (a cheap first test).
const SECRET_HINTS: &[&str] = &[
    "pas", "pw", "psw", "ssw", "secret", "sercret", "token", "key", "cred", "auth", "bearer",
    "pat", "login",
];

/// Components that make a secret-sounding key about something else.
const BENIGN_WORDS: &[&str] = &[
    "id",
    "ids",
    "name",
    "file",
    "path",
    "dir",
    "url",
    "uri",
    "endpoint",
    "length",
    "len",
    "min",
    "max",
    "policy",
    "type",
    "mode",
    "enabled",
    "enable",
    "field",
    "ref",
    "arn",
    "version",
    "expiry",
    "expires",
    "expiration",
    "ttl",
    "format",
    "header",
    "prefix",
    "hint",
    "count",
    "rotation",
    "reset",
    "required",
    "kind",
    "label",
    "env",
    "validity",
    "size",
    "regex",
    "pattern",
    "param",
    "selector",
    "manager",
    "store",
    "provider",
    "strength",
    "hash",
    "digest",
    "checksum",
    "encrypted",
    "hashed",
    "salt",
    "placeholder",
    "spec",
    "usage",
    "algorithm",
    "deletion",
    "window",
];

fn key_words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Whether `needle` occurs in `hay`. A plain scan: `str::contains` builds a
/// Two-Way searcher on every call, which for the short keys and values this
/// runs on (hundreds of thousands in a large plan) costs more than the search.
fn contains(hay: &str, needle: &str) -> bool {
    let n = needle.as_bytes();
    n.is_empty() || hay.as_bytes().windows(n.len()).any(|w| w == n)
}

/// [`contains`] ignoring ASCII case, for a lower-case `needle`: what
/// `hay.to_ascii_lowercase().contains(needle)` says, without the copy.
fn contains_ci(hay: &str, needle: &str) -> bool {
    let n = needle.as_bytes();
    n.is_empty()
        || hay
            .as_bytes()
            .windows(n.len())
            .any(|w| w.eq_ignore_ascii_case(n))
}

/// Whether a key names a secret: `db_password`, `AwsSecretKey`, `MYSQLPASS`,
/// `api-key`; not `password_length`, `token_url`, `passengers`.
pub fn is_secret_key(key: &str) -> bool {
    if !SECRET_HINTS.iter().any(|h| contains_ci(key, h)) {
        return false;
    }
    let words = key_words(key);
    if words.is_empty() || words.iter().any(|w| BENIGN_WORDS.contains(&w.as_str())) {
        return false;
    }
    let joined = words.concat();
    let paired = words.windows(2).any(|w| {
        matches!(
            (w[0].as_str(), w[1].as_str()),
            ("api", "key")
                | ("access", "key")
                | ("private", "key")
                | ("secret", "key")
                | ("auth", "key")
                | ("client", "secret")
                | ("access", "token")
                | ("auth", "token")
                | ("master", "key")
                | ("encryption", "key")
                | ("signing", "key")
                | ("sec", "key")
                | ("authentication", "key")
                | ("session", "token")
                | ("bearer", "token")
                | ("license", "key")
                | ("unseal", "key")
                | ("sonar", "login")
                | ("account", "key")
        )
    });
    paired
        || words
            .iter()
            .any(|w| SECRET_WORDS.contains(&w.as_str()) || w.starts_with("passw"))
        // One run-together word: MYSQLPASS, X3PSWD, ANYsecret.
        || (words.len() == 1
            && ["pass", "password", "passwd", "pswd", "pwd", "secret", "token", "apikey"]
                .iter()
                .any(|s| joined.ends_with(s) && joined.len() > s.len()))
}

/// Words that, after a secret key in free text, are a type or a stand-in
/// (`password: String`, `token = required`) rather than the value.
const LITERALS: &[&str] = &[
    "true",
    "false",
    "null",
    "nil",
    "none",
    "undefined",
    "yes",
    "no",
    "on",
    "off",
    "required",
    "optional",
    "string",
    "str",
    "bool",
    "int",
    "secret",
    "token",
    "password",
    "default",
    "empty",
    "unset",
    "n/a",
    "na",
    "tbd",
    "hidden",
    "masked",
    "sensitive",
];

/// The first quoted literal in a piece of a line.
fn quoted_literal_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r#"["']([^"'\s]{6,})["']"#)
}

/// Values that stand for a secret without being one: references (vault
/// paths, `secretKeyRef`, terraform expressions), hashes, and stand-ins
/// (see [`stand_in`]: templates, repetition, sequences, stand-in words,
/// documented examples), judged on the whole value.
pub fn is_reference_or_placeholder(key: &str, value: &str) -> bool {
    let v = value.trim();
    let lower = v.to_ascii_lowercase();
    if v.is_empty() {
        return true;
    }
    const STARTS: &[&str] = &[
        "%(",
        "%{",
        "#{",
        "{",
        "<",
        "[",
        "(",
        "&",
        "*",
        "!",
        "?",
        "`",
        "~/",
        "/",
        "./",
        "../",
        "vault:",
        "vault/",
        "secret/",
        "ref+",
        "arn:aws:secretsmanager",
        "arn:aws:ssm",
        "projects/",
        "sm://",
        "op://",
        "awssm:",
        "file:",
        "env:",
        "data.",
        "var.",
        "local.",
        "module.",
        "secretkeyref",
        "valuefrom",
        "keyvault",
        "azurekeyvault",
        "gcp:",
        "aws:",
        "encrypted:",
        "enc[",
        "ag==",
        "@microsoft.keyvault",
        "env.",
        "process.env",
        "os.environ",
        "os.getenv",
        "arn:",
    ];
    if STARTS.iter().any(|s| lower.starts_with(s)) || is_password_hash(v) {
        return true;
    }
    if LITERALS.contains(&lower.as_str()) || lower == "missing" {
        return true;
    }
    // DB_PASSWORD = "DB_PASSWORD": the name standing in for the value.
    if lower == key.to_ascii_lowercase() {
        return true;
    }
    // 0xDEADBEEF constants are not passwords.
    if lower.starts_with("0x") && lower[2..].chars().all(|c| c.is_ascii_hexdigit()) {
        return true;
    }
    is_route(v) || stand_in(v).is_some()
}

/// `cms/sites/passwords#update`, `docs/reset-password.md`: a path or route
/// of lower-case words.
fn is_route(v: &str) -> bool {
    v.contains('/')
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "/_-.#:".contains(c))
        && v.split(['/', '#', '.', '-', '_'])
            .filter(|w| !w.is_empty())
            .all(|w| w.chars().any(|c| c.is_ascii_lowercase()) && w.len() >= 2)
}

/// A crypt(3)-style password hash (`$2a$12$…`, `$6$salt$…`): not the
/// plaintext no-secrets looks for.
fn is_password_hash(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('$') else {
        return false;
    };
    let id = rest.split('$').next().unwrap_or("");
    matches!(
        id,
        "1" | "2" | "2a" | "2b" | "2x" | "2y" | "5" | "6" | "7" | "8" | "y" | "gy" | "apr1"
    ) || id.starts_with("argon2")
        || id.starts_with("pbkdf2")
        || id == "scrypt"
}

/// Classes of characters in a value: lower, upper, digit, symbol.
fn classes(v: &str) -> usize {
    let mut c = [false; 4];
    for ch in v.chars() {
        if ch.is_ascii_lowercase() {
            c[0] = true
        } else if ch.is_ascii_uppercase() {
            c[1] = true
        } else if ch.is_ascii_digit() {
            c[2] = true
        } else {
            c[3] = true
        }
    }
    c.iter().filter(|b| **b).count()
}

/// Shannon entropy in bits per character.
pub fn entropy(v: &str) -> f64 {
    let mut counts = [0u32; 256];
    let bytes = v.as_bytes();
    for b in bytes {
        counts[*b as usize] += 1;
    }
    let n = bytes.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = *c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Whether free text (a line of a file) assigns this value in a way that looks
/// like a real password rather than prose or a setting.
fn plausible_in_text(value: &str) -> bool {
    let n = value.chars().count();
    if !(6..=200).contains(&n) {
        return false;
    }
    let all_digits = value.chars().all(|c| c.is_ascii_digit());
    if all_digits {
        return false;
    }
    // Long values (keys, hex hashes) count as they are; short ones need mixed
    // characters to read as a password rather than a word.
    n >= 16 || classes(value) >= 2
}

/// Masks a value: a known public prefix stays, the rest is replaced.
pub fn redact(value: &str, prefix: usize) -> String {
    let shown: String = value
        .chars()
        .take(prefix.min(value.chars().count() / 2))
        .collect();
    format!("{shown}****")
}

fn format_finding(value: &str, line: Option<u32>, key: Option<&str>) -> Option<Finding> {
    if !any_format().is_match(value) {
        return None;
    }
    for (re, f) in formats() {
        for m in re.find_iter(value) {
            let text = m
                .as_str()
                .trim_matches(|c: char| !c.is_ascii_alphanumeric());
            // The format says where a secret goes; the rest must be random
            // material: not `ghp_xxxx…`, not `AKIA` + the alphabet, not a
            // documented example, and a random token of that length is never
            // digits only.
            let random = text.get(f.prefix.min(text.len())..).unwrap_or(text);
            // Random material holds a digit or a capital; lower-case words
            // after `glpat-` (`token-rotation.md`) are a file name.
            let mixed = random
                .chars()
                .any(|c| c.is_ascii_digit() || c.is_ascii_uppercase());
            if stand_in(random).is_some()
                || stand_in(text).is_some()
                || !random.chars().any(|c| c.is_ascii_alphabetic())
                || !mixed
            {
                continue;
            }
            return Some(Finding {
                rule: f.rule,
                what: f.what,
                key: key.map(str::to_string),
                redacted: redact(text, f.prefix),
                line,
                end_line: None,
            });
        }
    }
    None
}

/// A value assigned to a key that names a secret.
pub fn secret_key_finding(key: &str, value: &str) -> Finding {
    Finding {
        rule: "secret-key-value",
        what: "plaintext value of a secret key",
        key: Some(key.to_string()),
        redacted: redact(value, 0),
        line: None,
        end_line: None,
    }
}

/// Judges one key/value pair of structured data (plan values, helm values,
/// manifests): a known credential format anywhere, or any non-placeholder
/// value under a secret key.
pub fn check_value(key: &str, value: &str) -> Option<Finding> {
    if let Some(f) = format_finding(value, None, Some(key)) {
        return Some(f);
    }
    if let Some(c) = inline_credential(value) {
        return Some(Finding {
            rule: c.rule,
            what: c.what,
            key: Some(key.to_string()),
            redacted: redact(&c.value, 0),
            line: None,
            end_line: None,
        });
    }
    if (contains_ci(value, "password") || contains_ci(value, "pwd"))
        && let Some(c) = connection_string_password().captures(value)
    {
        let pw = c["value"].trim();
        if !is_reference_or_placeholder("", pw) {
            return Some(Finding {
                rule: "connection-string-password",
                what: "password in a connection string",
                key: Some(key.to_string()),
                redacted: redact(pw, 0),
                line: None,
                end_line: None,
            });
        }
    }
    if is_secret_key(key) && !is_reference_or_placeholder(key, value) && value.trim().len() >= 4 {
        return Some(secret_key_finding(key, value));
    }
    // A script or config file held in one value (user_data, ConfigMap data).
    if value.contains('\n') {
        return scan_text(value, Syntax::Text)
            .into_iter()
            .next()
            .map(|f| Finding {
                key: Some(match &f.key {
                    Some(inner) => format!("{key}: {inner}"),
                    None => key.to_string(),
                }),
                ..f
            });
    }
    None
}

/// How strictly a file's `key = value` lines are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// Any text: a value under a secret key must look like a password.
    Text,
    /// `.env`, compose and YAML files: every literal under a secret key counts.
    KeyValue,
    /// `.tf` and `.tfvars`: only quoted literals count; bare words are expressions.
    Terraform,
}

/// A `key = value` pair found on a line.
struct Pair<'l> {
    key: &'l str,
    /// The rest of the line after the key.
    rest: &'l str,
    value: &'l str,
    quoted: bool,
    /// Separated by blanks only (`secret AIhq…`, `PASSWORD 'x'`), which prose does too.
    loose: bool,
}

/// Every key on a line with the value that follows it. A key is taken only at
/// a word start (not inside `M[@%]PW:…` uuencoded data or `abcdexoxb-…`).
fn pairs(line: &str) -> Vec<Pair<'_>> {
    let mut out = Vec::new();
    for m in key_re().find_iter(line) {
        let before = line[..m.start()].chars().next_back();
        // `$token = "…"` assigns a variable (PHP, Perl, PowerShell); a
        // `$PASSWORD` elsewhere only refers to one.
        let variable = before == Some('$');
        if before.is_some_and(|c| !(c.is_whitespace() || "\"'{(,;-<>[&?*:$".contains(c))) {
            continue;
        }
        // `:password => …` (a Ruby symbol), not `arn:aws:secret:…`.
        if before == Some(':')
            && line[..m.start() - 1]
                .chars()
                .next_back()
                .is_some_and(|c| !c.is_whitespace())
        {
            continue;
        }
        let rest = &line[m.end()..];
        if let Some(c) = value_after_re().captures(rest) {
            let loose = c["sep"].trim().is_empty() || &c["sep"] == "(";
            if variable && (loose || !matches!(&c["sep"], "=" | ":=")) {
                continue;
            }
            let mut value = c.name("value").map_or("", |v| v.as_str());
            // A quoted value runs to its closing quote (`"7`D'}/v…"`), as
            // long as it holds no blank.
            if let (Some(q), Some(v)) = (c["q"].chars().next(), c.name("value"))
                && q != '`'
                && let Some(end) = rest[v.start()..].find(q)
                && !rest[v.start()..v.start() + end].contains(char::is_whitespace)
            {
                value = &rest[v.start()..v.start() + end];
            }
            // `secret=…&code=…`: a query's next parameter is not the value.
            if let Some(i) = value.find('&').filter(|&i| {
                let next = &value[i + 1..];
                next.split_once('=').is_some_and(|(k, _)| {
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                })
            }) {
                value = &value[..i];
            }
            out.push(Pair {
                key: m.as_str(),
                rest,
                value,
                quoted: !c["q"].is_empty(),
                loose,
            });
        }
    }
    out
}

/// `NAME=value` with an upper-case name, as shells and `.env` files write it.
fn is_env_assignment(p: &Pair) -> bool {
    p.rest.starts_with('=')
        && p.key
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Scans a file's text line by line; a private key block is one finding
/// spanning its lines.
pub fn scan_text(text: &str, syntax: Syntax) -> Vec<Finding> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    // A secret key whose value continues on the more indented lines below
    // (`password:` then `  secure: …`; an ini value over several lines).
    let mut parent: Option<(&str, usize)> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let no = i as u32 + 1;
        let indent = line.len() - line.trim_start().len();
        if parent.is_some_and(|(_, at)| indent <= at && !line.trim().is_empty()) {
            parent = None;
        }
        if parent.is_none() && !interesting(line) {
            i += 1;
            continue;
        }
        // `# pragma: allowlist secret` (detect-secrets) and `# opsdeploy: allow-secret`.
        if line.contains("pragma: allowlist secret") || line.contains("opsdeploy: allow-secret") {
            i += 1;
            continue;
        }
        if let Some((finding, end)) = private_key(&lines, i) {
            out.push(finding);
            i = end + 1;
            continue;
        }
        let mut found = line_finding(line, no, syntax);
        if found.is_none()
            && let Some((key, _)) = parent
        {
            // A bare value, or one under a wrapper key (`secure:`, Travis); a
            // YAML list item (`- app_db_password` under compose's `secrets:`)
            // names a secret rather than holding one.
            let t = line.trim();
            let value = match t.split_once([':', '=']) {
                _ if t.starts_with("- ") || t.starts_with('#') => None,
                None => Some(t),
                Some((k, v)) if matches!(k.trim(), "secure" | "value" | "default") => {
                    Some(v.trim())
                }
                Some(_) => None,
            };
            if let Some(value) = value
                && !is_reference_or_placeholder(key, value)
                && plausible_in_text(value)
            {
                found = Some(Finding {
                    rule: "secret-key-value",
                    what: "plaintext value of a secret key",
                    key: Some(key.to_string()),
                    redacted: redact(value, 0),
                    line: Some(no),
                    end_line: None,
                });
            }
        }
        if let Some(f) = found {
            out.push(f);
        }
        let trimmed = line.trim_end();
        if let Some(key) = trimmed
            .strip_suffix(':')
            .or_else(|| trimmed.strip_suffix('='))
            .map(|k| k.trim().trim_start_matches("- ").trim_matches(['"', '\'']))
            // `secrets:`, `credentials:`: a section of named entries, not one value.
            .filter(|k| is_secret_key(k) && !k.ends_with('s'))
        {
            parent = Some((key, indent));
        }
        i += 1;
    }
    out
}

/// One body line of a PEM block, without comment or string decoration
/// (`  *  MIIB…`, `"MIIB…\n" +`); `None` for headers like `Version: …`.
fn pem_body(line: &str) -> Option<&str> {
    let l = line
        .trim()
        .trim_start_matches(['*', '/', '#', '+', '"', '\'', ' ', '\t'])
        .trim_end_matches(['"', '\'', '+', ' ', ';', ','])
        .trim_end_matches("\\n");
    (!l.is_empty() && !l.contains(": ")).then_some(l)
}

/// A private key block starting at `lines[i]`: the finding and its last line.
/// A header alone, a body with blanks or `...` inside (documentation), and a
/// key encrypted with a passphrase are not plaintext keys.
fn private_key(lines: &[&str], i: usize) -> Option<(Finding, usize)> {
    let line = lines[i];
    if !line.contains("-----BEGIN ") {
        return None;
    }
    let begin = private_key_begin().captures(line)?;
    if begin["kind"].contains("ENCRYPTED") {
        return None;
    }
    let finding = |end: usize| Finding {
        rule: "private-key",
        what: "private key",
        key: None,
        redacted: "-----BEGIN … PRIVATE KEY-----****".into(),
        line: Some(i as u32 + 1),
        end_line: Some(end as u32 + 1),
    };
    let after = &line[begin.get(0).map_or(0, |m| m.end())..];
    if let Some(end) = after.find("-----END") {
        // The whole key on one line, `\n` escapes and all.
        let body: String = after[..end].split("\\n").map(str::trim).collect();
        return (body.len() >= 32 && !body.contains(' ')).then(|| (finding(i), i));
    }
    let end = i + lines[i..].iter().position(|l| l.contains("-----END"))?;
    let body: Vec<&str> = lines[i + 1..end]
        .iter()
        .filter_map(|l| pem_body(l))
        .collect();
    if lines[i + 1..end]
        .iter()
        .any(|l| l.contains("Proc-Type: 4,ENCRYPTED"))
    {
        return None;
    }
    // Words among the base64 (`… not a real key …`) or an ellipsis mean an
    // illustration, not a key.
    let plain = body.iter().all(|b| {
        !b.contains("...")
            && !b
                .split_whitespace()
                .any(|w| w.len() <= 5 && w.chars().all(|c| c.is_ascii_alphabetic()))
    });
    let len: usize = body.iter().map(|b| b.len()).sum();
    (plain && len >= 40).then(|| (finding(end), end))
}

/// A credential written into a URL, a command line or a header.
struct Inline {
    rule: &'static str,
    what: &'static str,
    /// The user, query key or flag it follows.
    key: Option<String>,
    value: String,
}

/// The first credential written inline in `text`: a URL's password or query
/// credential, a command-line flag, an `Authorization` header.
fn inline_credential(text: &str) -> Option<Inline> {
    let real = |v: &str, min: usize| v.len() >= min && !is_reference_or_placeholder("", v);
    let inline = |rule, what, key: Option<&str>, value: &str| Inline {
        rule,
        what,
        key: key.map(str::to_string),
        value: value.to_string(),
    };
    if contains(text, "://") {
        for c in url_credentials().captures_iter(text) {
            // `u:p@h1,u:p@h2`: several hosts, each with its own credentials.
            let pw = match c["value"].split_once('@') {
                Some((first, rest)) if rest.contains(':') => first,
                _ => &c["value"],
            };
            if !is_reference_or_placeholder(&c["user"], pw) {
                return Some(inline("url-password", "password in a URL", None, pw));
            }
        }
    }
    if text.contains('=') {
        for c in query_credentials().captures_iter(text) {
            if real(&c["value"], 6) {
                let (rule, what) = if c[0].starts_with(';') {
                    (
                        "connection-string-password",
                        "password in a connection string",
                    )
                } else {
                    ("url-password", "credential in a URL query")
                };
                return Some(inline(rule, what, Some(&c["key"]), &c["value"]));
            }
        }
    }
    if contains_ci(text, "authorization") {
        for c in auth_header().captures_iter(text) {
            let value = &c["value"];
            let scheme = c["scheme"].to_ascii_lowercase();
            // Basic carries `user:password` in base64; judge the password.
            let password = (scheme == "basic")
                .then(|| decode_base64(value))
                .flatten()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|t| t.split_once(':').map(|(_, p)| p.to_string()));
            let ok = match &password {
                Some(p) => real(p, 4) && stand_in(value).is_none(),
                None => real(value, 12),
            };
            if ok {
                return Some(inline(
                    "authorization-header",
                    "credential in an Authorization header",
                    Some(&format!("Authorization: {}", &c["scheme"])),
                    value,
                ));
            }
        }
    }
    if text.contains('-') || contains(text, "pass:") || text.contains('=') {
        for c in cli_password().captures_iter(text) {
            // `-password`: a long flag, not mysql's `-p` glued to a password.
            if c.name("mysql")
                .is_some_and(|m| m.as_str().starts_with("assword"))
            {
                continue;
            }
            let (flag, pw) = [
                ("-p", c.name("mysql")),
                ("pass:", c.name("passin")),
                ("-u", c.name("curl")),
                ("password=", c.name("kvv")),
            ]
            .into_iter()
            .find_map(|(f, m)| m.map(|m| (f.to_string(), m.as_str())))
            .or_else(|| {
                Some((
                    format!("--{}", c.name("flag")?.as_str()),
                    c.name("long")?.as_str(),
                ))
            })?;
            if real(pw, 6) {
                return Some(inline(
                    "cli-password",
                    "credential on a command line",
                    Some(&flag),
                    pw,
                ));
            }
        }
        if let Some(c) = short_p_password().captures(text)
            && real(&c["value"], 4)
            && !c["value"]
                .chars()
                .all(|ch| ch.is_ascii_digit() || ch == ':')
        {
            return Some(inline(
                "cli-password",
                "credential on a command line",
                Some("-p"),
                &c["value"],
            ));
        }
    }
    None
}

/// The first finding on one line of text.
fn line_finding(line: &str, no: u32, syntax: Syntax) -> Option<Finding> {
    if let Some(f) = format_finding(line, Some(no), None) {
        return Some(f);
    }
    if let Some(f) = base64_private_key(line, no) {
        return Some(f);
    }
    let found = |rule: &'static str, what: &'static str, key: Option<&str>, value: &str| Finding {
        rule,
        what,
        key: key.map(str::to_string),
        redacted: redact(value, 0),
        line: Some(no),
        end_line: None,
    };
    if let Some(c) = inline_credential(line) {
        return Some(found(c.rule, c.what, c.key.as_deref(), &c.value));
    }
    let lower = line.to_ascii_lowercase();
    if lower.contains("identified")
        && let Some(c) = sql_identified_by().captures(line)
    {
        let pw = c["value"].trim_start_matches('*');
        if !is_reference_or_placeholder("", pw) && pw.len() >= 6 {
            return Some(found(
                "sql-password",
                "password in a SQL statement",
                None,
                pw,
            ));
        }
    }
    if line.contains("value")
        && let Some(c) = xml_key_value_re().captures(line)
    {
        let (key, value) = (&c["key"], c["value"].trim());
        if is_secret_key(key) && !is_reference_or_placeholder(key, value) && value.len() >= 4 {
            return Some(found(
                "secret-key-value",
                "plaintext value of a secret key",
                Some(key),
                value,
            ));
        }
    }
    if line.contains("</")
        && let Some(c) = xml_element_re().captures(line)
    {
        let (key, value) = (&c["key"], c["value"].trim());
        if is_secret_key(key) && !is_reference_or_placeholder(key, value) && value.len() >= 6 {
            return Some(found(
                "secret-key-value",
                "plaintext value of a secret key",
                Some(key),
                value,
            ));
        }
    }
    // Only a secret word or a long token makes a pair worth judging.
    let hint = SECRET_HINTS.iter().any(|h| lower.contains(h));
    if !hint && !line.split_whitespace().any(|w| w.len() >= 20) {
        return None;
    }
    let pairs = pairs(line);
    // `access key: …`, `Client secret …`: a key of two words.
    let mut previous: Option<&str> = None;
    for p in &pairs {
        let two = previous.map(|w| format!("{w}_{}", p.key));
        previous = Some(p.key);
        // `access key`, `Authentication key`: "key" alone says nothing.
        let two_words =
            p.key.eq_ignore_ascii_case("key") && two.as_deref().is_some_and(is_secret_key);
        if !(is_secret_key(p.key) || two_words) {
            continue;
        }
        let key = p.key;
        let mut value = p.value.trim_end_matches(['.', ']', '}']);
        let mut quoted = p.quoted;
        // `password: String = "…"`, `passwd: str = "…"`: a type between the
        // key and the literal.
        if LITERALS.contains(&value.to_ascii_lowercase().as_str())
            && let Some(c) = quoted_literal_re().captures(p.rest)
        {
            value = c.get(1).map_or("", |m| m.as_str());
            quoted = true;
        }
        if is_reference_or_placeholder(key, value)
            // `${X}` before its closing brace was trimmed off.
            || (p.value != value && p.value.starts_with(value) && is_reference_or_placeholder(key, p.value))
            || LITERALS.contains(&value.to_ascii_lowercase().as_str())
        {
            continue;
        }
        // `Buffer.from(…)`, `getPassword()`: a call computes the value.
        if !quoted && p.rest.contains(&format!("{value}(")) {
            continue;
        }
        // In key/value and terraform files a value follows `=` or `:`; words
        // after a secret word are a comment's prose.
        if p.loose && syntax != Syntax::Text {
            continue;
        }
        let plausible = match syntax {
            // Prose puts words after "token" or "secret"; a value there needs digits.
            Syntax::Text if p.loose && !quoted => {
                plausible_in_text(value) && value.chars().any(|c| c.is_ascii_digit())
            }
            // `DB_PASSWORD=…`: an environment assignment, read as in `.env`.
            Syntax::Text if is_env_assignment(p) => value.len() >= 4,
            Syntax::Text => plausible_in_text(value),
            Syntax::KeyValue => value.len() >= 4,
            Syntax::Terraform => value.len() >= 4 && quoted,
        };
        if plausible {
            return Some(found(
                "secret-key-value",
                "plaintext value of a secret key",
                Some(key),
                value,
            ));
        }
    }
    high_entropy(&pairs, no)
}

/// A long random-looking value assigned to any key (detect-secrets'
/// high-entropy strings), with a threshold above what words, paths, versions
/// and hex digests reach.
fn high_entropy(pairs: &[Pair], no: u32) -> Option<Finding> {
    let p = pairs
        .iter()
        .find(|p| !p.loose && is_high_entropy(p.key, p.value))?;
    Some(Finding {
        rule: "high-entropy-value",
        what: "high-entropy value",
        key: Some(p.key.to_string()),
        redacted: redact(p.value, 0),
        line: Some(no),
        end_line: None,
    })
}

/// A long random-looking value under a key that does not say it holds a
/// digest, an id, a certificate or prose.
fn is_high_entropy(key: &str, value: &str) -> bool {
    let words = key_words(key);
    let benign = words.iter().any(|w| {
        BENIGN_WORDS.contains(&w.as_str())
            || matches!(
                w.as_str(),
                "sha"
                    | "sha1"
                    | "sha256"
                    | "sha512"
                    | "image"
                    | "integrity"
                    | "uuid"
                    | "guid"
                    | "commit"
                    | "revision"
                    | "href"
                    | "src"
                    | "data"
                    | "tag"
                    | "cert"
                    | "certificate"
                    | "ca"
                    | "crt"
                    | "pub"
                    | "public"
                    | "publickey"
                    | "fingerprint"
                    | "signature"
                    | "nonce"
                    | "ciphertext"
                    | "encrypteddata"
                    | "value"
                    | "description"
                    | "message"
                    | "title"
            )
    });
    if benign || value.len() < 20 || value.len() > 200 || is_reference_or_placeholder(key, value) {
        return false;
    }
    let charset = value
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || "+/=_-".contains(ch));
    charset && classes(value) >= 3 && entropy(value) >= 4.0
}

/// `LS0tLS1CRUdJTi...`: a private key that was base64-encoded (Kubernetes
/// Secret data, CI variables) before landing in a file.
fn base64_private_key(line: &str, no: u32) -> Option<Finding> {
    let start = line.find("LS0t")?;
    let token: String = line[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "+/=".contains(*c))
        .collect();
    let decoded = decode_base64(&token)?;
    let text = String::from_utf8_lossy(&decoded);
    let mut inner = scan_text(&text, Syntax::Text)
        .into_iter()
        .filter(|f| f.rule == "private-key");
    inner.next().map(|_| Finding {
        rule: "private-key",
        what: "base64-encoded private key",
        key: None,
        redacted: "LS0t****".into(),
        line: Some(no),
        end_line: None,
    })
}

/// Standard base64 (padding optional); `None` on anything else.
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().take_while(|b| *b != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<(&'static str, u32)> {
        scan_text(text, Syntax::Text)
            .into_iter()
            .map(|f| (f.rule, f.line.unwrap()))
            .collect()
    }

    #[test]
    fn keys_are_split_into_words() {
        assert!(is_secret_key("db_password"));
        assert!(is_secret_key("AwsSecretKey"));
        assert!(is_secret_key("MYSQLPASS"));
        assert!(is_secret_key("api-key"));
        assert!(is_secret_key("X3_PSWD"));
        assert!(!is_secret_key("password_length"));
        assert!(!is_secret_key("token_url"));
        assert!(!is_secret_key("passengers"));
        assert!(!is_secret_key("pwdump"));
        assert!(!is_secret_key("fp_tokenized_value"));
    }

    #[test]
    fn references_and_placeholders_are_not_secrets() {
        for v in [
            "${DB_PASSWORD}",
            "$(API_KEY)",
            "{{ .Values.pw }}",
            "vault:secret/db#pw",
            "",
            "changeme",
            "********",
            "0xdeadbeef",
        ] {
            assert!(is_reference_or_placeholder("password", v), "{v}");
        }
        assert!(is_reference_or_placeholder("DB_PASSWORD", "DB_PASSWORD"));
        assert!(!is_reference_or_placeholder("password", "Aa1234321Bb"));
    }

    #[test]
    fn formats_assignments_and_key_blocks_are_found_and_never_shown() {
        let text = "AWS_ACCESS_KEY_ID=AKIAQ3EGRT7XWZ2LM4PN\nAWS_example=AKIAIOSFODNN7EXAMPLE\npassword = \"abc\"\ndb_password: Ce7shE0ENPiBlE\nurl: postgres://app:Tq8vLw2Rk@db:5432/app\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAn7sG5Zt4dQ1XJw9gE2b1ZtFqQJ5v8r2nq3xk1L0pV7m4t9s\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(
            rules(text),
            [
                ("aws-access-key-id", 1),
                ("secret-key-value", 4),
                ("url-password", 5),
                ("private-key", 6)
            ]
        );
        let all = format!("{:?}", scan_text(text, Syntax::Text));
        for secret in ["Q3EGRT7XWZ2LM4PN", "Ce7shE0ENPiBlE", "Tq8vLw2Rk", "MIIEow"] {
            assert!(!all.contains(secret), "{secret} leaked: {all}");
        }
    }

    #[test]
    fn comments_and_compose_secret_lists_are_not_values() {
        let compose = "services:\n  api:\n    # Secrets come from the secret store\n    secrets:\n      - app_db_password\n    environment:\n      DB_PASSWORD_FILE: /run/secrets/app_db_password\n";
        assert_eq!(scan_text(compose, Syntax::KeyValue), []);
        let tf = "# credentials from files under ~/.aws\nprovider \"aws\" {}\n";
        assert_eq!(scan_text(tf, Syntax::Terraform), []);
    }

    /// A random-looking value of `n` characters from a fixed seed, so the
    /// tests hold no value that reads as a real credential.
    fn random(n: usize, seed: u64) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                A[(x % A.len() as u64) as usize] as char
            })
            .collect()
    }

    #[test]
    fn command_lines_headers_and_urls_of_every_scheme_are_found() {
        let pw = random(14, 7);
        let tok = random(32, 11);
        for line in [
            format!("curl -u admin:{pw} https://api.internal/v1"),
            format!("curl --user 'deploy:{pw}' https://api.internal/v1"),
            format!("curl -H \"Authorization: Bearer {tok}\" https://api.internal"),
            format!("docker login -u ci -p {pw} registry.example.com"),
            format!("redis_url = \"redis://app:${pw}@cache:6379/0\""),
            format!("DATABASE_URL=jdbc:postgresql://db:5432/shop?user=shop&password={pw}"),
            format!("url: amqp://svc:{pw}@mq.internal:5672/"),
            format!(
                "SLACK=http://hooks.slack.com/services/T0{}/B0{}/{}",
                &tok[..8].to_uppercase(),
                &tok[8..16].to_uppercase(),
                &tok[..24]
            ),
            format!(
                "hook: https://hooks.slack.com/workflows/T0{}/A0{}/123456789012345678/{}",
                &tok[..8].to_uppercase(),
                &tok[8..16].to_uppercase(),
                &tok[..24]
            ),
            format!(
                "blob = \"https://acct.blob.core.windows.net/c/f?sv=2022-11-02&se=2030-01-01&sr=b&sp=r&sig={}%3D\"",
                random(43, 5)
            ),
            format!("accessId: AKIA{}", random(16, 3).to_uppercase()),
            format!("refToken: ghr_{}", random(36, 9)),
        ] {
            let found = scan_text(&line, Syntax::Text);
            assert_eq!(found.len(), 1, "{line}: {found:?}");
            let shown = format!("{found:?}");
            assert!(
                !shown.contains(&pw) && !shown.contains(&tok[..24]),
                "{line} leaked: {shown}"
            );
        }
    }

    #[test]
    fn stand_ins_after_a_real_prefix_and_prefixes_inside_other_text_are_not_secrets() {
        for line in [
            "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "token: glpat-ABCDEFGHIJKLMNOPQRST",
            "SLACK_BOT_TOKEN=xoxb-0000000000-0000000000000-xxxxxxxxxxxxxxxxxxxxxxxx",
            "AWS_ACCESS_KEY_ID=AKIAABCDEFGHIJKLMNOP",
            "GOOGLE_API_KEY=AIzaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "image: https://cdn.example.com/img/hugs-xoxo-banner-2019-large-final.png",
            "vault_token: s.THISSTRINGISALLUPPERCASE",
            "DATABRICKS_TOKEN=dapi1234567890abcdef1234567890abcdef",
            "password: AbCeFG123",
            "curl -u admin:$ADMIN_PASSWORD https://api.internal",
            "curl -H \"Authorization: Bearer ${TOKEN}\" https://api.internal",
            "url: postgresql://user:secret@localhost/db",
            "docker run -p 8080:80 nginx",
            "blob = \"https://acct.blob.core.windows.net/c?sv=2022-11-02&ss=b&srt=o&sp=r&se=2030-01-01\"",
        ] {
            assert_eq!(scan_text(line, Syntax::Text), [], "{line}");
        }
        // The stand-in word is not the whole value: random material follows.
        let found = scan_text(
            &format!("master_password = \"ChangeMe-{}!\"", &random(8, 2)),
            Syntax::Terraform,
        );
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn base64_decodes() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert!(decode_base64("not base64!").is_none());
    }

    #[test]
    fn the_plain_scans_say_what_str_contains_says() {
        let hays = [
            "",
            "p",
            "PASSWORD",
            "db_PassWord_x",
            "ÄPWDé",
            "xpwxd",
            "https://u:p@h",
            "pass:word",
            "Authorization: Bearer x",
            "tökén_KEY",
            "://",
            "a:/b",
        ];
        let needles = [
            "",
            "pw",
            "pwd",
            "password",
            "://",
            "pass:",
            "authorization",
            "key",
            "ö",
        ];
        for hay in hays {
            for needle in needles {
                assert_eq!(
                    contains(hay, needle),
                    hay.contains(needle),
                    "{hay:?} {needle:?}"
                );
                let needle = needle.to_lowercase();
                assert_eq!(
                    contains_ci(hay, &needle),
                    hay.to_ascii_lowercase().contains(&needle),
                    "{hay:?} {needle:?}"
                );
            }
        }
    }
}
