//! Team notifications: a JSON POST with a Slack-compatible `text` field.
//! A failed notification is a warning; it never fails a deploy.

use std::time::Duration;

pub fn send(webhook: &str, text: &str, details: serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let body = serde_json::json!({"text": text, "opsdeploy": details});
    let request = agent
        .post(webhook)
        .header("Content-Type", "application/json")
        .send(body.to_string());
    match request {
        Ok(_) => tracing::debug!(webhook = %redact_url(webhook), "notification sent"),
        Err(e) => {
            tracing::warn!(
                "could not notify {}: {e} (the deploy is not affected)",
                redact_url(webhook)
            );
        }
    }
}

/// Webhook URLs embed their secret in the path: show scheme and host only.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?']).next().unwrap_or("");
            format!("{scheme}://{host}/****")
        }
        None => "****".into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn webhook_secrets_are_not_shown() {
        assert_eq!(
            super::redact_url("https://hooks.slack.com/services/T0/B0/XYZ"),
            "https://hooks.slack.com/****"
        );
    }
}
