# opsdeploy quickstart: runs offline. terraform_data stands in for cloud
# resources, scripts/app.py for the deployed app, SQLite for the database.

project = "quickstart"

# The six built-in safety policies (no-secrets, protected-deletes,
# expand-contract, gates, promotion, image-scan) run in every environment even
# without a block here; a block changes their settings. Only this turns one off,
# and every plan shows it:
#   policy "image-scan" {
#     enabled = false
#     reason  = "why it does not apply here"
#   }

policy "protected-deletes" {
  builtin     = true
  enforcement = "hard-mandatory"
  settings = {
    # terraform_data stands in for a database here; protect it like one.
    addresses = ["module.app.terraform_data.database"]
  }
}

policy "gates" {
  builtin     = true
  enforcement = "hard-mandatory"
}

policy "expand-contract" {
  builtin     = true
  enforcement = "hard-mandatory"
}

policy "no-secrets" {
  builtin     = true
  enforcement = "hard-mandatory"
}

# The quickstart ships no container image; add `scan { images = [...] }` to an
# environment and this policy judges trivy's report of each one.
policy "image-scan" {
  builtin     = true
  enforcement = "hard-mandatory"
}

policy "promotion" {
  builtin      = true
  enforcement  = "hard-mandatory"
  environments = ["production"]
}

environment "staging" {
  terraform { dir = "infra/staging" }
  migrations {
    dir     = "db/migrations"
    command = ["python3", "scripts/migrate.py", "staging", "{file}"]
  }
  health {
    url      = "http://127.0.0.1:18081/healthz"
    timeout  = "10s"
    interval = "500ms"
  }
  smoke_test { command = ["sh", "scripts/smoke.sh", "staging", "18081"] }
  approval { self_approve = true }
  # Staging is watched too: a degradation rolls the deploy back here, before
  # production ever sees it.
  monitor {
    window           = "3s"
    interval         = "1s"
    error_rate_query = ["curl", "-fsS", "http://127.0.0.1:18081/error-rate"]
    max_error_rate   = 0.01
  }
}

environment "production" {
  promote_from = "staging"
  terraform { dir = "infra/production" }
  migrations {
    dir     = "db/migrations"
    command = ["python3", "scripts/migrate.py", "production", "{file}"]
  }
  health {
    url      = "http://127.0.0.1:18082/healthz"
    timeout  = "20s"
    interval = "500ms"
  }
  smoke_test { command = ["sh", "scripts/smoke.sh", "production", "18082"] }
  approval {
    approvers = ["alice@example.com", "bob@example.com"]
    min       = 1
    # Approvals count only when signed by a key listed here (ssh-keygen's
    # allowed_signers format); scripts/quickstart.sh writes alice's and bob's.
    signers   = "deploy/allowed_signers"
  }
  rollback { runbook = "docs/ROLLBACK.md" }
  monitor {
    window           = "3s"
    interval         = "1s"
    error_rate_query = ["curl", "-fsS", "http://127.0.0.1:18082/error-rate"]
    max_error_rate   = 0.01
  }
}
