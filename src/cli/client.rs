//! A small blocking HTTP client for the server's API.

use anyhow::{bail, Context};

use super::ServerArgs;

/// An authenticated API client.
pub struct Client {
    base: String,
    token: String,
    http: reqwest::blocking::Client,
}

impl Client {
    /// Builds a client from `--server`/`--token`; `None` when no server is given.
    pub fn from_args(
        a: &ServerArgs,
        timeout: Option<std::time::Duration>,
    ) -> anyhow::Result<Option<Client>> {
        let Some(base) = &a.server else {
            return Ok(None);
        };
        let Some(token) = &a.token else {
            bail!("--server needs --token (or VIGIL_TOKEN)");
        };
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--server must be an http:// or https:// URL, got {base:?}");
        }
        let http = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .build()?;
        Ok(Some(Client {
            base,
            token: token.clone(),
            http,
        }))
    }

    /// GET `path` with query parameters; returns the response after checking the status.
    pub fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<reqwest::blocking::Response> {
        let url = format!("{}{}", self.base, path);
        let resp = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .query(query)
            .send()
            .with_context(|| format!("requesting {url}"))?;
        check(resp)
    }
}

fn check(resp: reqwest::blocking::Response) -> anyhow::Result<reqwest::blocking::Response> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status();
    let body = resp.text().unwrap_or_default();
    let msg = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or(body);
    bail!("server answered {status}: {msg}")
}
