//! Playbooks end to end: `vigil serve` with a playbook directory. An SSH
//! brute-force alert runs a playbook that blocks its source address (served
//! by `GET /api/v1/blocklist` as text and JSON) and runs programs directly;
//! every action result is a searchable ledger event; manual blocks expire;
//! a playbook that would need a shell keeps the server from starting.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, TOKEN};
use serde_json::{json, Value};

fn poll(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}

fn have(p: &str) -> bool {
    let ok = Path::new(p).is_file();
    if !ok {
        println!("skipped: {p} is not present on this machine");
    }
    ok
}

fn brute_force(server: &Server, ip: &str) {
    let body: String = (0..10)
        .map(|i| {
            format!(
                "<38>Mar  3 09:14:{i:02} bastion sshd[4721]: Failed password for root from {ip} port {} ssh2\n",
                50000 + i
            )
        })
        .collect();
    let r = server.post("/api/v1/events", "text/plain", body);
    assert!(r.status().is_success(), "{}", r.status());
}

fn blocklist_text(server: &Server) -> String {
    let r = server.get("/api/v1/blocklist", &[]);
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    r.text().unwrap()
}

fn start(dir: &Path, playbooks: &[(&str, String)]) -> Server {
    let pdir = dir.join("playbooks");
    std::fs::create_dir_all(&pdir).unwrap();
    for (name, text) in playbooks {
        std::fs::write(pdir.join(name), text).unwrap();
    }
    let cfg = dir.join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            "[alerts]\nenabled = true\n\n[response]\nplaybook_dir = '{}'\nnever_block = [\"192.0.2.0/24\"]\n",
            pdir.display()
        ),
    )
    .unwrap();
    Server::start_with(
        &dir.join("data"),
        Some(TOKEN),
        &["--config", cfg.to_str().unwrap()],
    )
}

#[test]
fn a_brute_force_alert_blocks_its_source_and_every_action_is_in_the_ledger() {
    if !have("/bin/echo") || !have("/usr/bin/touch") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let marks = dir.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let block = format!(
        "id: ssh-block\nname: Block SSH brute force\nmatch:\n  rule_id: vigil.brute_force\nactions:\n  \
         - block_ip: {{field: source.ip, ttl: 1h, reason: ssh brute force}}\n  \
         - command: {{program: /bin/echo, args: [blocked, \"{{{{source.ip}}}}\", \"for {{{{user.name}}}}\"]}}\n  \
         - command: {{program: /usr/bin/touch, args: [\"{}/blocked-{{{{source.ip}}}}\"]}}\n    timeout: 5s\n  \
         - enrich_geoip:\n  \
         - incident: {{open_or_attach: true}}\n  \
         - set_assignee: {{user: oncall}}\n",
        marks.display()
    );
    let dry = "id: ssh-dry\nname: Rehearsal\ndry_run: true\nmatch: {rule_id: vigil.brute_force}\n\
               actions:\n  - block_ip: {address: 198.51.100.77, ttl: 1h}\n"
        .to_string();
    let other = "id: other\nname: Not this one\nmatch: {rule_id: sigma.*}\n\
                 actions:\n  - block_ip: {field: source.ip, ttl: 1h}\n"
        .to_string();
    let server = start(
        dir.path(),
        &[
            ("block.yml", block),
            ("dry.yaml", dry),
            ("other.yml", other),
        ],
    );

    brute_force(&server, "203.0.113.9");
    assert!(
        poll(|| blocklist_text(&server) == "203.0.113.9\n"),
        "{}",
        blocklist_text(&server)
    );

    // JSON, by query parameter and by Accept header.
    let v = server.get_json("/api/v1/blocklist", &[("format", "json")]);
    assert_eq!(v["total"], 1, "{v}");
    let e = &v["entries"][0];
    assert_eq!(e["address"], "203.0.113.9");
    assert_eq!(e["reason"], "ssh brute force");
    assert_eq!(e["source"], "playbook:ssh-block");
    assert_eq!(e["hits"], 1);
    assert!(e["expires_at"].as_str().unwrap() > e["created_at"].as_str().unwrap());
    let r = Server::client()
        .get(server.url("/api/v1/blocklist"))
        .bearer_auth(TOKEN)
        .header("accept", "application/json")
        .send()
        .unwrap();
    let j: Value = r.json().unwrap();
    assert_eq!(j["entries"][0]["address"], "203.0.113.9");

    // The touch command ran with the validated address as its argument.
    assert!(poll(|| marks.join("blocked-203.0.113.9").exists()));

    // Every action result is a ledger event: 6 from ssh-block, 1 from ssh-dry.
    let q = "event.dataset:vigil.response AND NOT vigil.input:audit";
    let found = server.wait_for(q, 7);
    assert_eq!(found["total"], 7, "{found}");
    let hits = found["hits"].as_array().unwrap();
    let by = |pb: &str, action: &str| -> Vec<&Value> {
        hits.iter()
            .filter(|h| {
                h["vigil"]["response"]["playbook"] == pb
                    && h["vigil"]["response"]["action"] == action
            })
            .collect()
    };
    let blocked = by("ssh-block", "block_ip");
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0]["event"]["action"], "ip_blocked");
    assert_eq!(blocked[0]["event"]["outcome"], "success");
    assert_eq!(blocked[0]["source"]["ip"], "203.0.113.9");
    assert_eq!(blocked[0]["rule"]["id"], "vigil.brute_force");
    let echo = by("ssh-block", "command")
        .into_iter()
        .find(|h| h["vigil"]["response"]["index"] == 1)
        .unwrap();
    assert_eq!(echo["event"]["outcome"], "success");
    assert_eq!(
        echo["vigil"]["response"]["data"]["stdout"],
        "blocked 203.0.113.9 for root\\n"
    );
    let geo = by("ssh-block", "enrich_geoip");
    assert_eq!(geo[0]["vigil"]["response"]["status"], "skipped");
    assert_eq!(
        geo[0]["event"]["reason"],
        "no GeoIP database configured ([response] geoip_city_db, geoip_asn_db)"
    );
    // The incident actions went to the incident store: one incident holds
    // the alert (whether the grouping policy or the playbook opened it) and
    // is assigned as the playbook said.
    let inc = by("ssh-block", "incident");
    assert_eq!(inc[0]["event"]["outcome"], "success", "{:#}", inc[0]);
    let assign = by("ssh-block", "set_assignee");
    assert_eq!(assign[0]["event"]["outcome"], "success", "{:#}", assign[0]);
    let list = server.get_json("/api/v1/incidents", &[]);
    let assigned: Vec<&Value> = list["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["assignee"] == "oncall")
        .collect();
    assert_eq!(assigned.len(), 1, "{list:#}");
    // The dry run recorded what it would do and did nothing.
    let rehearsal = by("ssh-dry", "block_ip");
    assert_eq!(rehearsal[0]["vigil"]["response"]["dry_run"], true);
    assert_eq!(rehearsal[0]["event"]["action"], "playbook_action");
    assert_eq!(
        rehearsal[0]["event"]["reason"],
        "would block 198.51.100.77 for 1h"
    );
    assert!(!blocklist_text(&server).contains("198.51.100.77"));
    assert!(by("other", "block_ip").is_empty());
    // The dedicated query finds the block.
    let ip_blocked = server.search(
        "event.dataset:vigil.response AND event.action:ip_blocked AND NOT vigil.input:audit",
        10,
    );
    assert_eq!(ip_blocked["total"], 1, "{ip_blocked}");

    // The playbooks are listed, and a dry run on the stored alert does nothing.
    let pbs = server.get_json("/api/v1/playbooks", &[]);
    assert_eq!(pbs["total"], 3);
    assert_eq!(pbs["playbooks"][0]["id"], "ssh-block");
    let alerts = server.get_json("/api/v1/alerts", &[("rule", "vigil.brute_force")]);
    let alert_id = alerts["alerts"][0]["id"].as_str().unwrap().to_string();
    let r = server.post(
        "/api/v1/playbooks/ssh-block/dry-run",
        "application/json",
        json!({"alert_id": alert_id}).to_string(),
    );
    assert_eq!(r.status(), 200);
    let d: Value = r.json().unwrap();
    assert_eq!(d["matches"], true);
    assert_eq!(d["results"][0]["detail"], "would block 203.0.113.9 for 1h");
    assert!(d["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["dry_run"] == true));
    let r = server.post(
        "/api/v1/playbooks/nope/dry-run",
        "application/json",
        json!({"alert_id": alert_id}).to_string(),
    );
    assert_eq!(r.status(), 404);
    assert_eq!(
        server.search(q, 100)["total"],
        7,
        "a dry run through the API writes no action events"
    );

    // The CLI lists the block.
    let out = common::run_ok(common::vigil().args([
        "blocklist",
        "list",
        "--server",
        &server.url(""),
        "--token",
        TOKEN,
    ]));
    assert!(
        out.contains("203.0.113.9") && out.contains("playbook:ssh-block"),
        "{out}"
    );
}

#[test]
fn manual_blocks_are_guarded_expire_and_can_be_removed() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    let add = |body: Value| server.post("/api/v1/blocklist", "application/json", body.to_string());

    // The never-block allowlist holds for people too.
    for refused in ["127.0.0.1", "10.1.2.3", "192.0.2.10", "0.0.0.0/0"] {
        let r = add(json!({"address": refused, "ttl": "1h"}));
        assert_eq!(r.status(), 422, "{refused}");
        let v: Value = r.json().unwrap();
        assert!(v["error"].as_str().unwrap().starts_with("refused: "), "{v}");
    }
    for (bad, why) in [
        (
            json!({"address": "203.0.113.9/24", "ttl": "1h"}),
            "bits set past",
        ),
        (
            json!({"address": "203.0.113.9; rm -rf /", "ttl": "1h"}),
            "is not an IP address",
        ),
        (
            json!({"address": "203.0.113.9", "ttl": "400d"}),
            "out of range",
        ),
        (
            json!({"address": "203.0.113.9", "ttl": "1h", "extra": 1}),
            "unknown field",
        ),
    ] {
        let r = add(bad.clone());
        assert_eq!(r.status(), 400, "{bad}");
        let v: Value = r.json().unwrap();
        assert!(v["error"].as_str().unwrap().contains(why), "{v}");
    }
    assert_eq!(blocklist_text(&server), "");

    // A network, removed by its URL-encoded CIDR.
    let r = add(json!({"address": "198.51.100.0/24", "ttl": "1h", "reason": "scanner"}));
    assert_eq!(r.status(), 201);
    let v: Value = r.json().unwrap();
    assert_eq!(v["entry"]["source"], "user:admin (VIGIL_ADMIN_TOKEN)");
    assert_eq!(blocklist_text(&server), "198.51.100.0/24\n");
    let del = |addr: &str| {
        Server::client()
            .delete(server.url(&format!("/api/v1/blocklist/{addr}")))
            .bearer_auth(TOKEN)
            .send()
            .unwrap()
    };
    // A bouncer's viewer token reads the list and may not change it.
    let r = server.post(
        "/api/v1/tokens",
        "application/json",
        json!({"name": "nft-bouncer", "role": "viewer"}).to_string(),
    );
    assert_eq!(r.status(), 201);
    let viewer = r.json::<Value>().unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = Server::client()
        .get(server.url("/api/v1/blocklist"))
        .bearer_auth(&viewer)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), "198.51.100.0/24\n");
    let r = Server::client()
        .post(server.url("/api/v1/blocklist"))
        .bearer_auth(&viewer)
        .json(&json!({"address": "203.0.113.1", "ttl": "1h"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = Server::client()
        .delete(server.url("/api/v1/blocklist/198.51.100.0%2F24"))
        .bearer_auth(&viewer)
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);

    assert_eq!(del("198.51.100.0%2F24").status(), 200);
    assert_eq!(del("198.51.100.0%2F24").status(), 404);
    assert_eq!(blocklist_text(&server), "");

    // A short TTL: listed, then no longer served.
    let out = common::run_ok(common::vigil().args([
        "blocklist",
        "add",
        "203.0.113.50",
        "--ttl",
        "3s",
        "--reason",
        "short",
        "--server",
        &server.url(""),
        "--token",
        TOKEN,
    ]));
    assert!(out.starts_with("blocked 203.0.113.50 until "), "{out}");
    assert!(poll(|| blocklist_text(&server).is_empty()));
    let v = server.get_json("/api/v1/blocklist", &[("format", "json")]);
    assert_eq!(v["total"], 0);

    // Manual changes are ledger events naming who made them.
    let q = "event.dataset:vigil.response AND NOT vigil.input:audit";
    let found = server.wait_for(q, 3);
    let actions: Vec<&str> = found["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "ip_blocked").count(),
        2,
        "{actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| **a == "ip_unblocked").count(),
        1,
        "{actions:?}"
    );
}

#[test]
fn a_playbook_with_shell_metacharacters_keeps_the_server_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = dir.path().join("playbooks");
    std::fs::create_dir_all(&pdir).unwrap();
    std::fs::write(
        pdir.join("bad.yml"),
        "id: bad\nname: Bad\nactions:\n  - command: {program: /usr/bin/logger, args: [\"blocked; rm -rf /\"]}\n",
    )
    .unwrap();
    let err = common::refused_config(&format!(
        "[response]\nplaybook_dir = '{}'\n",
        pdir.display()
    ));
    assert!(
        err.contains(&format!(
            "{}: playbook bad: actions[0] (command): args[0] \"blocked; rm -rf /\" contains the shell metacharacter ';'",
            pdir.join("bad.yml").display()
        )),
        "{err}"
    );

    // `vigil playbook check` refuses it offline, with the same error.
    let out = common::vigil()
        .args(["playbook", "check"])
        .arg(&pdir)
        .env_remove("VIGIL_CONFIG")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("playbook bad: actions[0] (command)"),
        "{stderr}"
    );
    assert!(stderr.contains("1 of 1 playbook files refused"), "{stderr}");

    std::fs::write(
        pdir.join("bad.yml"),
        "id: good\nname: Good\nactions:\n  - block_ip: {field: source.ip, ttl: 1h}\n",
    )
    .unwrap();
    let out = common::run_ok(
        common::vigil()
            .args(["playbook", "check"])
            .arg(&pdir)
            .env_remove("VIGIL_CONFIG")
            .current_dir(dir.path()),
    );
    assert!(out.contains("1 playbooks ok"), "{out}");
}
