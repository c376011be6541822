//! Starting the real `vigil` binary for end-to-end tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "vgl_test_token_5f0c2b7e9a1d4c3b8e6f0a2d4c6e8f01";

pub fn vigil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
}

/// A running server on ephemeral loopback ports; killed on drop.
pub struct Server {
    pub child: Child,
    pub http: SocketAddr,
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    pub data_dir: PathBuf,
    pub stdout_lines: Vec<String>,
}

impl Server {
    pub fn start(data_dir: &Path) -> Server {
        Self::start_with(data_dir, Some(TOKEN), &[])
    }

    pub fn start_with(data_dir: &Path, token: Option<&str>, extra: &[&str]) -> Server {
        let mut cmd = serve_cmd(data_dir);
        cmd.args(extra);
        match token {
            Some(t) => cmd.env("VIGIL_ADMIN_TOKEN", t),
            None => cmd.env_remove("VIGIL_ADMIN_TOKEN"),
        };
        let mut child = cmd.spawn().expect("spawn vigil serve");
        let lines = read_banner(&mut child);
        let addr = |scheme: &str| -> SocketAddr {
            lines
                .iter()
                .find_map(|l| l.split(scheme).nth(1)?.parse().ok())
                .unwrap_or_else(|| panic!("no {scheme} address in {lines:?}"))
        };
        Server {
            http: addr("http://"),
            udp: addr("udp://"),
            tcp: addr("tcp://"),
            child,
            data_dir: data_dir.into(),
            stdout_lines: lines,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    pub fn client() -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap()
    }

    /// An authenticated GET of `path` with `query`.
    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> reqwest::blocking::Response {
        Self::client()
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .query(query)
            .send()
            .unwrap()
    }

    /// An authenticated GET that must succeed with a JSON body.
    pub fn get_json(&self, path: &str, query: &[(&str, &str)]) -> serde_json::Value {
        let r = self.get(path, query);
        assert!(
            r.status().is_success(),
            "GET {path} {query:?}: {}",
            r.status()
        );
        r.json().unwrap()
    }

    /// The Prometheus text of `/metrics`.
    pub fn metrics(&self) -> String {
        let r = self.get("/metrics", &[]);
        assert!(r.status().is_success(), "GET /metrics: {}", r.status());
        r.text().unwrap()
    }

    /// An authenticated POST of `body` with the given content type.
    pub fn post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::blocking::Body>,
    ) -> reqwest::blocking::Response {
        Self::client()
            .post(self.url(path))
            .bearer_auth(TOKEN)
            .header("content-type", content_type)
            .body(body)
            .send()
            .unwrap()
    }

    /// An authenticated POST of NDJSON lines.
    pub fn post_ndjson(
        &self,
        path: &str,
        body: impl Into<reqwest::blocking::Body>,
    ) -> reqwest::blocking::Response {
        self.post(path, "application/x-ndjson", body)
    }

    pub fn search(&self, q: &str, limit: usize) -> serde_json::Value {
        self.get_json("/api/v1/search", &[("q", q), ("limit", &limit.to_string())])
    }

    /// Polls until `q` has at least `n` hits or the time runs out.
    pub fn wait_for(&self, q: &str, n: u64) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.search(q, 1000);
            if v["total"].as_u64().unwrap() >= n || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn kill9(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }

    pub fn terminate(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of one series (a metric name with its labels, as printed) in
/// Prometheus text.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series)
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

/// `vigil serve` on ephemeral loopback ports with `data_dir`, printing its
/// banner on stdout; add flags, environment and spawn.
pub fn serve_cmd(data_dir: &Path) -> Command {
    let mut cmd = vigil();
    cmd.args([
        "serve",
        "--http",
        "127.0.0.1:0",
        "--syslog",
        "127.0.0.1:0",
        "--log",
        "warn",
        "--data-dir",
    ])
    .arg(data_dir)
    .env_remove("VIGIL_CONFIG")
    .current_dir(data_dir.parent().unwrap_or(data_dir))
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    cmd
}

/// The banner lines of a spawned `vigil serve`, up to and including
/// `ready`; stdout keeps being drained afterwards so the child never blocks.
pub fn read_banner(child: &mut Child) -> Vec<String> {
    let mut reader = BufReader::new(child.stdout.take().expect("stdout piped"));
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            panic!("vigil serve exited early; output so far: {lines:?}");
        }
        let l = line.trim().to_string();
        let done = l.starts_with("ready");
        lines.push(l);
        if done {
            break;
        }
    }
    std::thread::spawn(move || for _ in reader.lines() {});
    lines
}

/// Starts `vigil serve` with `config` as its config file, expects it to
/// refuse to start, and returns what it printed on stderr.
pub fn refused_config(config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(&cfg, config).unwrap();
    let out = serve_cmd(&dir.path().join("data"))
        .arg("--config")
        .arg(&cfg)
        .env("VIGIL_ADMIN_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success(), "vigil serve started with {config:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a CLI command that must succeed; returns its standard output.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run vigil");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Runs a CLI command that must succeed and prints NDJSON; returns the objects.
pub fn ndjson(cmd: &mut Command) -> Vec<serde_json::Value> {
    run_ok(cmd)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}
