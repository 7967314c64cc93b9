//! The real binaries as child processes: a server on a temporary data dir
//! and agents with their own state dirs and configs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::bins::bin_path;
use crate::client::ApiClient;

/// Output of a finished command, with its streams as text.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            status: o.status,
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    /// The last non-empty line of stdout (where the create commands print
    /// their secret).
    pub fn last_line(&self) -> String {
        self.stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    pub fn assert_ok(self, what: &str) -> Run {
        assert!(
            self.status.success(),
            "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Sends SIGTERM through kill(1): the harness keeps `unsafe` out.
pub async fn sigterm(pid: u32) {
    let st = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .await
        .unwrap();
    assert!(st.success(), "kill -TERM {pid}");
}

/// A running `trustwatch-server serve`.
pub struct ServerProcess {
    pub data_dir: PathBuf,
    pub addr: SocketAddr,
    child: Option<Child>,
    stderr: Arc<Mutex<String>>,
    extra: Vec<String>,
}

impl ServerProcess {
    /// Starts `serve` on 127.0.0.1 (port 0 unless `extra` sets `--listen`)
    /// and waits for its `listening on https://ADDR` line.
    pub async fn start(data_dir: &Path, extra: &[&str]) -> ServerProcess {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        Self::start_owned(data_dir, extra, &[]).await
    }

    pub async fn start_with_env(
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> ServerProcess {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        Self::start_owned(data_dir, extra, env).await
    }

    async fn start_owned(
        data_dir: &Path,
        extra: Vec<String>,
        env: &[(&str, &str)],
    ) -> ServerProcess {
        let mut cmd = Command::new(bin_path("trustwatch-server"));
        cmd.arg("--data-dir").arg(data_dir).arg("serve");
        if !extra.iter().any(|a| a == "--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.args(&extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn trustwatch-server");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = tokio::sync::oneshot::channel::<SocketAddr>();
        let pipe = child.stderr.take().unwrap();
        let buf = stderr.clone();
        tokio::spawn(async move {
            let mut tx = Some(tx);
            let mut lines = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("listening on https://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("");
                    let addr = addr.trim_end_matches(['"', ',']);
                    if let Ok(a) = addr.parse::<SocketAddr>() {
                        if let Some(t) = tx.take() {
                            let _ = t.send(a);
                        }
                    }
                }
                let mut b = buf.lock().unwrap();
                b.push_str(&line);
                b.push('\n');
            }
        });
        let addr = match tokio::time::timeout(Duration::from_secs(60), rx).await {
            Ok(Ok(a)) => a,
            _ => {
                let _ = child.start_kill();
                panic!(
                    "server did not report `listening on https://` within 60 s; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        ServerProcess {
            data_dir: data_dir.to_path_buf(),
            addr,
            child: Some(child),
            stderr,
            extra,
        }
    }

    pub fn base_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("ca.pem")).expect("ca.pem in the data dir")
    }

    pub fn ca_path(&self) -> PathBuf {
        self.data_dir.join("ca.pem")
    }

    /// A query client trusting the server CA, without a client certificate.
    pub fn client(&self) -> ApiClient {
        ApiClient::new(&self.base_url(), &self.ca_pem(), None)
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Fails the test if the server has panicked.
    pub fn assert_no_panic(&self) {
        let e = self.stderr();
        assert!(!e.contains("panicked"), "server panicked:\n{e}");
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().and_then(|c| c.id()).unwrap_or(0)
    }

    /// SIGTERM, then waits for a clean exit.
    pub async fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server running");
        if let Some(pid) = child.id() {
            sigterm(pid).await;
        }
        let st = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("server stops within 30 s of SIGTERM")
            .unwrap();
        self.assert_no_panic();
        st
    }

    /// Starts again on the same data dir and the same address.
    pub async fn restart(&mut self) {
        if self.child.is_some() {
            self.stop().await;
        }
        let mut extra = self.extra.clone();
        if !extra.iter().any(|a| a == "--listen") {
            extra.push("--listen".into());
            extra.push(self.addr.to_string());
        }
        let s = Self::start_owned(&self.data_dir, extra, &[]).await;
        *self = s;
    }

    /// Runs an admin command on the same data dir.
    pub async fn admin(&self, args: &[&str]) -> Run {
        admin(&self.data_dir, args).await
    }

    pub async fn org_add(&self, code: &str, name: &str) {
        self.admin(&["org", "add", code, "--name", name])
            .await
            .assert_ok("org add");
    }

    pub async fn token(&self, org: &str, extra: &[&str]) -> String {
        let mut args = vec!["token", "create", "--org", org];
        args.extend_from_slice(extra);
        self.admin(&args)
            .await
            .assert_ok("token create")
            .last_line()
    }

    /// Enrols an agent of `org` through the API (a key pair made here, as an
    /// agent would); returns its id and a client presenting its certificate.
    pub async fn enrol_via_api(&self, org: &str) -> (uuid::Uuid, ApiClient) {
        let token = self.token(org, &[]).await;
        let key = rcgen::KeyPair::generate().unwrap();
        let csr = rcgen::CertificateParams::default()
            .serialize_request(&key)
            .unwrap()
            .pem()
            .unwrap();
        let a = self
            .client()
            .post_json(
                "/api/v1/enroll",
                &serde_json::json!({"token": token, "csr": csr, "hostname": "pacs01"}),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        let cert = a.body["certificate"].as_str().unwrap().to_owned();
        let id: uuid::Uuid = a.body["agent_id"].as_str().unwrap().parse().unwrap();
        let client = ApiClient::new(
            &self.base_url(),
            &self.ca_pem(),
            Some((&cert, &key.serialize_pem())),
        );
        (id, client)
    }

    pub async fn apikey(&self, role: &str, org: Option<&str>) -> String {
        let mut args = vec!["apikey", "create", "--role", role];
        if let Some(o) = org {
            args.extend_from_slice(&["--org", o]);
        }
        self.admin(&args)
            .await
            .assert_ok("apikey create")
            .last_line()
    }
}

pub async fn admin(data_dir: &Path, args: &[&str]) -> Run {
    let o = Command::new(bin_path("trustwatch-server"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    Run::from(o)
}

/// An agent: a state dir and a config file of its own.
pub struct AgentDir {
    pub root: PathBuf,
    pub state: PathBuf,
    pub config: PathBuf,
}

impl AgentDir {
    /// `extra_toml` is appended to a config holding `state_dir` (and
    /// `server_url` when given).
    pub fn new(root: &Path, server_url: Option<&str>, extra_toml: &str) -> AgentDir {
        std::fs::create_dir_all(root).unwrap();
        let state = root.join("state");
        let config = root.join("agent.toml");
        let mut toml = format!("state_dir = {:?}\n", state.display().to_string());
        if let Some(u) = server_url {
            toml.push_str(&format!("server_url = {u:?}\n"));
        }
        toml.push_str(extra_toml);
        std::fs::write(&config, toml).unwrap();
        AgentDir {
            root: root.to_path_buf(),
            state,
            config,
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin_path("trustwatch-agent"));
        c.arg("--config")
            .arg(&self.config)
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().await.unwrap())
    }

    pub async fn enroll(&self, server_url: &str, ca: &Path, token: &str) -> Run {
        let tf = self.root.join("token");
        std::fs::write(&tf, token).unwrap();
        self.run(&[
            "enroll",
            "--server",
            server_url,
            "--token-file",
            tf.to_str().unwrap(),
            "--server-ca",
            ca.to_str().unwrap(),
        ])
        .await
    }

    pub async fn once(&self) -> Run {
        self.run(&["once"]).await
    }

    /// The report files waiting in the spool, oldest first.
    pub fn spooled(&self) -> Vec<String> {
        let mut v: Vec<String> = match std::fs::read_dir(self.state.join("spool")) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .map(|n| n.trim_end_matches(".json").to_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        v.sort();
        v
    }

    pub fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.state.join(file)).unwrap()
    }
}
