//! `trustwatch-agent scan host --root DIR` on image roots built here: the
//! exact packages and sources it inventories, the patch findings it raises
//! by the clock given with `--now`, hostile database files, and the same
//! inventory in the report that `once` spools.

use std::fs::{self, File, FileTimes};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trustwatch-agent"))
        .args(args)
        .env("RUST_LOG", "warn")
        // No rpm program: only the databases written here are read.
        .env("PATH", "")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn scan(root: &Path, now: &str) -> Value {
    let r = root.display().to_string();
    let out = agent(&[
        "scan", "host", "--root", &r, "--format", "json", "--now", now,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn write(root: &Path, rel: &str, body: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, body).unwrap();
}

fn set_mtime(path: &Path, rfc3339: &str) {
    let t = OffsetDateTime::parse(rfc3339, &Rfc3339).unwrap();
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_times(FileTimes::new().set_modified(t.into()))
        .unwrap();
}

const DEBIAN_STATUS: &str = "\
Package: libssl3
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 6108
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 3.0.15-1~deb12u1
Depends: libc6 (>= 2.34)
Description: Secure Sockets Layer toolkit - shared libraries
 This package is part of the OpenSSL project's implementation of the SSL
 .
 and TLS cryptographic protocols.

Package: bsdutils
Status: install ok installed
Architecture: amd64
Source: util-linux (2.38.1-5+deb12u1)
Version: 1:2.38.1-5+deb12u1
Description: basic utilities from 4.4BSD-Lite

Package: linux-image-6.1.0-26-amd64
Status: install ok installed
Architecture: amd64
Source: linux-signed-amd64 (6.1.112+1)
Version: 6.1.112-1

Package: old-config
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1
Conffiles:
 /etc/old.conf 0123456789abcdef0123456789abcdef

Package: broken-unpack
Status: install reinstreq half-installed
Architecture: amd64
Version: 2.0-1

Package: no-version
Status: install ok installed
Architecture: amd64

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2024a-0+deb12u1
";

fn debian_root(dir: &Path) {
    write(
        dir,
        "etc/os-release",
        b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
    );
    write(dir, "var/lib/dpkg/status", DEBIAN_STATUS.as_bytes());
    write(
        dir,
        "run/reboot-required",
        b"*** System restart required ***\n",
    );
    write(
        dir,
        "run/reboot-required.pkgs",
        b"linux-image-6.1.0-26-amd64\nlibssl3\n",
    );
    let list = "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease";
    write(dir, list, b"Origin: Debian\n");
    set_mtime(&dir.join(list), "2025-01-01T00:00:00Z");
    // An index that is not a Release file does not count, however new.
    let pkgs = "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages";
    write(dir, pkgs, b"");
    set_mtime(&dir.join(pkgs), "2025-03-01T00:00:00Z");
}

fn pkg(
    name: &str,
    version: &str,
    src: &str,
    src_version: &str,
    arch: &str,
    manager: &str,
) -> Value {
    json!({"manager": manager, "name": name, "version": version, "source_name": src,
           "source_version": src_version, "arch": arch})
}

#[test]
fn debian_image_root_gives_exact_packages_sources_and_findings() {
    let dir = tempfile::tempdir().unwrap();
    debian_root(dir.path());
    let v = scan(dir.path(), "2025-02-01T00:00:00Z");
    assert_eq!(v["schema"], "trustwatch.scan/v1");
    let a = &v["assets"][0];
    assert_eq!(a["kind"], "host");
    assert_eq!(a["os"]["id"], "debian");
    assert_eq!(a["os"]["codename"], "bookworm");
    assert_eq!(
        a["packages"],
        json!([
            pkg(
                "bsdutils",
                "1:2.38.1-5+deb12u1",
                "util-linux",
                "2.38.1-5+deb12u1",
                "amd64",
                "dpkg"
            ),
            pkg(
                "libssl3",
                "3.0.15-1~deb12u1",
                "openssl",
                "3.0.15-1~deb12u1",
                "amd64",
                "dpkg"
            ),
            pkg(
                "linux-image-6.1.0-26-amd64",
                "6.1.112-1",
                "linux-signed-amd64",
                "6.1.112+1",
                "amd64",
                "dpkg"
            ),
            pkg(
                "tzdata",
                "2024a-0+deb12u1",
                "tzdata",
                "2024a-0+deb12u1",
                "all",
                "dpkg"
            ),
        ])
    );
    assert_eq!(a["package_count"], 4);
    assert_eq!(a["reboot_required"], true);
    assert_eq!(a["package_metadata_refreshed_at"], "2025-01-01T00:00:00Z");
    assert_eq!(a["package_metadata_source"], "apt");
    assert!(a.get("windows").is_none());

    // The stanza without a Version is skipped and said so.
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let reason = errors[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("var/lib/dpkg/status: 1 malformed record(s) skipped, the first at line 42"),
        "{reason}"
    );
    assert!(reason.contains("no-version"), "{reason}");

    let host = a["id"].as_str().unwrap();
    let findings = v["findings"].as_array().unwrap();
    let codes: Vec<_> = findings
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        vec!["patch.kernel.reboot_required", "patch.updates.stale"]
    );
    let reboot = &findings[0];
    assert_eq!(reboot["asset"], host);
    assert_eq!(reboot["category"], "patch");
    assert_eq!(reboot["severity"], "medium");
    assert_eq!(
        reboot["evidence"],
        json!({
            "reasons": ["/run/reboot-required exists"],
            "reboot_required_file": true,
            "reboot_required_packages": ["linux-image-6.1.0-26-amd64", "libssl3"],
            // Not the live root: the running kernel is not the image's.
            "running_kernel": null,
            "running_kernel_package": null,
            "newest_installed_kernel": {"package": "linux-image-6.1.0-26-amd64", "version": "6.1.112-1"},
        })
    );
    let stale = &findings[1];
    assert_eq!(stale["asset"], host);
    let list = dir
        .path()
        .join("var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease");
    assert_eq!(
        stale["evidence"],
        json!({
            "last_refresh": "2025-01-01T00:00:00Z",
            "age_days": 31,
            "threshold_days": 14,
            "source": "apt",
            "path": list.display().to_string(),
        })
    );
}

#[test]
fn the_same_root_is_fresh_when_the_clock_says_so() {
    let dir = tempfile::tempdir().unwrap();
    debian_root(dir.path());
    let v = scan(dir.path(), "2025-01-10T00:00:00Z");
    let codes: Vec<_> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes, vec!["patch.kernel.reboot_required"]);
    // Exactly 14 days is not yet stale.
    let v = scan(dir.path(), "2025-01-15T00:00:00Z");
    assert!(!v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["code"] == "patch.updates.stale"));
    // And without the reboot marker nothing at all is raised.
    fs::remove_file(dir.path().join("run/reboot-required")).unwrap();
    let v = scan(dir.path(), "2025-01-02T00:00:00Z");
    assert_eq!(v["findings"], json!([]));
    assert_eq!(v["assets"][0]["reboot_required"], false);
}

#[test]
fn alpine_image_root_gives_origins_and_no_invented_findings() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(
        r,
        "etc/os-release",
        b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME=\"Alpine Linux v3.20\"\n",
    );
    write(
        r,
        "lib/apk/db/installed",
        b"C:Q1abc=\nP:libcrypto3\nV:3.3.2-r0\nA:x86_64\nS:1782384\no:openssl\nF:lib\nR:libcrypto.so.3\na:0:0:755\nZ:Q1xyz=\n\n\
          C:Q1def=\nP:musl\nV:1.2.5-r0\nA:x86_64\no:musl\n\n\
          P:linux-lts\nV:6.6.58-r0\nA:x86_64\no:linux-lts\n\n",
    );
    let v = scan(r, "2025-02-01T00:00:00Z");
    let a = &v["assets"][0];
    assert_eq!(a["os"]["id"], "alpine");
    assert_eq!(a["os"]["version_id"], "3.20.3");
    assert_eq!(
        a["packages"],
        json!([
            pkg(
                "libcrypto3",
                "3.3.2-r0",
                "openssl",
                "3.3.2-r0",
                "x86_64",
                "apk"
            ),
            pkg(
                "linux-lts",
                "6.6.58-r0",
                "linux-lts",
                "6.6.58-r0",
                "x86_64",
                "apk"
            ),
            pkg("musl", "1.2.5-r0", "musl", "1.2.5-r0", "x86_64", "apk"),
        ])
    );
    // No metadata at all: unknown, never stale; no reboot signal in an image.
    assert_eq!(a["package_metadata_source"], "unknown");
    assert!(a.get("package_metadata_refreshed_at").is_none());
    assert_eq!(a["reboot_required"], false);
    assert_eq!(v["findings"], json!([]));
    assert_eq!(v["errors"], json!([]));

    // With an APKINDEX refreshed long ago, it is stale.
    write(r, "var/cache/apk/APKINDEX.5a59b88b.tar.gz", b"");
    set_mtime(
        &r.join("var/cache/apk/APKINDEX.5a59b88b.tar.gz"),
        "2024-12-01T00:00:00Z",
    );
    let v = scan(r, "2025-02-01T00:00:00Z");
    assert_eq!(v["findings"][0]["code"], "patch.updates.stale");
    assert_eq!(v["findings"][0]["evidence"]["source"], "apk");
    assert_eq!(v["findings"][0]["evidence"]["age_days"], 62);
}

#[test]
fn hostile_database_files_give_clear_errors_and_no_panic() {
    type Build = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Build, &str)> = vec![
        (
            "NUL-filled status",
            Box::new(|r: &Path| write(r, "var/lib/dpkg/status", &vec![0u8; 1 << 20])),
            "malformed record(s) skipped",
        ),
        (
            "10 MB single line",
            Box::new(|r: &Path| write(r, "var/lib/dpkg/status", &vec![b'x'; 10 << 20])),
            "malformed record(s) skipped",
        ),
        (
            "random garbage",
            Box::new(|r: &Path| {
                let bytes: Vec<u8> = (0u32..200_000)
                    .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                    .collect();
                write(r, "lib/apk/db/installed", &bytes)
            }),
            "malformed record(s) skipped",
        ),
        (
            "directory as status file",
            Box::new(|r: &Path| fs::create_dir_all(r.join("var/lib/dpkg/status")).unwrap()),
            "var/lib/dpkg/status is not a regular file",
        ),
        (
            "directory as apk db",
            Box::new(|r: &Path| fs::create_dir_all(r.join("lib/apk/db/installed")).unwrap()),
            "lib/apk/db/installed is not a regular file",
        ),
        (
            "rpm database without rpm",
            Box::new(|r: &Path| fs::create_dir_all(r.join("var/lib/rpm")).unwrap()),
            "no rpm program was found",
        ),
        (
            "empty root",
            Box::new(|_: &Path| {}),
            "no package database under",
        ),
    ];
    for (what, build, expect) in cases {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "etc/os-release", b"ID=debian\n");
        build(dir.path());
        let v = scan(dir.path(), "2025-02-01T00:00:00Z");
        assert_eq!(v["assets"][0]["packages"], json!([]), "{what}");
        let reasons: Vec<String> = v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["reason"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            reasons.iter().any(|r| r.contains(expect)),
            "{what}: {reasons:?}"
        );
        assert_eq!(v["findings"], json!([]), "{what}");
    }
}

#[test]
fn table_format_shows_os_kernel_counts_and_findings() {
    let dir = tempfile::tempdir().unwrap();
    debian_root(dir.path());
    let r = dir.path().display().to_string();
    let out = agent(&[
        "scan",
        "host",
        "--root",
        &r,
        "--format",
        "table",
        "--now",
        "2025-02-01T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let t = String::from_utf8_lossy(&out.stdout);
    for want in [
        "OS        Debian GNU/Linux 12 (bookworm) (debian 12 bookworm)",
        "Kernel    ",
        "Packages  4 (dpkg 4)",
        "Reboot    required",
        "Updated   2025-01-01T00:00:00Z (apt)",
        "[medium] patch.kernel.reboot_required",
        "[medium] patch.updates.stale",
        "Error     host: ",
    ] {
        assert!(t.contains(want), "{want:?} not in\n{t}");
    }
}

/// Enrols a state dir by hand (a CA made here), so `once` can run without a
/// server.
fn fake_enrolment(state: &Path) {
    fs::create_dir_all(state).unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    fs::write(state.join("agent-key.pem"), key.serialize_pem()).unwrap();
    fs::write(state.join("agent.pem"), cert.pem()).unwrap();
    fs::write(state.join("server-ca.pem"), ca.pem()).unwrap();
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    fs::write(
        state.join("enrollment.json"),
        json!({
            "agent_id": uuid::Uuid::now_v7(),
            "org": "RX1",
            "server_url": format!("https://127.0.0.1:{port}"),
            "enrolled_at": "2025-01-31T12:00:00Z",
        })
        .to_string(),
    )
    .unwrap();
}

#[test]
fn once_spools_a_report_whose_host_asset_carries_the_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("image");
    debian_root(&image);
    let state = dir.path().join("state");
    fake_enrolment(&state);
    let cfg = dir.path().join("agent.toml");
    fs::write(
        &cfg,
        format!("[collect.host]\nroot = \"{}\"\n", image.display()),
    )
    .unwrap();
    let out = agent(&[
        "once",
        "--config",
        &cfg.display().to_string(),
        "--state-dir",
        &state.display().to_string(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files: Vec<_> = fs::read_dir(state.join("spool"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(files.len(), 1);
    let r: Value = serde_json::from_slice(&fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!(r["schema"], "trustwatch.report/v1");
    assert_eq!(r["collectors"], json!(["host"]));
    let a = &r["assets"][0];
    assert_eq!(a["package_count"], 4);
    assert_eq!(a["packages"][1]["source_name"], "openssl");
    let codes: Vec<_> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap(),
                f["collector"].as_str().unwrap(),
            )
        })
        .collect();
    // The real clock: the 2025 metadata is stale by now.
    assert_eq!(
        codes,
        vec![
            ("patch.kernel.reboot_required", "host"),
            ("patch.updates.stale", "host")
        ]
    );
}
