//! Builders of server-side bytes, for the tests of this module only.

/// A TLS record.
pub(super) fn record(ct: u8, version: u16, payload: &[u8]) -> Vec<u8> {
    let mut r = vec![ct];
    r.extend(version.to_be_bytes());
    r.extend((payload.len() as u16).to_be_bytes());
    r.extend_from_slice(payload);
    r
}

/// A handshake message.
pub(super) fn handshake(t: u8, body: &[u8]) -> Vec<u8> {
    let len = body.len() as u32;
    let mut m = vec![t];
    m.extend(&len.to_be_bytes()[1..]);
    m.extend_from_slice(body);
    m
}

/// One extension.
pub(super) fn ext(t: u16, data: &[u8]) -> Vec<u8> {
    let mut e = t.to_be_bytes().to_vec();
    e.extend((data.len() as u16).to_be_bytes());
    e.extend_from_slice(data);
    e
}

/// A ServerHello handshake message (empty session id, null compression).
pub(super) fn server_hello(
    version: u16,
    random: [u8; 32],
    suite: u16,
    exts: Option<&[u8]>,
) -> Vec<u8> {
    let mut b = version.to_be_bytes().to_vec();
    b.extend(random);
    b.push(0);
    b.extend(suite.to_be_bytes());
    b.push(0);
    if let Some(e) = exts {
        b.extend((e.len() as u16).to_be_bytes());
        b.extend_from_slice(e);
    }
    handshake(2, &b)
}

/// A (pre-1.3) Certificate handshake message.
pub(super) fn certificate(certs: &[&[u8]]) -> Vec<u8> {
    let mut list = Vec::new();
    for c in certs {
        list.extend(&(c.len() as u32).to_be_bytes()[1..]);
        list.extend_from_slice(c);
    }
    let mut b = (list.len() as u32).to_be_bytes()[1..].to_vec();
    b.extend(list);
    handshake(11, &b)
}

/// A ServerKeyExchange body with DH parameters (no signature).
pub(super) fn ske_dh(p: &[u8], g: &[u8], ys: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [p, g, ys] {
        b.extend((v.len() as u16).to_be_bytes());
        b.extend_from_slice(v);
    }
    b
}

/// A ServerKeyExchange body with a named curve (no signature).
pub(super) fn ske_ecdh(group: u16, point: &[u8]) -> Vec<u8> {
    let mut b = vec![3];
    b.extend(group.to_be_bytes());
    b.push(point.len() as u8);
    b.extend_from_slice(point);
    b
}

/// A whole TLS 1.2 flight in one record: ServerHello (renegotiation_info,
/// ec_point_formats), Certificate (two entries), the ServerKeyExchange when
/// `ske` is not empty, ServerHelloDone.
pub(super) fn tls12_flight(suite: u16, ske: &[u8]) -> Vec<u8> {
    let mut exts = ext(0xff01, &[0]);
    exts.extend(ext(11, &[1, 0]));
    let mut msgs = server_hello(0x0303, [0x42; 32], suite, Some(&exts));
    msgs.extend(certificate(&[b"leaf-der", b"intermediate-der"]));
    if !ske.is_empty() {
        msgs.extend(handshake(12, ske));
    }
    msgs.extend(handshake(14, &[]));
    record(22, 0x0303, &msgs)
}

/// An alert record.
pub(super) fn alert_record(level: u8, description: u8) -> Vec<u8> {
    record(21, 0x0303, &[level, description])
}
