//! The no-secrets yardstick: what opsdeploy finds and what it wrongly flags,
//! on cases nobody tuned a detector to.
//!
//! Two parts. Cases the team writes here: values generated from vendors'
//! documented token formats, passwords, URL and command-line credentials,
//! webhooks, and stand-ins of every kind (placeholders after a real prefix,
//! stand-in words, references and templates, patterned strings, ordinary
//! settings), each written into terraform, tfvars, helm values, a rendered
//! manifest, `.env`, a shell script and `opsdeploy.hcl` the way users write
//! them. Third-party labelled values read from the corpus: Nosey Parker's
//! rule examples (labels in `tests/data/accuracy/noseyparker-labels.json`)
//! and the detect-secrets and CredSweeper samples (labels in
//! `tests/data/secrets-labels.json`).
//!
//! `no_secrets_yardstick_meets_its_targets` holds the shipped policy to
//! recall ≥ 0.97 and a false-positive rate ≤ 0.01 and prints every category;
//! `bench/accuracy/peers.sh` runs the peers on the same cases (exported by
//! the ignored `export_yardstick`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use opsdeploy::input::InputDocument;
use policy_sdk::Section;
use serde::{Deserialize, Serialize};

use crate::support::{corpus, evaluate_builtin, repo};

/// One labelled place in the yardstick.
#[derive(Debug, Clone, Serialize)]
pub struct Instance {
    /// File, relative to the yardstick directory.
    pub file: String,
    /// 1-based line; `0`: anywhere in the file.
    pub line: u32,
    pub secret: bool,
    pub category: String,
    /// `team` (written here), `noseyparker`, `credsweeper`, `detect-secrets`.
    pub source: &'static str,
}

/// The yardstick materialised: files by path with their `files`-section
/// kind, rendered manifests, and the labelled instances.
pub struct Yardstick {
    pub files: Vec<(String, &'static str, String)>,
    /// Manifest name → instance index (the file is `manifests.yaml`).
    pub manifests: BTreeMap<String, usize>,
    pub instances: Vec<Instance>,
}

// ---------------------------------------------------------------------------
// Generated values

/// A deterministic xorshift generator: the same cases on every run, and no
/// value in the repository that reads as a live credential.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick(&mut self, alphabet: &str, n: usize) -> String {
        let a = alphabet.as_bytes();
        (0..n)
            .map(|_| a[(self.next() % a.len() as u64) as usize] as char)
            .collect()
    }
}

const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const HEX: &str = "0123456789abcdef";
const DIGITS: &str = "0123456789";

fn base64(raw: &[u8]) -> String {
    let t = B64.as_bytes();
    let mut out = String::new();
    for chunk in raw.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(t[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn uuid(r: &mut Rng) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        r.pick(HEX, 8),
        r.pick(HEX, 4),
        r.pick(HEX, 4),
        r.pick(HEX, 4),
        r.pick(HEX, 12)
    )
}

/// Tokens in each vendor's documented shape: (what, secret-sounding key,
/// generator).
type Gen = fn(&mut Rng) -> String;
const VENDOR: &[(&str, &str, Gen)] = &[
    ("AWS access key id", "aws_access_key_id", |r| {
        format!("AKIA{}", r.pick("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16))
    }),
    ("GitHub classic token", "github_token", |r| {
        format!("ghp_{}", r.pick(ALNUM, 36))
    }),
    ("GitHub fine-grained token", "GH_PAT", |r| {
        format!("github_pat_{}_{}", r.pick(ALNUM, 22), r.pick(ALNUM, 59))
    }),
    ("GitHub OAuth token", "gh_oauth_token", |r| {
        format!("gho_{}", r.pick(ALNUM, 36))
    }),
    ("GitLab token", "GITLAB_TOKEN", |r| {
        format!("glpat-{}", r.pick(B64URL, 20))
    }),
    ("Slack bot token", "slack_bot_token", |r| {
        format!(
            "xoxb-{}-{}-{}",
            r.pick(DIGITS, 11),
            r.pick(DIGITS, 13),
            r.pick(ALNUM, 24)
        )
    }),
    ("Slack user token", "SLACK_USER_TOKEN", |r| {
        format!(
            "xoxp-{}-{}-{}-{}",
            r.pick(DIGITS, 12),
            r.pick(DIGITS, 12),
            r.pick(DIGITS, 12),
            r.pick(HEX, 32)
        )
    }),
    ("Stripe secret key", "STRIPE_SECRET_KEY", |r| {
        format!("sk_live_{}", r.pick(ALNUM, 24))
    }),
    ("Stripe restricted key", "stripe_restricted_key", |r| {
        format!("rk_live_{}", r.pick(ALNUM, 32))
    }),
    ("Google API key", "google_api_key", |r| {
        format!("AIza{}", r.pick(B64URL, 35))
    }),
    ("OpenAI project key", "OPENAI_API_KEY", |r| {
        format!(
            "sk-proj-{}T3BlbkFJ{}",
            r.pick(B64URL, 64),
            r.pick(B64URL, 64)
        )
    }),
    ("Anthropic key", "ANTHROPIC_API_KEY", |r| {
        format!("sk-ant-api03-{}AA", r.pick(B64URL, 93))
    }),
    ("Vault token", "VAULT_TOKEN", |r| {
        format!("hvs.{}", r.pick(B64URL, 90))
    }),
    ("Terraform Cloud token", "TFE_TOKEN", |r| {
        format!("{}.atlasv1.{}", r.pick(ALNUM, 14), r.pick(ALNUM, 67))
    }),
    ("Docker Hub token", "DOCKERHUB_TOKEN", |r| {
        format!("dckr_pat_{}", r.pick(B64URL, 27))
    }),
    ("npm token", "NPM_TOKEN", |r| {
        format!("npm_{}", r.pick(ALNUM, 36))
    }),
    ("PyPI token", "PYPI_API_TOKEN", |r| {
        format!("pypi-AgEIcHlwaS5vcmc{}", r.pick(B64URL, 120))
    }),
    ("SendGrid key", "SENDGRID_API_KEY", |r| {
        format!("SG.{}.{}", r.pick(B64URL, 22), r.pick(B64URL, 43))
    }),
    ("DigitalOcean token", "DIGITALOCEAN_TOKEN", |r| {
        format!("dop_v1_{}", r.pick(HEX, 64))
    }),
    ("Hugging Face token", "HF_TOKEN", |r| {
        format!(
            "hf_{}",
            r.pick("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", 34)
        )
    }),
    (
        "1Password service account token",
        "OP_SERVICE_ACCOUNT_TOKEN",
        |r| format!("ops_eyJ{}", r.pick(B64, 240)),
    ),
    ("Shopify access token", "SHOPIFY_ACCESS_TOKEN", |r| {
        format!("shpat_{}", r.pick(HEX, 32))
    }),
    ("JSON Web Token", "id_token", |r| {
        format!(
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ{}.{}",
            r.pick(B64URL, 60),
            r.pick(B64URL, 43)
        )
    }),
    ("Telegram bot token", "TELEGRAM_BOT_TOKEN", |r| {
        format!("{}:AA{}", r.pick(DIGITS, 10), r.pick(B64URL, 33))
    }),
    ("Azure client secret", "azure_client_secret", |r| {
        format!("{}8Q~{}", r.pick(ALNUM, 3), r.pick(ALNUM, 34))
    }),
    ("Grafana service account token", "GRAFANA_TOKEN", |r| {
        format!("glsa_{}_{}", r.pick(ALNUM, 32), r.pick(HEX, 8))
    }),
    ("New Relic user key", "NEW_RELIC_API_KEY", |r| {
        format!(
            "NRAK-{}",
            r.pick("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 27)
        )
    }),
    ("age secret key", "SOPS_AGE_KEY", |r| {
        format!(
            "AGE-SECRET-KEY-1{}",
            r.pick("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58)
        )
    }),
    ("Databricks token", "DATABRICKS_TOKEN", |r| {
        format!("dapi{}", r.pick(HEX, 32))
    }),
    ("Atlassian API token", "JIRA_API_TOKEN", |r| {
        format!("ATATT3xFfGF0{}", r.pick(B64URL, 180))
    }),
    ("Doppler token", "DOPPLER_TOKEN", |r| {
        format!("dp.st.prd.{}", r.pick(ALNUM, 43))
    }),
    ("AWS secret access key", "aws_secret_access_key", |r| {
        r.pick(B64, 40)
    }),
];

/// Keys that do not sound secret, where vendor tokens still turn up.
const PLAIN_KEYS: &[&str] = &[
    "accessId",
    "refToken",
    "sourceContent",
    "value",
    "data",
    "config",
    "init",
    "payload",
    "note",
    "bootstrap",
    "settings",
    "parameter",
];

const PASSWORD_KEYS: &[&str] = &[
    "db_password",
    "master_password",
    "POSTGRES_PASSWORD",
    "admin_pass",
    "redis_password",
    "smtp_pass",
    "jwt_secret",
    "client_secret",
    "secret_key_base",
    "session_secret",
    "encryption_key",
    "signing_key",
    "api_secret",
    "webhook_secret",
    "MYSQL_ROOT_PASSWORD",
    "rabbitmq_password",
    "ldap_bind_password",
    "keystore_pass",
];

/// (category, key, value) of every case with a secret.
fn secrets() -> Vec<(&'static str, String, String)> {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::new();
    for (i, (_, key, make)) in VENDOR.iter().enumerate() {
        out.push(("vendor token", key.to_string(), make(&mut r)));
        let plain = PLAIN_KEYS[i % PLAIN_KEYS.len()];
        out.push(("vendor token, plain key", plain.to_string(), make(&mut r)));
    }
    for (i, key) in PASSWORD_KEYS.iter().enumerate() {
        let value = match i % 6 {
            // A stand-in word with random material is a real password.
            0 => format!("ChangeMe-{}!", r.pick(HEX, 8)),
            1 => format!("Welcome{}{}", r.pick(DIGITS, 2), r.pick(ALNUM, 6)),
            2 => r.pick(B64, 24),
            3 => r.pick(HEX, 32),
            4 => format!(
                "{}-{}-{}",
                r.pick(ALNUM, 5),
                r.pick(ALNUM, 5),
                r.pick(ALNUM, 5)
            ),
            _ => r.pick(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#%^&*",
                18,
            ),
        };
        out.push(("password under a secret key", key.to_string(), value));
    }
    let pw = |r: &mut Rng| r.pick(ALNUM, 16);
    let urls: Vec<(&str, String)> = vec![
        (
            "database_url",
            format!("postgres://app:{}@db.internal:5432/shop", pw(&mut r)),
        ),
        (
            "DATABASE_URL",
            format!(
                "postgresql://shop:{}@10.0.3.17/shop?sslmode=require",
                pw(&mut r)
            ),
        ),
        (
            "mysql_dsn",
            format!("mysql://root:{}@mysql:3306/app", pw(&mut r)),
        ),
        (
            "cache_url",
            format!("redis://default:${}@cache.internal:6379/0", pw(&mut r)),
        ),
        (
            "REDIS_URL",
            format!("rediss://:{}@redis.example.net:6380", pw(&mut r)),
        ),
        (
            "mongo_uri",
            format!(
                "mongodb+srv://svc:{}@cluster0.ab1cd.mongodb.net/app?retryWrites=true",
                pw(&mut r)
            ),
        ),
        (
            "broker_url",
            format!("amqp://worker:{}@mq.internal:5672/vhost", pw(&mut r)),
        ),
        (
            "jdbc_url",
            format!(
                "jdbc:postgresql://db:5432/shop?user=shop&password={}",
                pw(&mut r)
            ),
        ),
        (
            "JDBC_URL",
            format!(
                "jdbc:sqlserver://sql.internal:1433;databaseName=shop;user=sa;password={}",
                pw(&mut r)
            ),
        ),
        (
            "datasource",
            format!(
                "jdbc:mysql://db:3306/shop?useSSL=true&user=app&password={}&serverTimezone=UTC",
                pw(&mut r)
            ),
        ),
        (
            "repo_url",
            format!(
                "https://ci-bot:{}@git.example.com/platform/infra.git",
                pw(&mut r)
            ),
        ),
        (
            "smtp_url",
            format!("smtp://mailer:{}@smtp.example.com:587", pw(&mut r)),
        ),
        (
            "sftp",
            format!("sftp://deploy:{}@files.example.com/upload", pw(&mut r)),
        ),
        (
            "elastic",
            format!("https://elastic:{}@es.internal:9200", pw(&mut r)),
        ),
    ];
    for (key, url) in urls {
        out.push(("URL credential", key.to_string(), url));
    }
    let commands = vec![
        format!(
            "curl -fsS -u admin:{} https://api.internal/health",
            pw(&mut r)
        ),
        format!(
            "curl --user 'deploy:{}' https://registry.internal/v2/",
            pw(&mut r)
        ),
        format!(
            "curl --user=ci:{} https://nexus.internal/repository",
            pw(&mut r)
        ),
        format!(
            "curl -H 'Authorization: Basic {}' https://api.internal/v1",
            base64(format!("svc:{}", pw(&mut r)).as_bytes())
        ),
        format!(
            "curl -H \"Authorization: Bearer {}\" https://api.internal/v1/deploy",
            r.pick(B64URL, 40)
        ),
        format!("docker login -u ci -p {} registry.example.com", pw(&mut r)),
        format!(
            "docker login --username ci --password {} ghcr.io",
            pw(&mut r)
        ),
        format!("mysql -h db -u root -p{} shop < dump.sql", pw(&mut r)),
        format!("sshpass -p {} ssh deploy@10.0.0.5", pw(&mut r)),
        format!(
            "wget --password={} https://files.internal/backup.tar",
            pw(&mut r)
        ),
        format!(
            "helm repo add internal https://charts.internal --username ci --password {}",
            pw(&mut r)
        ),
        format!(
            "vault login -method=userpass username=ci password={}",
            pw(&mut r)
        ),
    ];
    for c in commands {
        out.push(("command line", "healthcheck".to_string(), c));
    }
    let webhooks = vec![
        format!(
            "https://hooks.slack.com/services/T{}/B{}/{}",
            r.pick(UPPER, 10),
            r.pick(UPPER, 10),
            r.pick(ALNUM, 24)
        ),
        format!(
            "http://hooks.slack.com/services/T{}/B{}/{}",
            r.pick(UPPER, 9),
            r.pick(UPPER, 11),
            r.pick(ALNUM, 24)
        ),
        format!(
            "https://hooks.slack.com/workflows/T{}/A{}/{}/{}",
            r.pick(UPPER, 10),
            r.pick(UPPER, 10),
            r.pick(DIGITS, 18),
            r.pick(ALNUM, 24)
        ),
        format!(
            "https://discord.com/api/webhooks/{}/{}",
            r.pick(DIGITS, 18),
            r.pick(B64URL, 68)
        ),
        format!(
            "https://acme.webhook.office.com/webhookb2/{}@{}/IncomingWebhook/{}/{}",
            uuid(&mut r),
            uuid(&mut r),
            r.pick(HEX, 32),
            uuid(&mut r)
        ),
    ];
    for (i, w) in webhooks.into_iter().enumerate() {
        let key = [
            "notify_url",
            "webhook",
            "alerts_endpoint",
            "hook",
            "channel",
        ][i];
        out.push(("webhook URL", key.to_string(), w));
    }
    for key in ["backup_url", "artifact_source"] {
        let sig = r.pick(B64, 43).replace('+', "%2B").replace('/', "%2F");
        out.push((
            "Azure SAS signature",
            key.to_string(),
            format!("https://acct{}.blob.core.windows.net/backups/db.bak?sp=r&st=2025-01-01T00:00:00Z&se=2026-01-01T00:00:00Z&spr=https&sv=2022-11-02&sr=b&sig={sig}%3D", r.pick(DIGITS, 3)),
        ));
    }
    out
}

/// (category, key, value) of every case without one.
fn non_secrets() -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    let mut add = |category, key: &str, value: String| out.push((category, key.to_string(), value));
    let x = |c: char, n: usize| c.to_string().repeat(n);
    for (key, value) in [
        ("github_token", format!("ghp_{}", x('x', 36))),
        ("GITHUB_TOKEN", format!("ghp_{}", x('X', 36))),
        ("gh_token", format!("ghp_{}", x('0', 36))),
        (
            "GH_PAT",
            "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij".to_string(),
        ),
        ("GITLAB_TOKEN", format!("glpat-{}", x('x', 20))),
        ("gitlab_token", "glpat-ABCDEFGHIJKLMNOPQRST".to_string()),
        (
            "SLACK_BOT_TOKEN",
            format!("xoxb-0000000000-0000000000000-{}", x('x', 24)),
        ),
        (
            "slack_token",
            format!("xoxb-{}-{}-{}", x('x', 10), x('x', 12), x('x', 24)),
        ),
        ("aws_access_key_id", format!("AKIA{}", x('X', 16))),
        ("AWS_ACCESS_KEY_ID", "AKIAABCDEFGHIJKLMNOP".to_string()),
        ("aws_key", format!("AKIA{}", x('0', 16))),
        ("google_api_key", format!("AIza{}", x('a', 35))),
        ("GOOGLE_API_KEY", format!("AIza{}", x('0', 35))),
        ("stripe_key", format!("sk_live_{}", x('x', 24))),
        (
            "STRIPE_SECRET_KEY",
            "sk_live_abcdefghijklmnopqrstuvwx".to_string(),
        ),
        ("VAULT_TOKEN", format!("hvs.{}", x('x', 24))),
        ("dockerhub_token", format!("dckr_pat_{}", x('x', 27))),
        ("NPM_TOKEN", format!("npm_{}", x('0', 36))),
        ("HF_TOKEN", format!("hf_{}", x('x', 34))),
        (
            "SENDGRID_API_KEY",
            format!("SG.{}.{}", x('x', 22), x('x', 43)),
        ),
        (
            "DATABRICKS_TOKEN",
            "dapi1234567890abcdef1234567890abcdef".to_string(),
        ),
        ("OPENAI_API_KEY", format!("sk-proj-{}", x('x', 48))),
    ] {
        add("placeholder after a real prefix", key, value);
    }
    for (key, value) in [
        ("db_password", "changeme"),
        ("master_password", "CHANGEME"),
        ("admin_pass", "change-me"),
        ("POSTGRES_PASSWORD", "<your-password>"),
        ("api_key", "<API_KEY>"),
        ("api_token", "your-api-token-here"),
        ("OPENAI_API_KEY", "YOUR_OPENAI_API_KEY"),
        ("client_secret", "REPLACE_ME"),
        ("jwt_secret", "replace-with-a-real-secret"),
        ("smtp_pass", "TODO"),
        ("redis_password", "xxxxxxxx"),
        ("ldap_bind_password", "********"),
        ("secret_key", "secret"),
        ("password", "password"),
        ("db_pass", "P@ssw0rd"),
        ("admin_password", "Passw0rd!"),
        ("session_secret", "supersecret"),
        ("app_secret", "mysecretpassword"),
        ("keystore_pass", "changeit"),
        ("auth_token", "AbCeFG123"),
        ("vault_token", "s.THISSTRINGISALLUPPERCASE"),
        ("api_key", "example-api-key"),
        ("webhook_secret", "dummy-secret"),
        ("signing_key", "test-signing-key"),
        ("access_token", "fake-token"),
        ("password", "Secret123"),
        ("rabbitmq_password", "guest"),
        ("encryption_key", "0000000000000000000000000000000000000000"),
    ] {
        add("stand-in under a secret key", key, value.to_string());
    }
    for (key, value) in [
        ("db_password", "${DB_PASSWORD}"),
        ("api_token", "$(API_TOKEN)"),
        ("password", "{{ .Values.db.password }}"),
        ("apiKey", "{{ .Values.apiKey | quote }}"),
        ("db_password", "vault:secret/data/shop/db#password"),
        (
            "master_password",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/db-AbCdEf",
        ),
        ("token", "op://prod/ci-token/credential"),
        ("client_secret", "ref+vault://secret/app#/client_secret"),
        ("password", "%DB_PASSWORD%"),
        (
            "api_key",
            "@Microsoft.KeyVault(SecretUri=https://shop-kv.vault.azure.net/secrets/api-key/)",
        ),
        ("redis_password", "$REDIS_PASSWORD"),
        ("smtp_password", "${env:SMTP_PASSWORD}"),
    ] {
        add("reference or template", key, value.to_string());
    }
    for (key, value) in [
        (
            "banner_image",
            "https://cdn.example.com/img/hugs-xoxo-banner-2019-large-final.png",
        ),
        (
            "description",
            "Set GITHUB_TOKEN to a ghp_ token with repo scope in CI",
        ),
        (
            "docs",
            "Stripe keys start with sk_live_ in production and sk_test_ in test mode",
        ),
        ("install_dir", "/opt/akia/releases/current/bin"),
        ("runbook", "docs/runbooks/glpat-token-rotation.md"),
        ("help", "create an AIza key in the Google Cloud console"),
        (
            "slack_channel",
            "https://example.slack.com/archives/C01ABCD2EFG",
        ),
        (
            "azure_sas_policy",
            "sp=r&st=2025-01-01T00:00:00Z&se=2026-01-01T00:00:00Z&spr=https&sv=2022-11-02&sr=b",
        ),
    ] {
        add("token prefix in other text", key, value.to_string());
    }
    for (key, value) in [
        ("build_seed", "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6"),
        ("charset", "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
        ("test_vector", "0123456789abcdef0123456789abcdef"),
        ("keyboard_layout", "qwertyuiopasdfghjklzxcvbnm123456"),
        ("pattern", "abcabcabcabcabcabcabcabcabcabc"),
        ("api_key", "1234567890abcdef1234567890abcdef"),
        ("secret_token", "ABCDEF0123456789ABCDEF0123456789"),
    ] {
        add("patterned string", key, value.to_string());
    }
    let mut r = Rng(0x2545_f491_4f6c_dd1d);
    for (key, value) in [
        ("image_digest", format!("sha256:{}", r.pick(HEX, 64))),
        ("git_commit", r.pick(HEX, 40)),
        ("request_id", uuid(&mut r)),
        ("tenant_id", uuid(&mut r)),
        ("subnet_id", format!("subnet-0{}", r.pick(HEX, 16))),
        ("vpc_id", format!("vpc-0{}", r.pick(HEX, 16))),
        (
            "kms_key_id",
            format!("arn:aws:kms:eu-west-1:123456789012:key/{}", uuid(&mut r)),
        ),
        ("password_length", "24".to_string()),
        (
            "password_policy",
            "min_length=16,require_symbols=true".to_string(),
        ),
        (
            "token_url",
            "https://auth.example.com/oauth/token".to_string(),
        ),
        ("secret_name", "shop/db-credentials".to_string()),
        ("api_key_header", "X-Api-Key".to_string()),
        (
            "image",
            format!(
                "registry.example.com/shop/api:1.4.2@sha256:{}",
                r.pick(HEX, 64)
            ),
        ),
        ("integrity", format!("sha512-{}==", r.pick(B64, 86))),
        ("etag", r.pick(HEX, 32)),
        ("checksum", r.pick(HEX, 64)),
        ("session_timeout", "3600".to_string()),
        ("jwt_issuer", "https://auth.example.com/".to_string()),
        ("schedule", "0 */6 * * *".to_string()),
        ("owner_email", "platform-team@example.com".to_string()),
        ("health_url", "http://127.0.0.1:8080/healthz".to_string()),
        (
            "database_host",
            "shop-db.cluster-c1a2b3c4d5e6.eu-west-1.rds.amazonaws.com".to_string(),
        ),
        (
            "database_url",
            "postgres://app@db.internal:5432/shop".to_string(),
        ),
        ("redis_url", "redis://cache.internal:6379/0".to_string()),
        ("token_ttl", "15m".to_string()),
        ("key_pair_name", "deploy-2025".to_string()),
        (
            "certificate_arn",
            format!(
                "arn:aws:acm:eu-west-1:123456789012:certificate/{}",
                uuid(&mut r)
            ),
        ),
        (
            "public_key",
            format!(
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{} deploy@ci",
                r.pick(B64, 43)
            ),
        ),
        ("secret_ref", "db-credentials".to_string()),
        ("auth_method", "oidc".to_string()),
    ] {
        add("ordinary setting", key, value);
    }
    out
}

// ---------------------------------------------------------------------------
// Carriers: one file per format, one line per case.

fn env_name(key: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if c.is_ascii_uppercase() && prev_lower {
            out.push('_');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        });
    }
    out
}

fn hcl_string(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

fn yaml_string(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A growing file: its text and the line the next push starts on.
#[derive(Default)]
struct Carrier {
    text: String,
    lines: u32,
}

impl Carrier {
    /// Appends `block`; returns the line of its `at`-th line (0-based).
    fn push(&mut self, block: &str, at: u32) -> u32 {
        let line = self.lines + 1 + at;
        self.text.push_str(block);
        if !block.ends_with('\n') {
            self.text.push('\n');
        }
        self.lines += block.lines().count() as u32;
        line
    }
}

fn is_command(category: &str) -> bool {
    category == "command line"
}

/// Writes every team case into the seven carriers.
fn team_cases(y: &mut Yardstick) {
    let mut tf = Carrier::default();
    let mut tfvars = Carrier::default();
    let mut values = Carrier::default();
    let mut manifests = Carrier::default();
    let mut env = Carrier::default();
    let mut script = Carrier::default();
    let mut hcl = Carrier::default();
    script.push("#!/usr/bin/env bash\nset -euo pipefail\n", 0);
    let cases: Vec<(bool, &str, String, String)> = secrets()
        .into_iter()
        .map(|(c, k, v)| (true, c, k, v))
        .chain(non_secrets().into_iter().map(|(c, k, v)| (false, c, k, v)))
        .collect();
    for (i, (secret, category, key, value)) in cases.into_iter().enumerate() {
        let snake = env_name(&key).to_ascii_lowercase();
        let upper = env_name(&key);
        let mut add = |file: &str, line: u32| {
            y.instances.push(Instance {
                file: file.to_string(),
                line,
                secret,
                category: category.to_string(),
                source: "team",
            })
        };
        let (l_tf, l_hcl) = if is_command(category) {
            (
                tf.push(
                    &format!(
                        "resource \"terraform_data\" \"check_{i}\" {{\n  provisioner \"local-exec\" {{\n    command = {}\n  }}\n}}\n",
                        hcl_string(&value)
                    ),
                    2,
                ),
                hcl.push(
                    &format!(
                        "environment \"e{i}\" {{\n  smoke_test {{ command = [\"sh\", \"-c\", {}] }}\n}}\n",
                        hcl_string(&value)
                    ),
                    1,
                ),
            )
        } else {
            (
                tf.push(
                    &format!(
                        "resource \"aws_lambda_function\" \"f{i}\" {{\n  function_name = \"f{i}\"\n  environment {{\n    variables = {{\n      {upper} = {}\n    }}\n  }}\n}}\n",
                        hcl_string(&value)
                    ),
                    4,
                ),
                hcl.push(
                    &format!(
                        "environment \"e{i}\" {{\n  terraform {{\n    dir  = \"infra\"\n    vars = {{ {snake} = {} }}\n  }}\n}}\n",
                        hcl_string(&value)
                    ),
                    3,
                ),
            )
        };
        add("main.tf", l_tf);
        add("opsdeploy.hcl", l_hcl);
        add(
            "prod.tfvars",
            tfvars.push(&format!("{snake}_{i} = {}", hcl_string(&value)), 0),
        );
        add(
            "values.yaml",
            values.push(&format!("app{i}:\n  {key}: {}", yaml_string(&value)), 1),
        );
        let name = format!("cm-{i}");
        manifests.push(
            &format!(
                "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  {key}: {}",
                yaml_string(&value)
            ),
            6,
        );
        y.manifests.insert(name, y.instances.len());
        y.instances.push(Instance {
            file: "manifests.yaml".into(),
            line: manifests.lines,
            secret,
            category: category.to_string(),
            source: "team",
        });
        let quoted = if value.contains('\'') {
            format!("\"{}\"", value.replace('"', "\\\""))
        } else if value.contains(['"', ' ', '$']) {
            format!("'{value}'")
        } else {
            value.clone()
        };
        let mut add = |file: &str, line: u32| {
            y.instances.push(Instance {
                file: file.to_string(),
                line,
                secret,
                category: category.to_string(),
                source: "team",
            })
        };
        add("app.env", env.push(&format!("{upper}_{i}={quoted}"), 0));
        let line = if is_command(category) {
            script.push(&value, 0)
        } else {
            script.push(&format!("export {upper}={quoted}"), 0)
        };
        add("deploy.sh", line);
    }
    for (name, kind, c) in [
        ("main.tf", "terraform", tf),
        ("prod.tfvars", "tfvars", tfvars),
        ("values.yaml", "helm-values", values),
        ("app.env", "env", env),
        ("deploy.sh", "script", script),
        ("opsdeploy.hcl", "opsdeploy", hcl),
        ("manifests.yaml", "manifests", manifests),
    ] {
        y.files.push((name.to_string(), kind, c.text));
    }
}

// ---------------------------------------------------------------------------
// Third-party cases, read from the corpus.

#[derive(Deserialize)]
struct NpFile {
    rules: Vec<NpRule>,
}

#[derive(Deserialize)]
struct NpRule {
    id: String,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    examples: Option<Vec<String>>,
    /// Written empty (`negative_examples:`) in some rule files.
    #[serde(default)]
    negative_examples: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct NpLabels {
    excluded_rule_categories: Vec<String>,
    excluded_rules: BTreeMap<String, String>,
    /// `rule#i` → (label, why).
    examples: BTreeMap<String, (String, String)>,
    negatives: BTreeMap<String, (String, String)>,
}

const NP_RULES: &str = "noseyparker/crates/noseyparker/data/default/builtin/rules";

fn noseyparker_cases(y: &mut Yardstick) {
    let labels: NpLabels = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/data/accuracy/noseyparker-labels.json"))
            .expect("tests/data/accuracy/noseyparker-labels.json"),
    )
    .expect("noseyparker labels parse");
    let dir = corpus(NP_RULES);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    names.sort();
    let mut used = BTreeSet::new();
    for path in names {
        let file: NpFile = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for rule in file.rules {
            let excluded_rule = labels.excluded_rules.contains_key(&rule.id)
                || rule
                    .categories
                    .iter()
                    .any(|c| labels.excluded_rule_categories.contains(c));
            let (examples, negatives) = (
                rule.examples.unwrap_or_default(),
                rule.negative_examples.unwrap_or_default(),
            );
            for (negative, list) in [(false, &examples), (true, &negatives)] {
                if !negative && excluded_rule {
                    continue;
                }
                for (i, text) in list.iter().enumerate() {
                    let id = format!("{}#{i}", rule.id);
                    let table = if negative {
                        &labels.negatives
                    } else {
                        &labels.examples
                    };
                    let label = table.get(&id).map(|(l, _)| l.as_str());
                    if label.is_some() {
                        used.insert((negative, id.clone()));
                    }
                    let secret = match (negative, label) {
                        (_, Some("excluded")) => continue,
                        (false, None) | (true, Some("secret")) => true,
                        (false, Some("stand-in")) | (true, None) => false,
                        (_, Some(other)) => panic!("{id}: unknown label {other}"),
                    };
                    let kind = if negative { "neg" } else { "ex" };
                    let name = format!("noseyparker/{}.{kind}{i}.txt", rule.id);
                    y.files.push((name.clone(), "other", text.clone()));
                    y.instances.push(Instance {
                        file: name,
                        line: 0,
                        secret,
                        category: "Nosey Parker rule examples".into(),
                        source: "noseyparker",
                    });
                }
            }
        }
    }
    for (negative, table) in [(false, &labels.examples), (true, &labels.negatives)] {
        for id in table.keys() {
            assert!(
                used.contains(&(negative, id.clone())),
                "noseyparker-labels.json labels {id}, which the corpus does not have"
            );
        }
    }
}

#[derive(Deserialize)]
struct SampleLabels {
    files: Vec<SampleFile>,
    excluded: Vec<SampleExcluded>,
}

#[derive(Deserialize)]
struct SampleFile {
    file: String,
    secrets: Vec<Vec<u32>>,
}

#[derive(Deserialize)]
struct SampleExcluded {
    file: String,
    #[serde(default)]
    lines: Vec<u32>,
}

/// detect-secrets' and CredSweeper's samples: a labelled secret is found when
/// any of its lines is; every other non-blank line is a negative.
fn sample_cases(y: &mut Yardstick) {
    let labels: SampleLabels = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/data/secrets-labels.json")).unwrap(),
    )
    .unwrap();
    let excluded: BTreeSet<(&str, u32)> = labels
        .excluded
        .iter()
        .flat_map(|e| e.lines.iter().map(move |l| (e.file.as_str(), *l)))
        .collect();
    for f in &labels.files {
        let source = match f.file.split('/').next() {
            Some("credsweeper") => "credsweeper",
            Some("detect-secrets") => "detect-secrets",
            _ => continue,
        };
        let text = String::from_utf8_lossy(&std::fs::read(corpus(&f.file)).unwrap()).into_owned();
        // Numbered base names in one directory: peers skip paths and names
        // that mention tests or samples.
        let base = f.file.rsplit('/').next().unwrap_or(&f.file);
        let name = format!("third-party/{:03}-{base}", y.files.len());
        let category = format!("{source} samples");
        for secret in &f.secrets {
            // Multi-line secrets: the first line stands for the block.
            y.instances.push(Instance {
                file: name.clone(),
                line: secret[0],
                secret: true,
                category: category.clone(),
                source,
            });
        }
        for (i, line) in text.lines().enumerate() {
            let no = i as u32 + 1;
            let labelled = f.secrets.iter().any(|s| s.contains(&no));
            if line.trim().is_empty() || labelled || excluded.contains(&(f.file.as_str(), no)) {
                continue;
            }
            y.instances.push(Instance {
                file: name.clone(),
                line: no,
                secret: false,
                category: category.clone(),
                source,
            });
        }
        y.files.push((name, "other", text));
    }
}

pub fn yardstick() -> Yardstick {
    let mut y = Yardstick {
        files: Vec::new(),
        manifests: BTreeMap::new(),
        instances: Vec::new(),
    };
    team_cases(&mut y);
    noseyparker_cases(&mut y);
    sample_cases(&mut y);
    y
}

// ---------------------------------------------------------------------------
// opsdeploy on the yardstick

/// Which instances the shipped no-secrets policy flags. A multi-line secret
/// in a sample counts when any of its lines is flagged.
pub fn no_secrets_verdicts(y: &Yardstick) -> Vec<bool> {
    let mut files = Vec::new();
    let mut release = None;
    for (name, kind, text) in &y.files {
        if *kind == "manifests" {
            let rendered = opsdeploy::adapters::helm::parse_manifests("yardstick", text).unwrap();
            let manifests: Vec<_> = rendered.iter().map(|r| r.as_input()).collect();
            release = Some(serde_json::json!([{
                "release": "yardstick", "chart": "yardstick", "namespace": "yardstick",
                "manifests": manifests,
            }]));
        } else {
            files.push(serde_json::json!({"path": name, "kind": kind, "content": text}));
        }
    }
    let mut doc = InputDocument::from_slice(
        "yardstick",
        br#"{"schema_version":1,"environment":{"name":"staging","project":"yardstick"}}"#,
    )
    .unwrap();
    doc.set(Section::Files, &files);
    if let Some(release) = &release {
        doc.set(Section::Helm, release);
    }
    let violations = evaluate_builtin("no-secrets", &doc);
    let mut lines: BTreeSet<(String, u32)> = BTreeSet::new();
    let mut files_hit: BTreeSet<String> = BTreeSet::new();
    let mut manifests_hit: BTreeSet<String> = BTreeSet::new();
    for v in &violations {
        match (&v.path, v.line) {
            (Some(p), Some(l)) => {
                // A finding spans its block (a private key): count every line.
                lines.insert((p.clone(), l));
                files_hit.insert(p.clone());
            }
            (Some(p), None) => {
                files_hit.insert(p.clone());
            }
            _ => {
                if let Some(name) = v.address.as_deref().and_then(|a| a.rsplit('/').next()) {
                    manifests_hit.insert(name.to_string());
                }
            }
        }
    }
    let by_manifest: BTreeMap<usize, &String> = y.manifests.iter().map(|(n, i)| (*i, n)).collect();
    y.instances
        .iter()
        .enumerate()
        .map(|(i, inst)| match by_manifest.get(&i) {
            Some(name) => manifests_hit.contains(*name),
            None if inst.line == 0 => files_hit.contains(&inst.file),
            None => lines.contains(&(inst.file.clone(), inst.line)),
        })
        .collect()
}

/// Recall and false-positive rate, overall and per category.
pub struct Score {
    pub rows: Vec<(String, usize, usize, usize, usize)>,
}

impl Score {
    /// (category, secrets, found, negatives, flagged).
    pub fn of(y: &Yardstick, found: &[bool]) -> Score {
        let mut by: BTreeMap<String, (usize, usize, usize, usize)> = BTreeMap::new();
        for (inst, hit) in y.instances.iter().zip(found) {
            let row = by.entry(inst.category.clone()).or_default();
            if inst.secret {
                row.0 += 1;
                row.1 += *hit as usize;
            } else {
                row.2 += 1;
                row.3 += *hit as usize;
            }
        }
        Score {
            rows: by
                .into_iter()
                .map(|(c, (a, b, n, f))| (c, a, b, n, f))
                .collect(),
        }
    }

    pub fn total(&self) -> (usize, usize, usize, usize) {
        self.rows.iter().fold((0, 0, 0, 0), |t, r| {
            (t.0 + r.1, t.1 + r.2, t.2 + r.3, t.3 + r.4)
        })
    }
}

fn misses(y: &Yardstick, found: &[bool]) -> Vec<String> {
    y.instances
        .iter()
        .zip(found)
        .filter(|(inst, hit)| inst.secret != **hit)
        .map(|(inst, hit)| {
            format!(
                "{} {}:{} ({})",
                if *hit { "false positive" } else { "missed" },
                inst.file,
                inst.line,
                inst.category
            )
        })
        .collect()
}

#[test]
fn no_secrets_yardstick_meets_its_targets() {
    let y = yardstick();
    let found = no_secrets_verdicts(&y);
    let score = Score::of(&y, &found);
    println!(
        "{:<36} {:>14} {:>16}",
        "category", "recall", "false positives"
    );
    for (c, a, b, n, f) in &score.rows {
        let recall = if *a > 0 {
            format!("{b}/{a}")
        } else {
            "-".into()
        };
        let fp = if *n > 0 {
            format!("{f}/{n}")
        } else {
            "-".into()
        };
        println!("{c:<36} {recall:>14} {fp:>16}");
    }
    let (a, b, n, f) = score.total();
    let (recall, fp_rate) = (b as f64 / a as f64, f as f64 / n as f64);
    println!(
        "no-secrets yardstick: recall {recall:.3} ({b}/{a}), false-positive rate {fp_rate:.4} ({f}/{n})"
    );
    let wrong = misses(&y, &found);
    for m in &wrong {
        println!("  {m}");
    }
    assert!(
        a >= 1000 && n >= 1000,
        "the yardstick shrank: {a} secrets, {n} negatives"
    );
    assert!(recall >= 0.97, "recall {recall:.3} < 0.97");
    assert!(fp_rate <= 0.01, "false-positive rate {fp_rate:.4} > 0.01");
}

/// Writes the yardstick's files, labels and opsdeploy's verdicts to
/// `$OPSDEPLOY_YARDSTICK_DIR/secrets` for `bench/accuracy/peers.sh`.
#[test]
#[ignore = "run by bench/accuracy/peers.sh"]
fn export_yardstick() {
    let out = std::env::var_os("OPSDEPLOY_YARDSTICK_DIR")
        .expect("set OPSDEPLOY_YARDSTICK_DIR to the directory to write the yardstick into");
    let dir = Path::new(&out).join("secrets");
    let y = yardstick();
    let found = no_secrets_verdicts(&y);
    for (name, _, text) in &y.files {
        let path = dir.join("files").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    #[derive(Serialize)]
    struct Labelled<'a> {
        #[serde(flatten)]
        instance: &'a Instance,
        opsdeploy: bool,
    }
    let labelled: Vec<Labelled> = y
        .instances
        .iter()
        .zip(&found)
        .map(|(instance, hit)| Labelled {
            instance,
            opsdeploy: *hit,
        })
        .collect();
    std::fs::write(
        dir.join("labels.json"),
        serde_json::to_string_pretty(&labelled).unwrap(),
    )
    .unwrap();
    println!("wrote {} instances to {}", labelled.len(), dir.display());
}
