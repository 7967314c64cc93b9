//! Network namespaces for tests that need hosts of their own: fixture
//! daemons that bind every interface (gnutls-serv), and small networks of
//! legacy services for the network collector.
//!
//! Invariants:
//! * Every name carries this process's id (`tw<pid>…`), so parallel test
//!   processes and leftovers of killed runs never collide.
//! * A [`Lab`] is a guard: dropping it kills every process inside its
//!   namespaces and deletes them (veth pairs and the bridge go with them).
//! * Labs run one at a time on the machine: [`Lab::new`] takes an exclusive
//!   lock on `/run/lock/trustwatch-netns.lock` and holds it until drop.
//! * Nothing is configured in the root namespace: the bridge lives in a
//!   switch namespace of its own, so the lab's addresses are reachable only
//!   from namespaces of the lab. Addresses come from 198.18.0.0/15 (RFC 2544,
//!   benchmarking), which no real network uses.
//! * Without root the constructor panics with the reason: these tests fail,
//!   they never skip.

use std::fs::File;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

const LOCK_PATH: &str = "/run/lock/trustwatch-netns.lock";

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn must(args: &[&str]) {
    if let Err(e) = run(args) {
        panic!("{e}");
    }
}

fn is_root() -> bool {
    // /proc/self/status "Uid:\treal\teffective…"
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// One host of a lab: a namespace with `eth0` on the lab bridge (when it
/// has an address) and `lo` up.
#[derive(Debug, Clone)]
pub struct Host {
    pub ns: String,
    pub addr: Option<Ipv4Addr>,
}

impl Host {
    /// A command run inside this host's namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, program]);
        c
    }

    /// The same as a tokio command.
    pub fn tokio_command(&self, program: &str) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("ip");
        c.args(["netns", "exec", &self.ns, program]);
        c.kill_on_drop(true);
        c
    }

    /// A command in this namespace with a private tmpfs on /run (daemons
    /// write pid files and sockets there), started in a session of its own
    /// (xrdp signals its whole process group when it stops).
    pub fn daemon(&self, shell: &str) -> Command {
        let mut c = Command::new("setsid");
        c.args([
            "ip",
            "netns",
            "exec",
            &self.ns,
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &format!("mount -n -t tmpfs tmpfs /run && exec {shell}"),
        ]);
        c
    }
}

/// A set of namespaces on one bridge, removed on drop.
pub struct Lab {
    prefix: String,
    switch: Option<String>,
    hosts: Vec<Host>,
    subnet: [u8; 3],
    _lock: File,
}

impl Lab {
    /// An empty lab. `subnet` is the third octet of 198.18.X.0/24.
    pub fn new(subnet: u8) -> Lab {
        assert!(
            is_root(),
            "network-namespace tests need root (they create namespaces, veth pairs and a bridge); run them as root, as CI does"
        );
        let lock =
            File::create(LOCK_PATH).unwrap_or_else(|e| panic!("cannot create {LOCK_PATH}: {e}"));
        lock.lock()
            .unwrap_or_else(|e| panic!("cannot lock {LOCK_PATH}: {e}"));
        let prefix = format!("tw{}", std::process::id());
        // Leftovers of an earlier lab of this same process (a panic in a
        // constructor) are removed before we start.
        remove_namespaces(&prefix);
        Lab {
            prefix,
            switch: None,
            hosts: Vec::new(),
            subnet: [198, 18, subnet],
            _lock: lock,
        }
    }

    fn ensure_switch(&mut self) -> String {
        if let Some(s) = &self.switch {
            return s.clone();
        }
        let sw = format!("{}sw", self.prefix);
        must(&["ip", "netns", "add", &sw]);
        must(&["ip", "-n", &sw, "link", "set", "lo", "up"]);
        must(&["ip", "-n", &sw, "link", "add", "br0", "type", "bridge"]);
        must(&["ip", "-n", &sw, "link", "set", "br0", "up"]);
        self.switch = Some(sw.clone());
        sw
    }

    /// A namespace with only `lo` (for daemons that bind every interface).
    pub fn isolated(&mut self, name: &str) -> Host {
        let ns = format!("{}{}", self.prefix, name);
        must(&["ip", "netns", "add", &ns]);
        must(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        let h = Host { ns, addr: None };
        self.hosts.push(h.clone());
        h
    }

    /// A host on the lab bridge with address 198.18.X.`last_octet`/24.
    pub fn host(&mut self, name: &str, last_octet: u8) -> Host {
        let sw = self.ensure_switch();
        let mut h = self.isolated(name);
        let n = self.hosts.len();
        let outside = format!("v{}h{n}", std::process::id() % 100_000);
        must(&[
            "ip", "link", "add", "eth0", "netns", &h.ns, "type", "veth", "peer", "name", &outside,
            "netns", &sw,
        ]);
        let [a, b, c] = self.subnet;
        let addr = Ipv4Addr::new(a, b, c, last_octet);
        must(&[
            "ip",
            "-n",
            &h.ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
        must(&["ip", "-n", &h.ns, "link", "set", "eth0", "up"]);
        must(&["ip", "-n", &sw, "link", "set", &outside, "master", "br0"]);
        must(&["ip", "-n", &sw, "link", "set", &outside, "up"]);
        h.addr = Some(addr);
        if let Some(last) = self.hosts.last_mut() {
            last.addr = Some(addr);
        }
        h
    }

    /// The lab's subnet, e.g. `198.18.7.0/24`.
    pub fn cidr(&self) -> String {
        let [a, b, c] = self.subnet;
        format!("{a}.{b}.{c}.0/24")
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }
}

fn namespaces_with_prefix(prefix: &str) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output();
    let Ok(out) = out else { return Vec::new() };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

fn remove_namespaces(prefix: &str) {
    for ns in namespaces_with_prefix(prefix) {
        // Kill what runs inside, then delete the namespace.
        if let Ok(out) = Command::new("ip").args(["netns", "pids", &ns]).output() {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = run(&["ip", "netns", "del", &ns]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        remove_namespaces(&self.prefix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netns_lab_hosts_reach_each_other_and_vanish_on_drop() {
        let prefix;
        {
            let mut lab = Lab::new(250);
            prefix = lab.prefix.clone();
            let a = lab.host("a", 10);
            let b = lab.host("b", 20);
            let iso = lab.isolated("iso");
            let ping = |h: &Host, to: &str| {
                h.command("ping")
                    .args(["-c", "1", "-W", "2", to])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false)
            };
            assert!(ping(&a, &b.addr.unwrap().to_string()), "a → b");
            assert!(
                !ping(&iso, &b.addr.unwrap().to_string()),
                "isolated host reaches nobody"
            );
            assert_eq!(namespaces_with_prefix(&prefix).len(), 4);
        }
        assert!(
            namespaces_with_prefix(&prefix).is_empty(),
            "namespaces left behind"
        );
    }
}
