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
        self.request(reqwest::Method::GET, path, query, None)
    }

    /// Any method with query parameters and an optional JSON body; returns
    /// the response after checking the status.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<reqwest::blocking::Response> {
        let url = format!("{}{}", self.base, path);
        let mut req = self
            .http
            .request(method, &url)
            .bearer_auth(&self.token)
            .query(query);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().with_context(|| format!("requesting {url}"))?;
        check(resp)
    }

    /// [`Client::request`] answering the parsed JSON body.
    pub fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        self.request(method, path, &[], body)?
            .json()
            .context("the server's answer is not JSON")
    }
}

/// Text as one URL path segment: RFC 3986 unreserved characters and `:`
/// stay, everything else (`/` of a CIDR included) is percent-encoded.
pub fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
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
    bail!(
        "server answered {status}: {}",
        vigil_event::sanitize::display(&msg)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_escape_separators() {
        assert_eq!(path_segment("0a1b-c_d"), "0a1b-c_d");
        assert_eq!(path_segment("10.0.0.0/8"), "10.0.0.0%2F8");
        assert_eq!(path_segment("2001:db8::/32"), "2001:db8::%2F32");
        assert_eq!(path_segment("a b?#"), "a%20b%3F%23");
    }
}
