//! The legacy-device lab of issue 6: a /24 of network namespaces with real
//! legacy services from Debian packages and `tw-lab-responder` stand-ins
//! where no real server can run here. The acceptance test
//! (`tests/netns_legacy.rs`) and the benchmark against nmap
//! (`tw-bench-network`) sweep the same lab.
//!
//! Invariants:
//! * The lab is 198.18.X.0/24 (X chosen by the caller) built on
//!   [`Lab`](crate::netns::Lab): nothing is configured in the root
//!   namespace, and dropping a [`LegacyLab`] kills its daemons first, then
//!   removes the namespaces.
//! * The hosts are exactly [`HOSTS`], each at its fixed last octet; the
//!   scanner is at `.2` and runs nothing.
//! * Each service is waited for (listening socket, or the responder's
//!   ready file) before [`build`] returns; a service that does not come up
//!   is a panic naming its log. These are test fixtures: a missing package
//!   or a daemon that fails is a failure with the reason, never a skip.
//! * Daemons keep their state under the caller's directory (`dir`) and a
//!   private tmpfs on /run; nothing is written elsewhere.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::netns::{Host, Lab};

/// One host of the lab: its last octet, its name (the namespace suffix and
/// its log's name) and what runs there.
#[derive(Debug, Clone, Copy)]
pub struct LabHost {
    pub octet: u8,
    pub name: &'static str,
    pub runs: &'static str,
}

/// The scanner's last octet.
pub const SCANNER_OCTET: u8 = 2;

/// The lab's hosts, by last octet.
pub const HOSTS: [LabHost; 13] = [
    LabHost {
        octet: 10,
        name: "smb1",
        runs: "Samba smbd, `server min protocol = NT1`, default signing",
    },
    LabHost {
        octet: 11,
        name: "smb2",
        runs: "Samba smbd, SMB2+ only, `server signing = mandatory`",
    },
    LabHost {
        octet: 12,
        name: "telnet",
        runs: "inetutils telnetd under inetutils-inetd",
    },
    LabHost {
        octet: 13,
        name: "ftp",
        runs: "vsftpd, anonymous login, no TLS",
    },
    LabHost {
        octet: 14,
        name: "snmp",
        runs: "net-snmp snmpd, community `public`",
    },
    LabHost {
        octet: 15,
        name: "xrdp",
        runs: "xrdp, `security_layer=rdp`",
    },
    LabHost {
        octet: 16,
        name: "sshd",
        runs: "OpenSSH sshd (Debian 12)",
    },
    LabHost {
        octet: 17,
        name: "dicom",
        runs: "dcmtk storescp (DICOM SCP)",
    },
    LabHost {
        octet: 20,
        name: "win7",
        runs: "stand-in: Windows 7 SP1 SMB1 + NTLMSSP, SMB2 disabled",
    },
    LabHost {
        octet: 21,
        name: "oldssh",
        runs: "stand-in: `SSH-1.99-OpenSSH_3.9p1` banner",
    },
    LabHost {
        octet: 22,
        name: "iis6",
        runs: "stand-in: HTTP `Server: Microsoft-IIS/6.0`",
    },
    LabHost {
        octet: 23,
        name: "rdpnla",
        runs: "stand-in: Windows 7 SP1 RDP requiring NLA (selects CredSSP; TLS-only and standard RDP refused with HYBRID_REQUIRED_BY_SERVER)",
    },
    LabHost {
        octet: 30,
        name: "printer",
        runs: "stand-in: raw printer port 9100 counting bytes received",
    },
];

/// The port list both the acceptance test and the benchmark sweep.
pub const SWEEP_PORTS: &str = "21,22,23,80,104,139,443,445,2575,3389,8080,8443,11112,9100,161/udp";

/// Programs the lab runs, with the Debian package of each.
pub const REQUIRED: [(&str, &str); 11] = [
    ("/usr/sbin/smbd", "samba"),
    ("/usr/sbin/telnetd", "inetutils-telnetd"),
    ("/usr/sbin/inetutils-inetd", "inetutils-inetd"),
    ("/usr/sbin/vsftpd", "vsftpd"),
    ("/usr/sbin/snmpd", "snmpd"),
    ("/usr/sbin/xrdp", "xrdp"),
    ("/usr/sbin/sshd", "openssh-server"),
    ("ssh-keygen", "openssh-client"),
    ("storescp", "dcmtk"),
    ("openssl", "openssl"),
    ("ss", "iproute2"),
];

/// Whether `program` (an absolute path, or a name looked up on PATH) exists.
pub fn installed(program: &str) -> bool {
    if program.starts_with('/') {
        Path::new(program).is_file()
    } else {
        std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
    }
}

/// Panics, naming the package, when `program` is not installed.
pub fn require(program: &str, package: &str) {
    assert!(
        installed(program),
        "{program} is not installed: install the Debian package {package} (scripts/test does)"
    );
}

/// Starts `shell` as a daemon in `host` (private /run, own session), its
/// output in `dir/<name>.log`.
pub fn start(host: &Host, dir: &Path, name: &str, shell: &str) -> Child {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log");
    let err = log.try_clone().expect("log");
    host.daemon(shell)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"))
}

/// The lab's daemons: killed and reaped on drop (before the lab itself
/// removes the namespaces).
#[derive(Default)]
pub struct Daemons(Vec<Child>);

impl Daemons {
    pub fn push(&mut self, c: Child) {
        self.0.push(c);
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The log of the daemon `name` (empty when there is none).
pub fn log_of(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
}

/// Waits until `check` holds, or fails naming `what` and its log.
pub fn wait_for(what: &str, dir: &Path, within: Duration, mut check: impl FnMut() -> bool) {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not come up:\n{}", log_of(dir, what));
}

/// Whether a port of `host` listens, seen from inside its own namespace
/// (ss lists listening sockets; nothing is sent to the service).
pub fn listening(host: &Host, port: u16, udp: bool) -> bool {
    let flag = if udp { "-lun" } else { "-ltn" };
    host.command("ss")
        .args([flag, &format!("sport = :{port}")])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().count() > 1)
        .unwrap_or(false)
}

/// The file a responder creates once it listens.
pub fn ready_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.ready"))
}

/// Starts the `tw-lab-responder` at `responder` in `mode` in `host`, and
/// waits until it listens.
pub fn start_responder(
    responder: &Path,
    host: &Host,
    dir: &Path,
    name: &str,
    mode: &str,
    addr: &str,
    extra: &[&str],
) -> Child {
    let ready = ready_file(dir, name);
    let mut shell = format!("{} {mode} {addr} {}", responder.display(), ready.display());
    for e in extra {
        shell.push_str(&format!(" '{e}'"));
    }
    let child = start(host, dir, name, &shell);
    wait_for(name, dir, Duration::from_secs(10), || ready.exists());
    child
}

fn openssl_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}-cert.pem")),
        dir.join(format!("{name}-key.pem")),
    );
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=lab",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "openssl req");
    (cert, key)
}

fn samba_conf(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let d = dir.join(name);
    for sub in [
        "lock", "state", "cache", "private", "pid", "ncalrpc", "share", "log",
    ] {
        std::fs::create_dir_all(d.join(sub)).expect("samba dirs");
    }
    let p = d.display();
    let conf = format!(
        "[global]\n  server role = standalone server\n  workgroup = LAB\n  netbios name = {name}\n  \
         smb ports = 445 139\n  lock directory = {p}/lock\n  state directory = {p}/state\n  \
         cache directory = {p}/cache\n  private dir = {p}/private\n  pid directory = {p}/pid\n  \
         ncalrpc dir = {p}/ncalrpc\n  log file = {p}/log/log.%m\n  load printers = no\n  \
         printcap name = /dev/null\n  disable spoolss = yes\n{extra}\n[share]\n  path = {p}/share\n  guest ok = yes\n"
    );
    let path = d.join("smb.conf");
    std::fs::write(&path, conf).expect("smb.conf");
    path
}

/// A running lab. Fields drop in order: the daemons, then the namespaces.
pub struct LegacyLab {
    /// Every daemon and responder of the lab.
    pub daemons: Daemons,
    /// The namespaces (removed on drop).
    pub lab: Lab,
    /// The host the sweeps run from (`.2`).
    pub scanner: Host,
    /// The printer stand-in's record: `connections bytes` received so far.
    pub printer_record: PathBuf,
    /// storescp's output directory (stays empty: nothing is stored).
    pub dicom_store: PathBuf,
    subnet: u8,
}

impl LegacyLab {
    /// The address of the host at `octet`, e.g. `198.18.61.10`.
    pub fn ip(&self, octet: u8) -> String {
        format!("198.18.{}.{octet}", self.subnet)
    }

    /// The lab's subnet, e.g. `198.18.61.0/24`.
    pub fn cidr(&self) -> String {
        self.lab.cidr()
    }
}

/// Builds the lab on 198.18.`subnet`.0/24 with state under `dir`, the
/// stand-ins run from the `tw-lab-responder` binary at `responder`; returns
/// once every service listens. Panics (naming the log) if one does not.
pub fn build(subnet: u8, dir: &Path, responder: &Path) -> LegacyLab {
    for (p, pkg) in REQUIRED {
        require(p, pkg);
    }
    let mut lab = Lab::new(subnet);
    let scanner = lab.host("scanner", SCANNER_OCTET);
    let ip = |o: u8| format!("198.18.{subnet}.{o}");
    let mut children = Daemons::default();

    // Samba allowing SMBv1.
    let h = lab.host("smb1", 10);
    let conf = samba_conf(dir, "LABSMB1", "  server min protocol = NT1");
    children.push(start(
        &h,
        dir,
        "smb1",
        &format!(
            "/usr/sbin/smbd --foreground --no-process-group -s {}",
            conf.display()
        ),
    ));
    wait_for("smb1", dir, Duration::from_secs(15), || {
        listening(&h, 445, false)
    });

    // Samba SMB2+ with mandatory signing: clean.
    let h = lab.host("smb2", 11);
    let conf = samba_conf(
        dir,
        "LABSMB2",
        "  server min protocol = SMB2_02\n  server signing = mandatory",
    );
    children.push(start(
        &h,
        dir,
        "smb2",
        &format!(
            "/usr/sbin/smbd --foreground --no-process-group -s {}",
            conf.display()
        ),
    ));
    wait_for("smb2", dir, Duration::from_secs(15), || {
        listening(&h, 445, false)
    });

    // inetutils telnetd under inetutils-inetd.
    let h = lab.host("telnet", 12);
    let inetd = dir.join("inetd.conf");
    std::fs::write(
        &inetd,
        "23 stream tcp nowait root /usr/sbin/telnetd telnetd\n",
    )
    .expect("inetd.conf");
    children.push(start(
        &h,
        dir,
        "telnet",
        &format!(
            "/usr/sbin/inetutils-inetd -d --pidfile={} {}",
            dir.join("inetd.pid").display(),
            inetd.display()
        ),
    ));
    wait_for("telnet", dir, Duration::from_secs(10), || {
        listening(&h, 23, false)
    });

    // vsftpd with anonymous login, no TLS.
    let h = lab.host("ftp", 13);
    let anon = dir.join("anon");
    std::fs::create_dir_all(&anon).expect("anon root");
    Command::new("chmod")
        .arg("555")
        .arg(&anon)
        .status()
        .expect("chmod");
    let vconf = dir.join("vsftpd.conf");
    std::fs::write(
        &vconf,
        format!(
            "listen=YES\nlisten_port=21\nbackground=NO\nseccomp_sandbox=NO\nanonymous_enable=YES\n\
             no_anon_password=YES\nlocal_enable=NO\nwrite_enable=NO\nanon_root={a}\nsecure_chroot_dir={a}\n",
            a = anon.display()
        ),
    )
    .expect("vsftpd.conf");
    children.push(start(
        &h,
        dir,
        "ftp",
        &format!("/usr/sbin/vsftpd {}", vconf.display()),
    ));
    wait_for("ftp", dir, Duration::from_secs(10), || {
        listening(&h, 21, false)
    });

    // snmpd answering the community public.
    let h = lab.host("snmp", 14);
    let sconf = dir.join("snmpd.conf");
    std::fs::write(
        &sconf,
        "agentaddress udp:161\nrocommunity public default\nsysdescr Linux lab-snmp 6.1.0-26-amd64 #1 SMP Debian x86_64\n",
    )
    .expect("snmpd.conf");
    children.push(start(
        &h,
        dir,
        "snmp",
        &format!(
            "/usr/sbin/snmpd -f -Lo -C -c {} -p {} --persistentDir={}",
            sconf.display(),
            dir.join("snmpd.pid").display(),
            dir.join("snmp-persist").display()
        ),
    ));
    wait_for("snmp", dir, Duration::from_secs(10), || {
        listening(&h, 161, true)
    });

    // xrdp with standard RDP security: no NLA.
    let h = lab.host("xrdp", 15);
    let (cert, key) = openssl_cert(dir, "xrdp");
    let ini = dir.join("xrdp.ini");
    std::fs::write(
        &ini,
        format!(
            "[Globals]\nini_version=1\nfork=false\nport=tcp://{}:3389\nsecurity_layer=rdp\n\
             crypt_level=high\ncertificate={}\nkey_file={}\nssl_protocols=TLSv1.2, TLSv1.3\n\
             [Logging]\nLogFile={}\nLogLevel=INFO\nEnableSyslog=false\n",
            ip(15),
            cert.display(),
            key.display(),
            dir.join("xrdp-own.log").display()
        ),
    )
    .expect("xrdp.ini");
    children.push(start(
        &h,
        dir,
        "xrdp",
        &format!(
            "sh -c 'mkdir -p /run/xrdp/sockdir && exec /usr/sbin/xrdp --nodaemon --config {}'",
            ini.display()
        ),
    ));
    wait_for("xrdp", dir, Duration::from_secs(10), || {
        listening(&h, 3389, false)
    });

    // A modern OpenSSH: clean.
    let h = lab.host("sshd", 16);
    let hostkey = dir.join("ssh_host_key");
    assert!(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&hostkey)
        .status()
        .is_ok_and(|s| s.success()));
    let sshd_conf = dir.join("sshd_config");
    std::fs::write(
        &sshd_conf,
        format!(
            "ListenAddress {}\nPort 22\nHostKey {}\nPidFile {}\nUsePAM no\n",
            ip(16),
            hostkey.display(),
            dir.join("sshd.pid").display()
        ),
    )
    .expect("sshd_config");
    children.push(start(
        &h,
        dir,
        "sshd",
        &format!(
            "sh -c 'mkdir -p -m 755 /run/sshd && exec /usr/sbin/sshd -D -e -f {}'",
            sshd_conf.display()
        ),
    ));
    wait_for("sshd", dir, Duration::from_secs(10), || {
        listening(&h, 22, false)
    });

    // dcmtk's storescp: a DICOM SCP, no finding.
    let h = lab.host("dicom", 17);
    let store = dir.join("dicom-out");
    std::fs::create_dir_all(&store).expect("dicom out");
    children.push(start(
        &h,
        dir,
        "dicom",
        &format!(
            "storescp --aetitle STORESCP --output-directory {} 104",
            store.display()
        ),
    ));
    wait_for("dicom", dir, Duration::from_secs(10), || {
        listening(&h, 104, false)
    });

    // Hand-made responders.
    let h = lab.host("win7", 20);
    children.push(start_responder(
        responder,
        &h,
        dir,
        "win7",
        "smb-win7",
        &format!("{}:445", ip(20)),
        &[],
    ));
    let h = lab.host("oldssh", 21);
    children.push(start_responder(
        responder,
        &h,
        dir,
        "oldssh",
        "ssh-banner",
        &format!("{}:22", ip(21)),
        &["SSH-1.99-OpenSSH_3.9p1"],
    ));
    let h = lab.host("iis6", 22);
    children.push(start_responder(
        responder,
        &h,
        dir,
        "iis6",
        "http-iis6",
        &format!("{}:80", ip(22)),
        &[],
    ));
    let h = lab.host("rdpnla", 23);
    children.push(start_responder(
        responder,
        &h,
        dir,
        "rdpnla",
        "rdp-nla",
        &format!("{}:3389", ip(23)),
        &[],
    ));
    let h = lab.host("printer", 30);
    let record = dir.join("printer.record");
    let record_arg = record.display().to_string();
    children.push(start_responder(
        responder,
        &h,
        dir,
        "printer",
        "printer",
        &format!("{}:9100", ip(30)),
        &[&record_arg],
    ));

    LegacyLab {
        daemons: children,
        lab,
        scanner,
        printer_record: record,
        dicom_store: store,
        subnet,
    }
}
