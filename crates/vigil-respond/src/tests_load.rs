//! Load-time refusals: each case its own test, with the exact error.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use crate::guard::{parse_net, NeverBlock};
use crate::playbook::{parse, Action, BlockTarget, LoadContext};

fn cx() -> LoadContext {
    LoadContext {
        never_block: NeverBlock::new(&[parse_net("198.51.100.0/24").unwrap()], true),
        channels: Some(BTreeSet::from(["soc-hook".to_owned()])),
        max_ttl: Duration::from_secs(7 * 86_400),
        default_timeout: Duration::from_secs(10),
        outbound: Default::default(),
    }
}

fn refused(actions: &str) -> String {
    let yaml = format!("id: pb-1\nname: Test\nactions:\n{actions}");
    parse(&yaml, Path::new("/etc/vigil/playbooks/pb.yml"), &cx())
        .unwrap_err()
        .to_string()
}

#[test]
fn a_good_playbook_loads_with_every_action() {
    let yaml = r#"
id: ssh-brute-force
name: Contain SSH brute force
enabled: true
match:
  rule_id: "vigil.brute_*"
  min_severity: high
  tags: [attack.t1110]
  entity: {host.name: bastion}
dry_run: false
actions:
  - incident: {open_or_attach: true}
  - set_severity: {level: critical}
  - set_assignee: {user: alice}
  - enrich_geoip
  - block_ip: {field: source.ip, ttl: 1h, reason: ssh brute force}
    timeout: 5s
  - block_ip: {address: 203.0.113.0/24, ttl: 10m}
  - command: {program: /usr/sbin/ipset, args: [add, vigil-block, "{{source.ip}}", timeout, "3600"]}
    timeout: 30s
  - webhook: {url: "https://idp.example.com/api/disable", fields: {user: "{{user.name}}", action: disable}}
  - search: {query: "source.ip:{{source.ip}}", since: 24h, limit: 5}
  - notify: {channel: soc-hook}
"#;
    let pb = parse(yaml, Path::new("ssh.yml"), &cx()).unwrap();
    assert_eq!(pb.id, "ssh-brute-force");
    assert_eq!(pb.steps.len(), 10);
    let kinds: Vec<_> = pb.steps.iter().map(|s| s.action.kind()).collect();
    assert_eq!(
        kinds,
        [
            "incident",
            "set_severity",
            "set_assignee",
            "enrich_geoip",
            "block_ip",
            "block_ip",
            "command",
            "webhook",
            "search",
            "notify"
        ]
    );
    assert_eq!(pb.steps[0].timeout, Duration::from_secs(10));
    assert_eq!(pb.steps[4].timeout, Duration::from_secs(5));
    match &pb.steps[5].action {
        Action::BlockIp { target, ttl, .. } => {
            assert_eq!(
                *target,
                BlockTarget::Literal(parse_net("203.0.113.0/24").unwrap())
            );
            assert_eq!(*ttl, Duration::from_secs(600));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn refuses_unknown_fields_in_an_action() {
    assert_eq!(
        refused("  - block_ip: {field: source.ip, ttl: 1h, duration: 5}\n"),
        "/etc/vigil/playbooks/pb.yml: playbook pb-1: actions[0] (block_ip): unknown field `duration`, expected one of `field`, `address`, `ttl`, `reason`"
    );
}

#[test]
fn refuses_unknown_top_level_fields() {
    let e = parse(
        "id: pb-1\nname: T\nrun_as: root\nactions:\n  - enrich_geoip\n",
        Path::new("pb.yml"),
        &cx(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("pb.yml: playbook pb-1: unknown field `run_as`, expected one of"),
        "{e}"
    );
}

#[test]
fn refuses_an_unknown_action() {
    assert_eq!(
        refused("  - format_disk: {}\n"),
        "/etc/vigil/playbooks/pb.yml: playbook pb-1: actions[0] (format_disk): unknown action \"format_disk\" (known: notify, incident, set_severity, set_assignee, enrich_geoip, block_ip, command, webhook, search)"
    );
}

#[test]
fn refuses_a_relative_program() {
    assert_eq!(
        refused("  - command: {program: ipset, args: [add, x]}\n"),
        "/etc/vigil/playbooks/pb.yml: playbook pb-1: actions[0] (command): program \"ipset\" is not an absolute path (write e.g. /usr/sbin/ipset)"
    );
}

#[test]
fn refuses_shell_metacharacters_in_the_program() {
    assert_eq!(
        refused("  - command: {program: \"/usr/bin/touch;reboot\"}\n"),
        "/etc/vigil/playbooks/pb.yml: playbook pb-1: actions[0] (command): program \"/usr/bin/touch;reboot\" contains the shell metacharacter ';'"
    );
}

#[test]
fn refuses_shell_metacharacters_in_literal_args() {
    assert_eq!(
        refused("  - command: {program: /usr/bin/logger, args: [\"blocked $(id)\"]}\n"),
        "/etc/vigil/playbooks/pb.yml: playbook pb-1: actions[0] (command): args[0] \"blocked $(id)\" contains the shell metacharacter '$'"
    );
    assert_eq!(
        refused("  - command: {program: /usr/bin/logger, args: [\"a | b\"]}\n"),
        "/etc/vigil/playbooks/pb.yml: playbook pb-1: actions[0] (command): args[0] \"a | b\" contains the shell metacharacter '|'"
    );
    assert_eq!(
        refused("  - command: {program: /usr/bin/logger, args: [\"a\\nb\"]}\n"),
        "/etc/vigil/playbooks/pb.yml: playbook pb-1: actions[0] (command): args[0] \"a\\nb\" contains the shell metacharacter '\\n'"
    );
}

#[test]
fn refuses_sh_dash_c() {
    assert_eq!(
        refused("  - command: {program: /bin/sh, args: [-c, \"iptables -A INPUT\"]}\n"),
        "/etc/vigil/playbooks/pb.yml: playbook pb-1: actions[0] (command): program \"/bin/sh\" is a shell or interpreter (sh -c style invocations are refused); run the tool itself"
    );
    assert!(
        refused("  - command: {program: /usr/bin/python3.12, args: [x]}\n")
            .contains("is a shell or interpreter")
    );
    assert!(
        refused("  - command: {program: /usr/bin/env, args: [bash]}\n")
            .contains("is a shell or interpreter")
    );
}

#[test]
fn refuses_a_placeholder_in_the_program_position() {
    assert_eq!(
        refused("  - command: {program: \"/usr/bin/{{user.name}}\"}\n"),
        "/etc/vigil/playbooks/pb.yml: playbook pb-1: actions[0] (command): program \"/usr/bin/{{user.name}}\": placeholders are not allowed in the program position"
    );
}

#[test]
fn refuses_an_unknown_placeholder() {
    assert_eq!(
        refused("  - command: {program: /usr/bin/logger, args: [\"{{event.original}}\"]}\n"),
        "/etc/vigil/playbooks/pb.yml: playbook pb-1: actions[0] (command): args[0]: unknown placeholder {{event.original}} (known: source.ip, user.name, host.name, rule.id, alert.id)"
    );
}

#[test]
fn refuses_blocking_a_literal_loopback_address() {
    assert_eq!(
        refused("  - enrich_geoip\n  - block_ip: {address: 127.0.0.1, ttl: 1h}\n"),
        "/etc/vigil/playbooks/pb.yml: playbook pb-1: actions[1] (block_ip): address: 127.0.0.1 overlaps 127.0.0.0/8 (loopback), which is never blocked"
    );
}

#[test]
fn refuses_blocking_a_literal_address_in_the_configured_allowlist() {
    assert_eq!(
        refused("  - block_ip: {address: 198.51.100.7, ttl: 1h}\n"),
        "/etc/vigil/playbooks/pb.yml: playbook pb-1: actions[0] (block_ip): address: 198.51.100.7 overlaps 198.51.100.0/24 (in the never-block allowlist), which is never blocked"
    );
}

#[test]
fn refuses_an_unknown_channel() {
    assert_eq!(
        refused("  - notify: {channel: pager}\n"),
        "/etc/vigil/playbooks/pb.yml: playbook pb-1: actions[0] (notify): unknown channel \"pager\" (configured: soc-hook)"
    );
}

#[test]
fn refuses_a_ttl_out_of_range() {
    assert_eq!(
        refused("  - block_ip: {field: source.ip, ttl: 30d}\n"),
        "/etc/vigil/playbooks/pb.yml: playbook pb-1: actions[0] (block_ip): ttl 30d is out of range (1s..=7d, [response] max_ttl_secs)"
    );
    assert_eq!(
        refused("  - block_ip: {field: source.ip, ttl: 0s}\n"),
        "/etc/vigil/playbooks/pb.yml: playbook pb-1: actions[0] (block_ip): ttl 0s is out of range (1s..=7d, [response] max_ttl_secs)"
    );
}

#[test]
fn refuses_a_timeout_out_of_range() {
    assert_eq!(
        refused("  - enrich_geoip: {}\n    timeout: 1h\n"),
        "/etc/vigil/playbooks/pb.yml: playbook pb-1: actions[0] (enrich_geoip): timeout 1h is out of range (1s..=5m)"
    );
}

#[test]
fn refuses_a_webhook_to_the_metadata_service() {
    let e = refused("  - webhook: {url: \"http://169.254.169.254/latest\"}\n");
    assert!(
        e.starts_with("/etc/vigil/playbooks/pb.yml: playbook pb-1: actions[0] (webhook): url \"http://169.254.169.254/latest\": address 169.254.169.254 is the cloud metadata service"),
        "{e}"
    );
}

#[test]
fn refuses_duplicate_ids_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let pb = "id: same\nname: T\nactions:\n  - enrich_geoip\n";
    std::fs::write(dir.path().join("a.yml"), pb).unwrap();
    std::fs::write(dir.path().join("b.yaml"), pb).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let e = crate::playbook::load_all(Some(dir.path()), &[], &cx())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "{}: playbook same: the id is already used in {}",
            dir.path().join("b.yaml").display(),
            dir.path().join("a.yml").display()
        )
    );
}

#[test]
fn the_examples_in_the_docs_load() {
    let doc = include_str!("../../../docs/PLAYBOOKS.md");
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("hook.secret");
    std::fs::write(&secret, "a-secret-for-the-doc-example\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut cx = cx();
    cx.channels = None;
    cx.max_ttl = Duration::from_secs(30 * 86_400);
    let mut loaded = 0;
    for block in doc.split("```yaml\n").skip(1) {
        let yaml = block.split("```").next().unwrap();
        let yaml = yaml.replace("/etc/vigil/idp-hook.secret", &secret.display().to_string());
        let pb =
            parse(&yaml, Path::new("PLAYBOOKS.md"), &cx).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        assert!(!pb.steps.is_empty());
        loaded += 1;
    }
    assert_eq!(loaded, 4);
}
