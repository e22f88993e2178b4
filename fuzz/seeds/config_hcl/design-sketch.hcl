project = "shop"

policy "protected-deletes" {
  builtin     = true
  enforcement = "hard-mandatory"
}
policy "cost-guard" {
  source      = "policies/cost_guard.wasm"
  enforcement = "soft-mandatory"
  settings    = { max_monthly = 100, types = ["aws_instance"] }
  memory      = "512MiB"
  timeout     = "10s"
}

environment "staging" {
  terraform {
    dir       = "infra/staging"
    var_files = ["staging.tfvars"]
    vars      = { region = "eu-west-1" }
  }
  helm "api" {
    chart     = "charts/api"
    namespace = "staging"
    values    = ["charts/api/values-staging.yaml"]
  }
  scan {
    images  = ["registry.example.com/api:1.2.0"]
    fail_on = "CRITICAL"
  }
  migrations { dir = "db/migrations" }
  health {
    url     = "http://127.0.0.1:8080/healthz"
    timeout = "60s"
  }
  smoke_test { command = ["./scripts/smoke.sh", "staging"] }
  approval { self_approve = true }
}

environment "production" {
  promote_from = "staging"
  strategy     = "blue-green"
  approval {
    approvers = ["alice@example.com", "bob@example.com"]
    min       = 1
  }
  rollback { runbook = "docs/ROLLBACK.md" }
  monitor {
    window           = "15m"
    error_rate_query = ["./scripts/error_rate.sh"]
    max_error_rate   = 0.01
  }
}
