# opsdeploy for a containerised app on Kubernetes: terraform for what the app
# needs around it, a helm chart for the app itself, trivy for its image.
# Secrets never appear here or in values files: the chart reads them from a
# Kubernetes Secret (secretKeyRef) your platform creates from the vault.

project = "k8s-app"

# Team mode: approvals, the audit log, plan bundles and locks live in
# PostgreSQL, so every person and every (throwaway) CI runner sees the same
# history. The URL comes from the environment: a CI secret, or your own
# credentials when you plan from a laptop.
state {
  backend = "postgres"
  url     = env("OPSDEPLOY_DATABASE_URL")
}

# The six built-in safety policies (no-secrets, protected-deletes,
# expand-contract, gates, promotion, image-scan) run in every environment even
# without a block here; a block changes their settings. Only this turns one off,
# and every plan shows it:
#   policy "image-scan" {
#     enabled = false
#     reason  = "why it does not apply here"
#   }

policy "no-secrets" {
  builtin     = true
  enforcement = "hard-mandatory"
}

policy "protected-deletes" {
  builtin     = true
  enforcement = "hard-mandatory"
  settings = {
    addresses = ["module.app.terraform_data.database"]
  }
}

policy "image-scan" {
  builtin     = true
  enforcement = "hard-mandatory"
}

policy "gates" {
  builtin     = true
  enforcement = "hard-mandatory"
}

policy "promotion" {
  builtin      = true
  enforcement  = "hard-mandatory"
  environments = ["production"]
}

# Your own policy (policies/replica-floor), built with `opsdeploy policy build
# policies/ --out build/policies`; advisory until the team trusts it.
# policy "replica-floor" {
#   source      = "build/policies/replica_floor.wasm"
#   enforcement = "advisory"
#   settings    = { min = 2 }
# }

environment "staging" {
  terraform { dir = "infra/staging" }
  helm "app" {
    chart     = "charts/app"
    namespace = "app-staging"
    values    = ["charts/app/values-staging.yaml"]
  }
  scan {
    # The image the chart deploys, by the digest in charts/app/values.yaml.
    images  = ["registry.example.com/team/app@sha256:d37360cc0b1806e4bb676c4e226c9bf8a5dba79a8d9f348fd64a8e643fdf5db0"]
    paths   = ["charts", "infra"]
    fail_on = "HIGH"
  }
  health {
    url     = "https://app.staging.example.com/healthz"
    timeout = "120s"
  }
  smoke_test { command = ["sh", "scripts/smoke.sh", "https://app.staging.example.com"] }
  approval { self_approve = true }
  # Staging is watched too, over a shorter window: a degradation rolls the
  # deploy back here, before production sees it.
  monitor {
    window           = "5m"
    error_rate_query = ["sh", "scripts/error_rate.sh", "https://app.staging.example.com"]
    max_error_rate   = 0.01
  }
}

environment "production" {
  promote_from = "staging"
  strategy     = "blue-green"
  terraform { dir = "infra/production" }
  helm "app" {
    chart     = "charts/app"
    namespace = "app-production"
    values    = ["charts/app/values-production.yaml"]
  }
  scan {
    images  = ["registry.example.com/team/app@sha256:d37360cc0b1806e4bb676c4e226c9bf8a5dba79a8d9f348fd64a8e643fdf5db0"]
    paths   = ["charts", "infra"]
    fail_on = "MEDIUM"
  }
  # Each colour answers at <colour>.app.example.com (the chart routes it):
  # the new colour is checked there before it gets traffic, and after.
  health {
    url     = "https://{color}.app.example.com/healthz"
    timeout = "180s"
  }
  smoke_test { command = ["sh", "scripts/smoke.sh", "https://app.example.com"] }
  approval {
    approvers = ["lead@example.com", "oncall@example.com"]
    min       = 1
    # Approvals count only when signed by a key listed here (ssh-keygen's
    # allowed_signers format): add each approver's public key.
    signers   = "deploy/allowed_signers"
  }
  rollback { runbook = "docs/ROLLBACK.md" }
  monitor {
    window           = "15m"
    error_rate_query = ["sh", "scripts/error_rate.sh", "https://app.example.com"]
    max_error_rate   = 0.01
  }
}
