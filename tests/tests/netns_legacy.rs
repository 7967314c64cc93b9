//! Acceptance test of the network collector (issue 6): a small network of
//! network namespaces with real legacy services from Debian packages and
//! hand-made responders (`tw-lab-responder`) where no real server can run
//! here; the agent sweeps the subnet from its own namespace.
//!
//! Every host runs in a namespace of its own on the lab bridge
//! (198.18.X.0/24, RFC 2544 space); nothing is configured in the root
//! namespace. The tests need root and the packages of `scripts/test`; a
//! missing one is a failure, never a skip.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use trustwatch_tests::bin_path;
use trustwatch_tests::legacylab::{
    self, ready_file, require, start, start_responder, wait_for, Daemons, SWEEP_PORTS,
};
use trustwatch_tests::netns::{Host, Lab};

/// The clock of every scan here (DESIGN §2: verdicts read one clock).
const NOW: &str = "2026-11-26T12:00:00Z";

fn responder() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tw-lab-responder"))
}

/// Runs the agent's `scan network` in `scanner`; returns the document and
/// the command's output.
fn scan(scanner: &Host, dir: &Path, args: &[&str]) -> (Value, Output) {
    let config = dir.join("agent.toml");
    if !config.exists() {
        std::fs::write(&config, "").expect("config");
    }
    let out = scanner
        .command(bin_path("trustwatch-agent").to_str().expect("utf-8 path"))
        .args(["--config", config.to_str().expect("path"), "--state-dir"])
        .arg(dir.join("state"))
        .args(["scan", "network"])
        .args(args)
        .args(["--format", "json", "--now", NOW])
        .env("RUST_LOG", "info")
        .output()
        .expect("run trustwatch-agent");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "scan network failed:\n{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("scan output is not JSON ({e}):\n{stderr}"));
    (doc, out)
}

/// Findings per asset: `{asset: {(code, subject)}}`.
fn findings(doc: &Value) -> BTreeMap<String, BTreeSet<(String, String)>> {
    let mut m: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for f in doc["findings"].as_array().expect("findings") {
        m.entry(f["asset"].as_str().expect("asset").to_owned())
            .or_default()
            .insert((
                f["code"].as_str().expect("code").to_owned(),
                f["subject"].as_str().unwrap_or_default().to_owned(),
            ));
    }
    m
}

fn device<'a>(doc: &'a Value, ip: &str) -> &'a Value {
    doc["assets"]
        .as_array()
        .expect("assets")
        .iter()
        .find(|a| a["kind"] == "device" && a["id"] == ip)
        .unwrap_or_else(|| panic!("no device {ip} in {doc:#}"))
}

fn service_protocols(d: &Value) -> Vec<(u64, String)> {
    d["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| {
            (
                s["port"].as_u64().expect("port"),
                s["protocol"].as_str().expect("protocol").to_owned(),
            )
        })
        .collect()
}

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(c, s)| ((*c).to_owned(), (*s).to_owned()))
        .collect()
}

#[test]
fn netns_legacy_network_gives_the_exact_findings_per_host_and_spares_the_printer() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let lab = legacylab::build(61, dir, &responder());
    let scanner = &lab.scanner;
    let ip = |o: u8| lab.ip(o);

    let started = Instant::now();
    let (doc, out) = scan(scanner, dir, &[&lab.cidr(), "--ports", SWEEP_PORTS]);
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    eprintln!("scan of {} took {took:?}\n{stderr}", lab.cidr());

    let want: BTreeMap<String, BTreeSet<(String, String)>> = [
        (
            10,
            set(&[
                ("legacy.smb.v1", "445/tcp"),
                ("legacy.smb.signing_not_required", "445/tcp"),
            ]),
        ),
        (11, set(&[])),
        (12, set(&[("legacy.telnet", "23/tcp")])),
        (
            13,
            set(&[
                ("legacy.ftp.anonymous", "21/tcp"),
                ("legacy.ftp.cleartext", "21/tcp"),
            ]),
        ),
        (14, set(&[("legacy.snmp.default_community", "161/udp")])),
        (15, set(&[("legacy.rdp.no_nla", "3389/tcp")])),
        (16, set(&[])),
        (17, set(&[])),
        (
            20,
            set(&[
                ("legacy.smb.v1", "445/tcp"),
                ("legacy.smb.signing_not_required", "445/tcp"),
                ("legacy.os.eol", ""),
            ]),
        ),
        (21, set(&[("legacy.ssh.outdated", "22/tcp")])),
        (22, set(&[("legacy.os.eol", "")])),
        (23, set(&[])),
        (30, set(&[])),
    ]
    .into_iter()
    .map(|(o, s)| (ip(o), s))
    .collect();
    let mut got = findings(&doc);
    for host in want.keys() {
        got.entry(host.clone()).or_default();
        // Every host, clean ones included, was found and described.
        device(&doc, host);
    }
    assert_eq!(got, want, "findings per host differ; document:\n{doc:#}");
    let devices: BTreeSet<&str> = doc["assets"]
        .as_array()
        .expect("assets")
        .iter()
        .filter(|a| a["kind"] == "device")
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert_eq!(
        devices,
        want.keys().map(String::as_str).collect(),
        "exactly the lab's hosts are devices"
    );
    assert_eq!(doc["errors"], serde_json::json!([]), "{doc:#}");
    for f in doc["findings"].as_array().expect("findings") {
        assert_eq!(f["collector"], "network", "{f:#}");
        assert!(f["evidence"].is_object(), "{f:#}");
    }

    // Samba is Samba, not Windows 7; the Windows 7 stand-in is Windows 7.
    let samba = device(&doc, &ip(10));
    assert!(
        samba["identified_as"]
            .as_array()
            .expect("identified_as")
            .iter()
            .all(|v| v["identifies"]
                .as_str()
                .is_some_and(|i| i.starts_with("Samba"))),
        "{samba:#}"
    );
    assert!(
        samba["names"]
            .as_array()
            .is_some_and(|n| n.iter().any(|x| x == "LABSMB1")),
        "{samba:#}"
    );
    let eol: Vec<&Value> = doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["code"] == "legacy.os.eol" && f["asset"] == ip(20).as_str())
        .collect();
    assert_eq!(eol[0]["evidence"]["eol_date"], "2020-01-14");
    assert!(eol[0]["evidence"]["evidence"]
        .as_str()
        .is_some_and(|e| e.contains("6.1.7601")));
    // SMB is probed once per host (on 445), 139 is listed unprobed.
    assert_eq!(
        service_protocols(samba),
        vec![(139, "smb".to_owned()), (445, "smb".to_owned())]
    );
    assert_eq!(
        service_protocols(device(&doc, &ip(30))),
        vec![(9100, "printer".to_owned())]
    );
    assert_eq!(
        service_protocols(device(&doc, &ip(17))),
        vec![(104, "dicom".to_owned())]
    );

    // The printer port was connected to and got not a single byte.
    let rec = std::fs::read_to_string(&lab.printer_record).expect("the printer was connected to");
    let fields: Vec<u64> = rec
        .split_whitespace()
        .map(|x| x.parse().expect("number"))
        .collect();
    assert!(fields[0] >= 1, "connections {rec}");
    assert_eq!(fields[1], 0, "bytes written to the printer port");
    assert!(
        std::fs::read_dir(&lab.dicom_store)
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "nothing was stored by the DICOM SCP"
    );

    // The audit trail names every kind of traffic.
    for kind in [
        "audit: sweep:",
        "audit: printer:",
        "audit: probe smb:",
        "audit: probe snmp:",
    ] {
        assert!(stderr.contains(kind), "{kind:?} not logged:\n{stderr}");
    }
    drop(lab);
}

/// Lines `port unix_millis` of the counting listener.
fn arrivals(record: &Path) -> Vec<u128> {
    let text = std::fs::read_to_string(record).unwrap_or_default();
    let mut v: Vec<u128> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn netns_per_host_rate_cap_holds_at_a_listener_counting_connections() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let mut lab = Lab::new(62);
    let scanner = lab.host("scanner", 2);
    let target = lab.host("counter", 40);
    let record = dir.join("count.record");
    let ready = ready_file(dir, "counter");
    let shell = format!(
        "{} count 198.18.62.40 20000-20029 {} {}",
        responder().display(),
        ready.display(),
        record.display()
    );
    let mut children = Daemons::default();
    children.push(start(&target, dir, "counter", &shell));
    wait_for("counter", dir, Duration::from_secs(10), || ready.exists());
    std::fs::write(
        dir.join("agent.toml"),
        "[collect.network]\nhost_rate = 10\n",
    )
    .expect("config");

    let (doc, _) = scan(&scanner, dir, &["198.18.62.40", "--ports", "20000-20029"]);
    let d = device(&doc, "198.18.62.40");
    assert_eq!(d["services"].as_array().map(Vec::len), Some(30), "{d:#}");
    let times = arrivals(&record);
    // Each port: the sweep's connect, then one ClientHello connection.
    assert_eq!(times.len(), 60, "connections counted");
    let most = times
        .iter()
        .map(|&t| times.iter().filter(|&&u| u >= t && u < t + 1000).count())
        .max()
        .unwrap_or(0);
    // 10 per second; one more for the listener's timestamp jitter.
    assert!(
        most <= 11,
        "{most} connections within one second (cap 10/s)"
    );
    let span = times.last().copied().unwrap_or(0) - times.first().copied().unwrap_or(0);
    assert!(span >= 5_000, "60 connections at 10/s took only {span} ms");
}

// ------------------------------------------------------------------ proofs

/// A capture in `host`'s namespace: tshark writing `file` until stopped.
struct Capture {
    child: Child,
    file: PathBuf,
}

impl Capture {
    fn start(host: &Host, file: PathBuf, filter: &str) -> Capture {
        let child = host
            .command("tshark")
            .args(["-q", "-i", "eth0", "-f", filter, "-w"])
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tshark");
        let until = Instant::now() + Duration::from_secs(15);
        while !file.metadata().is_ok_and(|m| m.len() > 0) {
            assert!(Instant::now() < until, "tshark did not start capturing");
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(500));
        Capture { child, file }
    }

    /// Stops the capture and returns `tshark -V` of it, after checking it
    /// has no malformed packet.
    fn decode(mut self, decode_as: &[&str]) -> String {
        std::thread::sleep(Duration::from_millis(500));
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let out = Command::new("tshark")
            .args(["-r"])
            .arg(&self.file)
            .args(decode_as)
            .arg("-V")
            .output()
            .expect("tshark -r");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "tshark -r failed");
        assert!(!text.is_empty(), "empty capture");
        assert!(
            !text.contains("Malformed") && !text.contains("[Expert Info (Error"),
            "tshark marks the capture malformed:\n{text}"
        );
        text
    }
}

fn has_all(text: &str, wants: &[&str]) {
    for w in wants {
        assert!(text.contains(w), "{w:?} not in:\n{text}");
    }
}

#[test]
fn netns_hand_made_replies_are_the_real_protocols_by_tshark_and_real_clients() {
    for (p, pkg) in [
        ("tshark", "tshark"),
        ("smbclient", "smbclient"),
        ("ssh", "openssh-client"),
        ("curl", "curl"),
    ] {
        require(p, pkg);
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let mut lab = Lab::new(63);
    let client = lab.host("client", 2);
    let ip = |o: u8| format!("198.18.63.{o}");
    let mut children = Daemons::default();
    let h = lab.host("win7", 20);
    children.push(start_responder(
        &responder(),
        &h,
        dir,
        "win7",
        "smb-win7",
        &format!("{}:445", ip(20)),
        &[],
    ));
    let h = lab.host("oldssh", 21);
    children.push(start_responder(
        &responder(),
        &h,
        dir,
        "oldssh",
        "ssh-banner",
        &format!("{}:22", ip(21)),
        &["SSH-1.99-OpenSSH_3.9p1"],
    ));
    let h = lab.host("iis6", 22);
    children.push(start_responder(
        &responder(),
        &h,
        dir,
        "iis6",
        "http-iis6",
        &format!("{}:80", ip(22)),
        &[],
    ));
    let h = lab.host("rdpnla", 23);
    children.push(start_responder(
        &responder(),
        &h,
        dir,
        "rdpnla",
        "rdp-nla",
        &format!("{}:3389", ip(23)),
        &[],
    ));

    // SMB: smbclient negotiates NT LM 0.12, reads the CHALLENGE and is
    // refused at AUTHENTICATE, as by a Windows 7 that knows no such user.
    let cap = Capture::start(&client, dir.join("smb.pcapng"), "tcp port 445");
    let out = client
        .command("smbclient")
        .args(["-L", &format!("//{}", ip(20)), "-N", "-m", "NT1"])
        .args([
            "--option=client min protocol=NT1",
            "--option=client max protocol=NT1",
        ])
        .output()
        .expect("smbclient");
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("NT_STATUS_LOGON_FAILURE"),
        "smbclient:\n{said}"
    );
    let text = cap.decode(&[]);
    has_all(
        &text,
        &[
            "Requested Dialects",
            "NT LM 0.12",
            "NTLMSSP_CHALLENGE",
            "Version 6.1 (Build 7601); NTLM Current Revision 15",
            "Native OS: Windows 7 Professional 7601 Service Pack 1",
            "NetBIOS Computer Name: LAB-W7",
            "STATUS_LOGON_FAILURE",
        ],
    );

    // SSH: OpenSSH's client reads the identification line.
    let cap = Capture::start(&client, dir.join("ssh.pcapng"), "tcp port 22");
    let out = client
        .command("ssh")
        .args([
            "-v",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=5",
            &format!("nobody@{}", ip(21)),
            "true",
        ])
        .output()
        .expect("ssh");
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        said.contains("Remote protocol version 1.99, remote software version OpenSSH_3.9p1"),
        "ssh -v:\n{said}"
    );
    let text = cap.decode(&[]);
    has_all(&text, &["Protocol: SSH-1.99-OpenSSH_3.9p1"]);

    // HTTP: curl reads the IIS 6 headers.
    let cap = Capture::start(&client, dir.join("http.pcapng"), "tcp port 80");
    let out = client
        .command("curl")
        .args([
            "-sS",
            "-I",
            "--max-time",
            "5",
            &format!("http://{}/", ip(22)),
        ])
        .output()
        .expect("curl");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(said.starts_with("HTTP/1.1 200 OK"), "curl:\n{said}");
    assert!(said.contains("Server: Microsoft-IIS/6.0"), "curl:\n{said}");
    let text = cap.decode(&[]);
    has_all(
        &text,
        &["Server: Microsoft-IIS/6.0\\r\\n", "HTTP/1.1 200 OK\\r\\n"],
    );

    // RDP: no RDP client here; the agent's own probe is the client, and
    // tshark's RDP dissector reads the refusal.
    let cap = Capture::start(&client, dir.join("rdp.pcapng"), "tcp port 3389");
    let (doc, _) = scan(&client, dir, &[&ip(23), "--ports", "3389"]);
    let d = device(&doc, &ip(23));
    assert_eq!(d["services"][0]["details"]["nla_enforced"], true, "{d:#}");
    let text = cap.decode(&[]);
    has_all(
        &text,
        &[
            "CC Connect Confirm",
            "Type: RDP Negotiation Failure (0x03)",
            "failureCode: Server requires Enhanced RDP Security with CredSSP (0x00000005)",
        ],
    );
    drop(children);
}
