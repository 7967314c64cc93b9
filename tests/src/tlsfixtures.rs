//! Fixtures for the TLS collector's acceptance tests: a test PKI made with
//! the `openssl` command (root → intermediate → leaves with any dates, key
//! size or digest), real `openssl s_server` and tlslite-ng servers on
//! loopback (killed on drop), the agent's `scan tls` run as a child process,
//! and OpenSSL's own view of a cipher string.
//!
//! Every server binds 127.0.0.1 only; gnutls-serv (which binds every
//! interface) is started by the tests inside a network namespace.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;

use crate::bins::bin_path;

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A time as `openssl ca` wants it: `YYYYMMDDHHMMSSZ`.
pub fn ca_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Who signs a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issuer {
    /// The test intermediate (the normal case).
    Intermediate,
    /// The leaf signs itself.
    SelfSigned,
}

/// What a leaf looks like.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    /// Subject common name.
    pub cn: String,
    /// subjectAltName entries, e.g. `DNS:localhost`, `IP:127.0.0.1`.
    pub sans: Vec<String>,
    /// RSA key size.
    pub rsa_bits: u32,
    /// Signature digest (`sha256`, `sha1`).
    pub digest: String,
    /// notBefore.
    pub not_before: OffsetDateTime,
    /// notAfter.
    pub not_after: OffsetDateTime,
    /// The signer.
    pub issuer: Issuer,
}

impl LeafSpec {
    /// `localhost` (and 127.0.0.1), RSA 2048, SHA-256, valid for a year from yesterday.
    pub fn localhost() -> LeafSpec {
        let now = OffsetDateTime::now_utc();
        LeafSpec {
            cn: "localhost".into(),
            sans: vec!["DNS:localhost".into(), "IP:127.0.0.1".into()],
            rsa_bits: 2048,
            digest: "sha256".into(),
            not_before: now - time::Duration::days(1),
            not_after: now + time::Duration::days(365),
            issuer: Issuer::Intermediate,
        }
    }
}

/// A leaf's files.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The certificate, PEM.
    pub cert: PathBuf,
    /// Its key, PEM.
    pub key: PathBuf,
    /// The leaf followed by the intermediate, PEM (what servers send).
    pub full_chain: PathBuf,
    /// The intermediate that signed it (none when self-signed).
    pub intermediate: Option<PathBuf>,
}

/// A test PKI in a directory: root and intermediate CA, and leaves.
pub struct Pki {
    dir: PathBuf,
    /// The root certificate (what `--ca` is given).
    pub root: PathBuf,
    /// The intermediate certificate.
    pub intermediate: PathBuf,
    intermediate_key: PathBuf,
    serial: std::cell::Cell<u32>,
}

impl Pki {
    /// Makes the root and the intermediate in `dir`.
    pub fn new(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir.join("newcerts")).unwrap();
        std::fs::write(dir.join("index.txt"), "").unwrap();
        std::fs::write(dir.join("serial"), "1000\n").unwrap();
        let root = dir.join("root.pem");
        let root_key = dir.join("root.key");
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=trustwatch test root",
                "-days",
                "3650",
                "-keyout",
            ])
            .arg(&root_key)
            .arg("-out")
            .arg(&root));
        std::fs::write(
            dir.join("ca.cnf"),
            format!(
                "[ca]\ndefault_ca = tw\n[tw]\ndir = {d}\ndatabase = {d}/index.txt\nnew_certs_dir = {d}/newcerts\nserial = {d}/serial\npolicy = any\nunique_subject = no\ncopy_extensions = none\n[any]\ncommonName = supplied\n",
                d = dir.display()
            ),
        )
        .unwrap();
        // The intermediate predates every leaf, as real ones do.
        let int_key = dir.join("int.key");
        let int_csr = dir.join("int.csr");
        run(Command::new("openssl")
            .args([
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=trustwatch test intermediate",
                "-keyout",
            ])
            .arg(&int_key)
            .arg("-out")
            .arg(&int_csr));
        let ext = dir.join("int.ext");
        std::fs::write(
            &ext,
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
        )
        .unwrap();
        let intermediate = dir.join("int.pem");
        let now = OffsetDateTime::now_utc();
        run(Command::new("openssl")
            .args(["ca", "-batch", "-notext", "-md", "sha256", "-config"])
            .arg(dir.join("ca.cnf"))
            .args(["-startdate", &ca_time(now - time::Duration::days(3 * 365))])
            .args(["-enddate", &ca_time(now + time::Duration::days(8 * 365))])
            .arg("-cert")
            .arg(&root)
            .arg("-keyfile")
            .arg(&root_key)
            .arg("-extfile")
            .arg(&ext)
            .arg("-in")
            .arg(&int_csr)
            .arg("-out")
            .arg(&intermediate));
        Pki {
            dir: dir.to_owned(),
            root,
            intermediate,
            intermediate_key: int_key,
            serial: std::cell::Cell::new(0),
        }
    }

    /// Issues a leaf named `name` (file stem) per `spec`.
    pub fn leaf(&self, name: &str, spec: &LeafSpec) -> Leaf {
        self.serial.set(self.serial.get() + 1);
        let key = self.dir.join(format!("{name}.key"));
        let csr = self.dir.join(format!("{name}.csr"));
        let cert = self.dir.join(format!("{name}.pem"));
        let ext = self.dir.join(format!("{name}.ext"));
        run(Command::new("openssl")
            .args([
                "req",
                "-newkey",
                &format!("rsa:{}", spec.rsa_bits),
                "-nodes",
                "-subj",
                &format!("/CN={}", spec.cn),
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&csr));
        let mut ext_text = String::from("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n");
        if !spec.sans.is_empty() {
            ext_text.push_str(&format!("subjectAltName={}\n", spec.sans.join(",")));
        }
        std::fs::write(&ext, ext_text).unwrap();
        let mut cmd = Command::new("openssl");
        cmd.args(["ca", "-batch", "-notext", "-config"])
            .arg(self.dir.join("ca.cnf"))
            .args(["-md", &spec.digest])
            .args(["-startdate", &ca_time(spec.not_before)])
            .args(["-enddate", &ca_time(spec.not_after)])
            .arg("-extfile")
            .arg(&ext)
            .arg("-in")
            .arg(&csr)
            .arg("-out")
            .arg(&cert);
        match spec.issuer {
            Issuer::Intermediate => {
                cmd.arg("-cert")
                    .arg(&self.intermediate)
                    .arg("-keyfile")
                    .arg(&self.intermediate_key);
            }
            Issuer::SelfSigned => {
                cmd.arg("-selfsign").arg("-keyfile").arg(&key);
            }
        }
        run(&mut cmd);
        let full_chain = self.dir.join(format!("{name}.full.pem"));
        let mut text = std::fs::read_to_string(&cert).unwrap();
        if spec.issuer == Issuer::Intermediate {
            text.push_str(&std::fs::read_to_string(&self.intermediate).unwrap());
        }
        std::fs::write(&full_chain, text).unwrap();
        Leaf {
            cert,
            key,
            full_chain,
            intermediate: (spec.issuer == Issuer::Intermediate).then(|| self.intermediate.clone()),
        }
    }

    /// 1024-bit DH parameters (made once per PKI).
    pub fn dh1024(&self) -> PathBuf {
        let p = self.dir.join("dh1024.pem");
        if !p.exists() {
            run(Command::new("openssl")
                .args(["dhparam", "-out"])
                .arg(&p)
                .arg("1024"));
        }
        p
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A server process, killed on drop.
pub struct ServerGuard {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its output so far (stdout and stderr lines).
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServerGuard {
    /// `localhost:PORT`.
    pub fn target(&self) -> String {
        format!("localhost:{}", self.port)
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` and waits until a line of its output contains `ready` (or
/// until the port accepts connections when `ready` is empty).
fn start(mut cmd: Command, port: u16, ready: &str) -> ServerGuard {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel::<()>();
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let log = log.clone();
        let tx = tx.clone();
        let ready = ready.to_owned();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if !ready.is_empty() && line.contains(&ready) {
                    let _ = tx.send(());
                }
                log.lock().unwrap().push(line);
            }
        });
    }
    let guard = ServerGuard { child, port, log };
    if ready.is_empty() {
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return guard;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{cmd:?} did not listen on {port}: {:?}",
            guard.log.lock().unwrap()
        );
    }
    if rx.recv_timeout(Duration::from_secs(20)).is_err() {
        panic!("{cmd:?} did not get ready: {:?}", guard.log.lock().unwrap());
    }
    guard
}

/// `openssl s_server -www` on 127.0.0.1 with `leaf` (its full chain is
/// sent unless `send_intermediate` is false) and extra arguments.
pub fn s_server(leaf: &Leaf, send_intermediate: bool, args: &[&str]) -> ServerGuard {
    let port = free_port();
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_server",
        "-www",
        "-accept",
        &format!("127.0.0.1:{port}"),
        "-cert",
    ])
    .arg(&leaf.cert)
    .arg("-key")
    .arg(&leaf.key);
    if send_intermediate {
        if let Some(int) = &leaf.intermediate {
            cmd.arg("-cert_chain").arg(int);
        }
    }
    cmd.args(args);
    start(cmd, port, "ACCEPT")
}

/// tlslite-ng's `tls.py server` on 127.0.0.1 (installed by scripts/test).
pub fn tlslite_server(leaf: &Leaf, args: &[&str]) -> ServerGuard {
    let port = free_port();
    let mut cmd = Command::new("tls.py");
    cmd.arg("server")
        .arg("-k")
        .arg(&leaf.key)
        .arg("-c")
        .arg(&leaf.full_chain)
        .args(args)
        .arg(format!("127.0.0.1:{port}"));
    start(cmd, port, "")
}

/// The agent's `scan tls --format json` with `args`; (document, output).
pub fn scan(args: &[&str]) -> (Value, Output) {
    scan_with(Command::new(bin_path("trustwatch-agent")), args)
}

/// The same through a prepared command (e.g. inside a namespace, whose
/// program is the agent).
pub fn scan_with(mut cmd: Command, args: &[&str]) -> (Value, Output) {
    let out = cmd
        .args(["scan", "tls", "--format", "json"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the agent");
    assert!(
        out.status.success(),
        "scan tls {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "scan tls printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (doc, out)
}

/// The codes of the findings on `asset`.
pub fn codes(doc: &Value, asset: &str) -> BTreeSet<String> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["asset"] == asset)
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

/// The `tls_endpoint` asset `id`.
pub fn endpoint<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "tls_endpoint" && a["id"] == id)
        .unwrap_or_else(|| panic!("no tls_endpoint {id} in {doc:#}"))
}

/// The IANA names of the suites OpenSSL would accept for `protocol`
/// (`-tls1`, `-tls1_1`, `-tls1_2`) from `cipher_string`, TLS 1.3 suites left
/// out: `openssl ciphers -stdname -v -s PROTOCOL STRING`.
pub fn openssl_suites(protocol: &str, cipher_string: &str) -> BTreeSet<String> {
    let out = run(Command::new("openssl").args([
        "ciphers",
        "-stdname",
        "-v",
        "-s",
        protocol,
        cipher_string,
    ]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.contains("TLSv1.3"))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("TLS_") || n.starts_with("SSL_"))
        .map(str::to_owned)
        .collect()
}

/// The suites the scan lists for `version` on asset `id`.
pub fn scanned_suites(doc: &Value, id: &str, version: &str) -> Vec<String> {
    endpoint(doc, id)["suites"][version]
        .as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}
