#!/usr/bin/env python3
"""Generates a synthetic but realistic OSV feed and a matching host inventory
for `scripts/bench-patch` (Python standard library only; deterministic for a
given seed).

  gen-osv.py generate --out DIR [--count 100000] [--packages 3000] [--seed 5]
      DIR/osv/*.json       one OSV record per file (named by id, ':' -> '_')
      DIR/all.zip          the same records as a vendor all.zip (deflated)
      DIR/inventory.json   a Debian 12 host (trustwatch.scan/v1, one host
                           asset) with PACKAGES binary packages
      DIR/expected.json    which source packages of that host must come out
                           vulnerable / vulnerable_unfixed, and counts
      DIR/epss.csv         EPSS scores (FIRST's CSV) for every CVE of the feed
      DIR/kev.json         a CISA KEV catalogue listing 0.5 % of those CVEs
  gen-osv.py check --expected DIR/expected.json --findings MATCH.json
      exits 1 unless the package findings of `trustwatch-server match
      --format json` are exactly the expected ones.

What the feed looks like (shares of records): Debian 42 % (DEBIAN-CVE-*
with Debian:11/12/13 entries, DSA-* for 12, DLA-* for 11), Ubuntu 33 %
(UBUNTU-CVE-* over 20.04/22.04/24.04 LTS and Pro 18.04, USN-* with binary
lists), Alpine 15 % (ALPINE-CVE-* over v3.18..v3.21), AlmaLinux 10 %
(ALSA-* with several binary RPMs, AlmaLinux:8/9). Package names are a list
of real Debian source names followed by generated ones in the usual naming
patterns; how many advisories a package gets follows a Zipf law (linux,
chromium and firefox-esr get thousands, most get a handful), as in the real
feeds. Versions follow each distribution's conventions (epochs, `+dfsg`,
`+deb12uN`, `~deb12uN` backports, `ubuntu0.N`, `-rN`, `.el9_4`). About a
quarter of the Debian entries have no fix yet; 0.3 % of records are
withdrawn; 2 % of fixed entries use `last_affected` instead of `fixed`.

The host: ~1,200 source packages (the well-known ones first), 1-6 binary
packages each, 3,000 in all; 85 % of sources at their newest bookworm
version, the rest one to three updates behind. Every Debian:12 entry of
the feed is derived from the same per-source version history, so the
expected findings are known exactly.
"""

import argparse
import json
import os
import random
import shutil
import sys
import zipfile

REAL_SOURCES = """
linux chromium firefox-esr thunderbird openjdk-17 webkit2gtk imagemagick qemu
php8.2 mariadb tiff xen ffmpeg binutils vim gpac postgresql-15 openssl curl
glibc libxml2 python3.11 ghostscript tcpdump wireshark gimp libreoffice bind9
samba openssh sudo systemd git nodejs ruby3.1 perl expat zlib libpng1.6
libjpeg-turbo libwebp freetype fontconfig cairo pango1.0 glib2.0 gtk+3.0
gnutls28 nss krb5 cyrus-sasl2 openldap apache2 nginx squid exim4 postfix
dovecot bluez wpa network-manager dbus policykit-1 util-linux shadow pam
coreutils bash tar gzip xz-utils bzip2 libzstd lz4 libarchive unzip zip
sqlite3 libssh libssh2 nghttp2 c-ares libidn2 libgcrypt20 gnupg2 libksba
libtasn1-6 p11-kit ca-certificates tzdata dpkg apt e2fsprogs lvm2 cryptsetup
grub2 shim intel-microcode amd64-microcode firmware-nonfree libx11
xorg-server mesa libdrm pulseaudio pipewire alsa-lib cups hplip avahi ntpsec
chrony rsync wget less nano emacs poppler evince libraw exiv2 jasper openexr
libde265 libheif dav1d aom libvpx opus flac libsndfile sox libvorbis vlc
gstreamer1.0 gst-plugins-base1.0 gst-plugins-good1.0 gst-plugins-bad1.0
libcaca ncurses readline libyaml python-urllib3 requests jinja2 pillow
python-cryptography twisted python-django golang-1.19 rustc-web
llvm-toolchain-15 gcc-12 cmake make-dfsg libtool autoconf ruby-nokogiri
libxslt icu harfbuzz graphite2 libsoup2.4 libsoup3 epiphany-browser
evolution-data-server docker.io containerd runc redis memcached haproxy
varnish openvpn strongswan libreswan frr isc-dhcp dnsmasq unbound
knot-resolver pdns-recursor slurm-wlm munge zabbix icinga2 net-snmp ipmitool
smartmontools nfs-utils rpcbind libtirpc autofs sssd 389-ds-base libvirt
open-vm-tools edk2 u-boot busybox dropbear libcap2 libseccomp apparmor audit
rsyslog logrotate cron at procps psmisc lsof strace gdb valgrind elfutils
file jq libonig pcre2 pcre3 libzip lua5.3 lua5.4 tcl8.6 tk8.6 wordpress
roundcube phpmyadmin openjpeg2 libtheora speex libmodplug libopenmpt
libmatroska libass fribidi libgd2 netpbm-free graphicsmagick giflib lcms2
little-cms libexif libgphoto2 sane-backends bubblewrap flatpak snapd
packagekit udisks2 upower accountsservice gdm3 lightdm xrdp tigervnc
x11vnc remmina freerdp2 spice spice-gtk usbredir libusb-1.0 usbutils
pciutils kmod dracut initramfs-tools base-files debian-archive-keyring
""".split()

STEMS = """
acl adns aio ao apr argon asm atk attr avc bcrypt bdb blkid bpf brotli
bsd btrfs cap cbor cdio cgroup check cjson cmark colord confuse crack
croco csv ctf cue curses daemon db dconf dnet dns drm dv dvd edit elf
enchant epoxy ev event exif fam fastjson ffi fido fuse gc gcab gdbm geo
gif git gl glvnd gpg gpm grpc gsasl gsf gsm gss gudev hdf hiredis hsts
http hunspell hwloc hyphen ical iconv idn inih inotify ipset iptc isl
jansson jbig jemalloc json kate keyutils kmod lber ldap lmdb lognorm lqr
lzo magic maxmind mbedtls md mhash mnl mng mount mpc mpfr msgpack mtdev
musl mysql ndp neon netfilter newt nfnetlink nl noise notify npth nspr
numa oauth odbc ogg oniguruma orc otf pam paper pcap pciaccess pgm pipeline
pixman plist pmem popt portaudio proxy psl pwquality qrencode raptor rdf
re2 rest rsvg rtmp samplerate sasl secret selinux sepol serd signon sigc
slang smi snappy sodium sord soup spectre speexdsp sratom srtp ssh2
startup sysfs tag tdb tevent thai tidy tirpc toml tre ts udev unistring
unwind uring usb utempter uuid uv varlink vdpau vpx wacom wavpack wbclient
webp woff wrap x264 x265 xcb xcomposite xcursor xdamage xdmcp xext xfixes
xft xi xinerama xkb xmlb xmu xpm xrandr xrender xshmfence xss xt xtst
xxhash yajl yaml zip zmq zvbi
""".split()

PATTERNS = [
    "lib{a}", "{a}", "python-{a}", "node-{a}", "lib{a}-perl", "golang-{a}-{b}",
    "r-cran-{a}", "ruby-{a}", "php-{a}", "rust-{a}", "lib{a}-{b}", "{a}-{b}",
    "haskell-{a}", "ocaml-{a}", "lib{a}{n}", "{a}{n}",
]

WORDS = """
a an the of in to when via remote local attacker crafted file request
packet buffer overflow heap stack use-after-free out-of-bounds read write
null pointer dereference integer denial of service memory corruption
arbitrary code execution bypass authentication certificate validation
parser handling function component allows could lead unexpected
privilege escalation information disclosure race condition improper
input sanitization path traversal injection format string leak
""".split()

DEB_RELEASES = {"11": "bullseye", "12": "bookworm", "13": "trixie"}
UBUNTU_ECOS = [
    ("Ubuntu:20.04:LTS", "20.04"), ("Ubuntu:22.04:LTS", "22.04"),
    ("Ubuntu:24.04:LTS", "24.04"), ("Ubuntu:Pro:18.04:LTS", "18.04"),
]
ALPINE_ECOS = ["Alpine:v3.18", "Alpine:v3.19", "Alpine:v3.20", "Alpine:v3.21"]
ALMA_ECOS = [("AlmaLinux:8", "el8"), ("AlmaLinux:9", "el9")]

BENCH_HOST = "bench-debian12"

# Sources every Debian 12 host of this size has.
CORE = set("""
linux glibc openssl systemd openssh sudo curl bash coreutils util-linux tar
gzip xz-utils zlib perl python3.11 apt dpkg libxml2 expat sqlite3 krb5 pam
shadow tzdata ca-certificates gnupg2 libgcrypt20 gnutls28 ncurses readline
procps e2fsprogs pcre2 libzstd bzip2 libcap2 dbus glib2.0 libssh2 nghttp2
""".split())


class Model:
    """Package names, popularity and version histories, all from one RNG."""

    def __init__(self, rng, pool_size=5000):
        self.rng = rng
        names = list(dict.fromkeys(REAL_SOURCES))
        seen = set(names)
        while len(names) < pool_size:
            p = rng.choice(PATTERNS)
            n = p.format(a=rng.choice(STEMS), b=rng.choice(STEMS), n=rng.randint(0, 9))
            if n not in seen:
                seen.add(n)
                names.append(n)
        self.names = names
        # Zipf (s = 1) over the pool order: the well-known names lead.
        weights = [1.0 / (i + 1) for i in range(len(names))]
        total = 0.0
        self.cum = []
        for w in weights:
            total += w
            self.cum.append(total)
        self.deb_hist = {}
        self.other_hist = {}

    def pick(self, limit=None):
        cum = self.cum if limit is None else self.cum[:limit]
        x = self.rng.random() * cum[-1]
        lo, hi = 0, len(cum) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if cum[mid] < x:
                lo = mid + 1
            else:
                hi = mid
        return self.names[lo]

    def upstream(self):
        r = self.rng
        kind = r.random()
        if kind < 0.55:
            u = f"{r.randint(0, 9)}.{r.randint(0, 40)}.{r.randint(0, 20)}"
        elif kind < 0.8:
            u = f"{r.randint(1, 30)}.{r.randint(0, 99)}"
        elif kind < 0.9:
            u = f"{r.randint(2015, 2024)}{r.randint(1, 12):02d}{r.randint(1, 28):02d}"
        else:
            u = f"{r.randint(0, 5)}.{r.randint(0, 30)}.{r.randint(0, 9)}.{r.randint(0, 99)}"
        if r.random() < 0.15:
            u += "+dfsg"
        if r.random() < 0.1:
            u = f"{r.randint(1, 2)}:{u}"
        return u

    def deb12(self, name):
        """The bookworm version history of a source, oldest first."""
        h = self.deb_hist.get(name)
        if h is not None:
            return h
        r = self.rng
        rank = self.names.index(name)
        u = self.upstream()
        rev = r.randint(1, 5)
        updates = r.randint(0, 4) if rank > 200 else r.randint(3, 12)
        if rank < 10:
            updates = r.randint(25, 45)
        h = [f"{u}-{rev}"] + [f"{u}-{rev}+deb12u{k}" for k in range(1, updates + 1)]
        if r.random() < 0.15:
            # A newer upstream backported to stable: a `~deb12uN` version.
            head, dot, last = u.rpartition(".")
            if dot and head[-1:].isdigit() and last.isdigit():
                nu = f"{head}.{int(last) + 1}"
            else:
                nu = f"{u}.1"
            h += [f"{nu}-1~deb12u{k}" for k in range(1, r.randint(1, 3) + 1)]
        self.deb_hist[name] = h
        return h

    def history(self, eco, name, make):
        key = (eco, name)
        h = self.other_hist.get(key)
        if h is None:
            h = make()
            self.other_hist[key] = h
        return h


def prose(rng, lo, hi):
    out = []
    n = 0
    target = rng.randint(lo, hi)
    while n < target:
        s = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20)))
        s = s[0].upper() + s[1:] + "."
        out.append(s)
        n += len(s) + 1
    return " ".join(out)


def stamp(rng, year):
    return (f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T"
            f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z")


class Feed:
    def __init__(self, rng, model):
        self.rng = rng
        self.m = model
        self.cve_n = 10000
        self.cves = []
        self.ids = set()
        # (source, kind, fix index) of every live Debian:12 entry
        self.deb12_entries = []
        self.counts = {}

    def cve(self):
        self.cve_n += 1
        c = f"CVE-{self.rng.randint(2016, 2025)}-{self.cve_n}"
        self.cves.append(c)
        return c

    def unique(self, i):
        assert i not in self.ids, i
        self.ids.add(i)
        return i

    def range_for(self, hist, fix_index, unfixed, last_affected=False):
        ev = [{"introduced": "0"}]
        if unfixed:
            return [{"type": "ECOSYSTEM", "events": ev}]
        if last_affected:
            ev.append({"last_affected": hist[fix_index - 1]})
        else:
            ev.append({"fixed": hist[fix_index]})
        return [{"type": "ECOSYSTEM", "events": ev}]

    def base(self, rid, year, summary):
        r = self.rng
        pub = stamp(r, year)
        rec = {
            "schema_version": "1.7.3",
            "id": rid,
            "published": pub,
            "modified": stamp(r, min(year + r.randint(0, 2), 2026)),
            "summary": summary,
            "details": prose(r, 200, 1100),
        }
        return rec

    def deb_entry(self, name, rel, withdrawn, kind_hint=None):
        """One Debian affected entry; records the Debian:12 ones."""
        r = self.rng
        if rel == "12":
            hist = self.m.deb12(name)
        elif rel == "11":
            hist = self.m.history("Debian:11", name, lambda: self._deb_other(name, "+deb11u"))
        else:
            hist = self.m.history("Debian:13", name, lambda: self._deb_other(name, None))
        unfixed = kind_hint != "fixed" and (len(hist) < 2 or r.random() < 0.25)
        if len(hist) < 2:
            unfixed = True
        fix = 0 if unfixed else r.randint(1, len(hist) - 1)
        last = (not unfixed) and r.random() < 0.02
        entry = {
            "package": {"name": name, "ecosystem": f"Debian:{rel}",
                        "purl": f"pkg:deb/debian/{name}?arch=source"},
            "ranges": self.range_for(hist, fix, unfixed, last),
        }
        if not unfixed and r.random() < 0.7:
            entry["versions"] = hist[:fix][-30:]
        elif unfixed:
            entry["versions"] = hist[-30:]
        if rel == "12" and not withdrawn:
            self.deb12_entries.append((name, "unfixed" if unfixed else "fixed", fix))
        return entry

    def _deb_other(self, name, suffix):
        r = self.rng
        u = self.m.upstream()
        rev = r.randint(1, 4)
        h = [f"{u}-{rev}"]
        if suffix:
            h += [f"{u}-{rev}{suffix}{k}" for k in range(1, r.randint(1, 6) + 1)]
        else:
            h += [f"{u}-{rev + k}" for k in range(1, r.randint(1, 4) + 1)]
        return h

    def debian(self):
        r = self.rng
        x = r.random()
        withdrawn = r.random() < 0.003
        if x < 0.9:
            c = self.cve()
            name = self.m.pick()
            rec = self.base(self.unique(f"DEBIAN-{c}"), int(c[4:8]), f"{name} - security issue")
            rec["upstream"] = [c]
            rels = [rel for rel in ("11", "12", "13") if r.random() < 0.75] or ["12"]
            rec["affected"] = [self.deb_entry(name, rel, withdrawn) for rel in rels]
            kind = "DEBIAN-CVE"
        elif x < 0.95:
            n = len(self.ids) + 5000
            name = self.m.pick(2000)
            cves = [self.cve() for _ in range(r.randint(1, 8))]
            rec = self.base(self.unique(f"DSA-{n}-1"), 2023 + r.randint(0, 2),
                            f"{name} - security update")
            rec["upstream"] = cves + [f"DEBIAN-{c}" for c in cves]
            rec["affected"] = [self.deb_entry(name, "12", withdrawn, "fixed")]
            kind = "DSA"
        else:
            n = len(self.ids) + 3000
            name = self.m.pick(2000)
            cves = [self.cve() for _ in range(r.randint(1, 6))]
            rec = self.base(self.unique(f"DLA-{n}-1"), 2022 + r.randint(0, 3),
                            f"{name} - security update")
            rec["upstream"] = cves
            rec["affected"] = [self.deb_entry(name, "11", withdrawn, "fixed")]
            kind = "DLA"
        for a in rec["affected"]:
            a["database_specific"] = {
                "source": f"https://storage.googleapis.com/debian-osv/{rec['id']}.json"}
        if withdrawn:
            rec["withdrawn"] = rec["modified"]
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return rec

    def ubuntu_hist(self, name, rel):
        def make():
            r = self.rng
            u = self.m.upstream()
            rev = r.randint(1, 4)
            x = r.randint(0, 3)
            n = r.randint(2, 12)
            if x == 0:
                return [f"{u}-{rev}"] + [f"{u}-{rev}ubuntu0.{k}" for k in range(1, n)]
            base = f"{u}-{rev}ubuntu{x}"
            return [base] + [f"{base}.{k}" for k in range(1, n)]
        return self.m.history(f"Ubuntu:{rel}", name, make)

    def ubuntu(self):
        r = self.rng
        withdrawn = r.random() < 0.003
        entries = []
        if r.random() < 0.85:
            c = self.cve()
            name = self.m.pick()
            rec = self.base(self.unique(f"UBUNTU-{c}"), int(c[4:8]), None)
            del rec["summary"]
            rec["aliases"] = []
            rec["upstream"] = [c]
            rec["related"] = []
            rec["severity"] = [{"type": "Ubuntu",
                                "score": r.choice(["negligible", "low", "medium", "high"])}]
            names = [name]
            kind = "UBUNTU-CVE"
        else:
            n = len(self.ids) + 6000
            names = [self.m.pick(2000) for _ in range(r.randint(1, 2))]
            rec = self.base(self.unique(f"USN-{n}-{r.randint(1, 3)}"), 2023,
                            f"{names[0]} vulnerabilities")
            cves = [self.cve() for _ in range(r.randint(1, 10))]
            rec["aliases"] = []
            rec["upstream"] = [f"UBUNTU-{c}" for c in cves]
            rec["related"] = []
            kind = "USN"
        for name in dict.fromkeys(names):
            for eco, rel in UBUNTU_ECOS:
                if r.random() > 0.6:
                    continue
                hist = self.ubuntu_hist(name, rel)
                unfixed = kind == "UBUNTU-CVE" and r.random() < 0.3
                fix = r.randint(1, len(hist) - 1)
                e = {
                    "package": {"ecosystem": eco, "name": name,
                                "purl": f"pkg:deb/ubuntu/{name}@{hist[fix]}?arch=source"},
                    "ranges": self.range_for(hist, fix, unfixed),
                    "versions": hist[: (len(hist) if unfixed else fix)],
                }
                if kind == "USN":
                    e["ecosystem_specific"] = {"binaries": [
                        {"binary_name": b, "binary_version": hist[fix]}
                        for b in (name, f"lib{name}", f"{name}-dbgsym")]}
                entries.append(e)
        if not entries:
            name = names[0]
            hist = self.ubuntu_hist(name, "22.04")
            entries.append({"package": {"ecosystem": "Ubuntu:22.04:LTS", "name": name},
                            "ranges": self.range_for(hist, 1, False)})
        rec["affected"] = entries
        if withdrawn:
            rec["withdrawn"] = rec["modified"]
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return rec

    def alpine(self):
        r = self.rng
        c = self.cve()
        name = self.m.pick(1500)
        rec = self.base(self.unique(f"ALPINE-{c}"), int(c[4:8]), None)
        del rec["summary"]
        rec["upstream"] = [c]
        entries = []
        for eco in ALPINE_ECOS:
            if r.random() > 0.7 and entries:
                continue

            def make():
                u = f"{r.randint(0, 9)}.{r.randint(0, 30)}.{r.randint(0, 15)}"
                if r.random() < 0.1:
                    u += f"_git{r.randint(2021, 2024)}{r.randint(1, 12):02d}{r.randint(1, 28):02d}"
                elif r.random() < 0.1:
                    u += f"_p{r.randint(1, 9)}"
                return [f"{u}-r{k}" for k in range(0, r.randint(2, 8))]
            hist = self.m.history(eco, name, make)
            fix = r.randint(1, len(hist) - 1)
            ev = [{"introduced": "0" if r.random() < 0.7 else hist[0]}, {"fixed": hist[fix]}]
            entries.append({
                "package": {"name": name, "ecosystem": eco,
                            "purl": f"pkg:apk/alpine/{name}?arch=source"},
                "ranges": [{"type": "ECOSYSTEM", "events": ev}],
                "ecosystem_specific": {},
                "database_specific": {"source": "https://storage.googleapis.com/"
                                      f"cve-osv-conversion/alpine/{rec['id']}.json"},
            })
        rec["affected"] = entries
        self.counts["ALPINE-CVE"] = self.counts.get("ALPINE-CVE", 0) + 1
        return rec

    def alma(self):
        r = self.rng
        year = r.randint(2021, 2025)
        n = len(self.ids) + 1000
        rid = self.unique(f"ALSA-{year}:{n}")
        src = self.m.pick(1500)
        cves = [self.cve() for _ in range(r.randint(1, 12))]
        sev = r.choice(["Low", "Moderate", "Important", "Critical"])
        rec = {
            "id": rid,
            "summary": f"{sev}: {src} security update",
            "published": stamp(r, year),
            "modified": stamp(r, year),
            "related": cves,
            "details": prose(r, 300, 1500),
            "references": [{"url": f"https://access.redhat.com/errata/RHSA-{year}:{n}",
                            "type": "ADVISORY"}] + [
                {"url": f"https://access.redhat.com/security/cve/{c}", "type": "REPORT"}
                for c in cves] + [
                {"url": f"https://errata.almalinux.org/9/ALSA-{year}-{n}.html",
                 "type": "ADVISORY"}],
        }
        eco, tag = r.choice(ALMA_ECOS)
        u = f"{r.randint(0, 9)}.{r.randint(0, 30)}.{r.randint(0, 15)}"
        rel = f"{r.randint(1, 40)}.{tag}_{r.randint(0, 5)}"
        if r.random() < 0.1:
            rel += ".alma.1"
        fixed = f"{u}-{rel}" if r.random() < 0.85 else f"{r.randint(1, 3)}:{u}-{rel}"
        bins = [src] + [f"{src}-{s}" for s in r.sample(
            ["libs", "devel", "common", "tools", "doc", "debuginfo", "utils", "server"],
            r.randint(0, 7))]
        rec["affected"] = [{
            "package": {"ecosystem": eco, "name": b},
            "ranges": [{"type": "ECOSYSTEM",
                        "events": [{"introduced": "0"}, {"fixed": fixed}]}],
        } for b in bins]
        self.counts["ALSA"] = self.counts.get("ALSA", 0) + 1
        return rec

    def record(self):
        x = self.rng.random()
        if x < 0.42:
            return self.debian()
        if x < 0.75:
            return self.ubuntu()
        if x < 0.90:
            return self.alpine()
        return self.alma()


def binaries_of(rng, name, k):
    base = name.replace("+", "").replace(".", "")
    cands = [name, f"lib{base}", f"{name}-common", f"{name}-data", f"{name}-doc",
             f"lib{base}-dev", f"{name}-bin", f"{name}-utils", f"lib{base}{rng.randint(0, 9)}"]
    if name == "linux":
        cands = ["linux-image-6.1.0-26-amd64", "linux-headers-6.1.0-26-common",
                 "linux-headers-6.1.0-26-amd64", "linux-libc-dev", "linux-kbuild-6.1"]
    out = []
    for c in cands:
        if c.startswith("liblib"):
            c = c[3:]
        if c not in out:
            out.append(c)
    return out[:k]


def inventory(rng, model, feed, packages):
    # Sources of the host: every well-known one present in half the cases,
    # then generated ones drawn by popularity, until PACKAGES binaries.
    chosen = []
    seen = set()
    for n in model.names[: len(REAL_SOURCES)]:
        if n in CORE or rng.random() < 0.55:
            chosen.append(n)
            seen.add(n)
    pkgs = []
    installed = {}
    used = set()

    def add(src):
        hist = model.deb12(src)
        if rng.random() < 0.85:
            i = len(hist) - 1
        else:
            i = max(0, len(hist) - 1 - rng.randint(1, 3))
        installed[src] = i
        k = 5 if src == "linux" else rng.choice([1, 1, 2, 2, 2, 3, 3, 4, 5, 6])
        added = 0
        for b in binaries_of(rng, src, k):
            if b in used or len(pkgs) >= packages:
                continue
            used.add(b)
            added += 1
            ver = hist[i]
            if rng.random() < 0.05:
                ver += "+b1"
            pkgs.append({"manager": "dpkg", "name": b, "version": ver,
                         "source_name": src, "source_version": hist[i],
                         "arch": rng.choice(["amd64"] * 6 + ["all"])})
        if not added:
            # Every binary name was taken by another source: not installed.
            del installed[src]

    for src in chosen:
        add(src)
    tries = 0
    while len(pkgs) < packages and tries < 1_000_000:
        tries += 1
        src = model.pick()
        if src in seen:
            # Tail names too: a real host has many packages with few advisories.
            src = model.names[rng.randint(0, len(model.names) - 1)]
            if src in seen:
                continue
        seen.add(src)
        add(src)
    pkgs.sort(key=lambda p: p["name"])
    host = {
        "kind": "host", "id": BENCH_HOST,
        "os": {"id": "debian", "version_id": "12", "codename": "bookworm",
               "name": "Debian GNU/Linux 12 (bookworm)"},
        "kernel": "6.1.0-26-amd64",
        "uptime_secs": 86400 * 12,
        "packages": pkgs,
        "package_count": len(pkgs),
        "reboot_required": False,
        "package_metadata_refreshed_at": "2026-03-01T00:00:00Z",
        "package_metadata_source": "apt",
    }
    doc = {"schema": "trustwatch.scan/v1", "agent_version": "0.1.0",
           "started_at": "2026-03-01T00:00:00Z", "finished_at": "2026-03-01T00:00:00Z",
           "assets": [host], "findings": [], "errors": []}
    vulnerable, unfixed = set(), set()
    looked_up = 0
    for src, kind, fix in feed.deb12_entries:
        if src not in installed:
            continue
        looked_up += 1
        if kind == "unfixed":
            unfixed.add(src)
        elif installed[src] < fix:
            vulnerable.add(src)
    expected = {
        "host": BENCH_HOST,
        "packages": len(pkgs),
        "sources": len(installed),
        "sources_behind": sum(1 for s, i in installed.items() if i < len(model.deb12(s)) - 1),
        "debian12_entries_in_feed": len(feed.deb12_entries),
        "debian12_entries_for_host": looked_up,
        "vulnerable": sorted(vulnerable),
        "vulnerable_unfixed": sorted(unfixed),
    }
    return doc, expected


def write_epss_kev(rng, feed, out):
    """EPSS for every CVE (most scores small, as in FIRST's data) and a KEV
    catalogue of a random 0.5 % of them."""
    scores = sorted((min(1.0, rng.paretovariate(1.6) * 0.0004), c) for c in feed.cves)
    n = len(scores)
    with open(os.path.join(out, "epss.csv"), "w") as f:
        f.write("#model_version:v2025.03.14,score_date:2026-03-01T12:00:00Z\n")
        f.write("cve,epss,percentile\n")
        rows = sorted((c, sc, (i + 1) / n) for i, (sc, c) in enumerate(scores))
        for c, sc, pc in rows:
            f.write(f"{c},{sc:.5f},{pc:.5f}\n")
    listed = sorted(rng.sample(feed.cves, max(1, n // 200)))
    vulns = [{
        "cveID": c, "vendorProject": "Example", "product": "Example",
        "vulnerabilityName": f"Example vulnerability {c}",
        "dateAdded": f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "shortDescription": prose(rng, 80, 200),
        "requiredAction": "Apply mitigations per vendor instructions or discontinue use of the product if mitigations are unavailable.",
        "dueDate": f"2026-{rng.randint(1, 2):02d}-{rng.randint(1, 28):02d}",
        "knownRansomwareCampaignUse": rng.choice(["Known", "Unknown", "Unknown", "Unknown"]),
        "notes": "", "cwes": [],
    } for c in listed]
    with open(os.path.join(out, "kev.json"), "w") as f:
        json.dump({"title": "CISA Catalog of Known Exploited Vulnerabilities",
                   "catalogVersion": "2026.03.01", "dateReleased": "2026-03-01T12:00:00.000Z",
                   "count": len(vulns), "vulnerabilities": vulns}, f, indent=4)
    return len(listed)


def generate(args):
    rng = random.Random(args.seed)
    model = Model(rng)
    feed = Feed(rng, model)
    out = args.out
    osv_dir = os.path.join(out, "osv")
    if os.path.exists(osv_dir):
        shutil.rmtree(osv_dir)
    os.makedirs(osv_dir)
    zpath = os.path.join(out, "all.zip")
    total_bytes = 0
    with zipfile.ZipFile(zpath, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        for _ in range(args.count):
            rec = feed.record()
            text = json.dumps(rec, indent=2) + "\n"
            data = text.encode()
            total_bytes += len(data)
            fname = rec["id"].replace(":", "_") + ".json"
            with open(os.path.join(osv_dir, fname), "wb") as f:
                f.write(data)
            z.writestr(fname, data)
    doc, expected = inventory(rng, model, feed, args.packages)
    expected["kev_listed"] = write_epss_kev(rng, feed, out)
    expected["epss_scores"] = len(feed.cves)
    expected["records"] = args.count
    expected["record_bytes"] = total_bytes
    expected["records_by_kind"] = feed.counts
    with open(os.path.join(out, "inventory.json"), "w") as f:
        json.dump(doc, f, indent=1)
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    summary = {k: v for k, v in expected.items() if k not in ("vulnerable", "vulnerable_unfixed")}
    summary["expected_vulnerable"] = len(expected["vulnerable"])
    summary["expected_vulnerable_unfixed"] = len(expected["vulnerable_unfixed"])
    print(json.dumps(summary))


def check(args):
    with open(args.expected) as f:
        exp = json.load(f)
    with open(args.findings) as f:
        doc = json.load(f)
    got = {"patch.package.vulnerable": set(), "patch.package.vulnerable_unfixed": set()}
    for fi in doc.get("findings", []):
        if fi.get("code") in got and fi.get("asset") == exp["host"]:
            got[fi["code"]].add(fi.get("subject"))
    ok = True
    for code, key in (("patch.package.vulnerable", "vulnerable"),
                      ("patch.package.vulnerable_unfixed", "vulnerable_unfixed")):
        want = set(exp[key])
        if got[code] != want:
            ok = False
            print(f"{code}: expected {len(want)}, got {len(got[code])}; "
                  f"missing {sorted(want - got[code])[:10]}, "
                  f"unexpected {sorted(got[code] - want)[:10]}", file=sys.stderr)
    errors = [e.get("reason") for e in doc.get("errors", [])]
    if any("skipped" in (e or "") or "does not parse" in (e or "") for e in errors):
        ok = False
        print(f"match reported errors: {errors[:5]}", file=sys.stderr)
    print(json.dumps({"ok": ok,
                      "vulnerable": len(got["patch.package.vulnerable"]),
                      "vulnerable_unfixed": len(got["patch.package.vulnerable_unfixed"])}))
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--out", required=True)
    g.add_argument("--count", type=int, default=100_000)
    g.add_argument("--packages", type=int, default=3000)
    g.add_argument("--seed", type=int, default=5)
    c = sub.add_parser("check")
    c.add_argument("--expected", required=True)
    c.add_argument("--findings", required=True)
    args = p.parse_args()
    if args.cmd == "generate":
        generate(args)
        return 0
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
