//! DICOM upper layer (PS3.8 §9.3): association for Verification, then
//! release.
//!
//! Sends: an A-ASSOCIATE-RQ proposing one presentation context, the
//! Verification SOP Class 1.2.840.10008.1.1 with Implicit VR Little Endian
//! 1.2.840.10008.1.2; then, if accepted, an A-RELEASE-RQ. Never a DIMSE
//! message: no C-ECHO, no C-STORE, nothing that could create data on a
//! clinical system.
//!
//! PDU format: `TYPE(1) RESERVED(1) LENGTH(4, big-endian)` then LENGTH
//! bytes. Items inside A-ASSOCIATE PDUs: `TYPE(1) RESERVED(1) LENGTH(2,
//! big-endian)` then LENGTH bytes. Every length is checked against its
//! container; UIDs are sent unpadded (PS3.8 Annex F).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::bytes::{be16, be32, slice, u8_at};
use super::{clean_text, Conn, ParseError, ProbeError, ProbeLimits};

/// DICOM Application Context Name (PS3.7 Annex A.2.1).
pub const APPLICATION_CONTEXT: &str = "1.2.840.10008.3.1.1.1";
/// Verification SOP Class.
pub const VERIFICATION_SOP_CLASS: &str = "1.2.840.10008.1.1";
/// Implicit VR Little Endian transfer syntax.
pub const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";
/// Our Implementation Class UID: a UUID-derived UID (ISO/IEC 9834-8, root
/// 2.25), so no registered root is needed.
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.59761181303558764301994856601350345220";
/// Our Implementation Version Name (at most 16 characters).
pub const IMPLEMENTATION_VERSION_NAME: &str = "TRUSTWATCH";
/// The AE titles used: the called title most SCPs accept, and ours.
pub const CALLED_AE: &str = "ANY-SCP";
pub const CALLING_AE: &str = "TRUSTWATCH";
/// Largest PDU we say we accept.
pub const MAX_PDU_LENGTH: u32 = 16_384;

const PDU_ASSOCIATE_RQ: u8 = 0x01;
const PDU_ASSOCIATE_AC: u8 = 0x02;
const PDU_ASSOCIATE_RJ: u8 = 0x03;
const PDU_RELEASE_RQ: u8 = 0x05;
const PDU_RELEASE_RP: u8 = 0x06;
const PDU_ABORT: u8 = 0x07;

fn item(kind: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![kind, 0x00];
    // Our items are short constants: the length fits in 16 bits.
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
    out
}

fn ae_title(title: &str) -> [u8; 16] {
    let mut out = [b' '; 16];
    for (o, b) in out.iter_mut().zip(title.bytes()) {
        *o = b;
    }
    out
}

/// The A-ASSOCIATE-RQ PDU (PS3.8 Table 9-11).
pub fn encode_associate_rq(called: &str, calling: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&[0x00, 0x01, 0x00, 0x00]); // protocol version 1, reserved
    body.extend_from_slice(&ae_title(called));
    body.extend_from_slice(&ae_title(calling));
    body.extend_from_slice(&[0u8; 32]);
    body.extend(item(0x10, APPLICATION_CONTEXT.as_bytes()));
    let pc = [
        &[0x01, 0x00, 0x00, 0x00][..], // presentation context id 1, reserved x3
        &item(0x30, VERIFICATION_SOP_CLASS.as_bytes()),
        &item(0x40, IMPLICIT_VR_LITTLE_ENDIAN.as_bytes()),
    ]
    .concat();
    body.extend(item(0x20, &pc));
    let user = [
        item(0x51, &MAX_PDU_LENGTH.to_be_bytes()),
        item(0x52, IMPLEMENTATION_CLASS_UID.as_bytes()),
        item(0x55, IMPLEMENTATION_VERSION_NAME.as_bytes()),
    ]
    .concat();
    body.extend(item(0x50, &user));
    pdu(PDU_ASSOCIATE_RQ, &body)
}

/// The A-RELEASE-RQ PDU (PS3.8 Table 9-24).
pub fn encode_release_rq() -> Vec<u8> {
    pdu(PDU_RELEASE_RQ, &[0, 0, 0, 0])
}

fn pdu(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind, 0x00];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes()); // small constant body
    out.extend_from_slice(body);
    out
}

/// A PDU's total length from its 6-byte header.
pub fn pdu_len(b: &[u8]) -> Result<usize, ParseError> {
    let kind = u8_at(b, 0, "dicom pdu type")?;
    if !(0x01..=0x07).contains(&kind) {
        return Err(ParseError::invalid("dicom pdu type"));
    }
    let len = be32(b, 2, "dicom pdu length")?;
    usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(6))
        .ok_or(ParseError::TooLarge { what: "dicom pdu" })
}

/// The association outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Association {
    /// A-ASSOCIATE-AC.
    Accepted {
        /// Whether our presentation context (Verification) was accepted.
        verification_accepted: bool,
        /// The presentation context result (0 acceptance, 1 user rejection,
        /// 2 no reason, 3 abstract syntax not supported, 4 transfer
        /// syntaxes not supported); `None` if the AC did not mention it.
        context_result: Option<u8>,
        /// Called AE title echoed by the SCP.
        called_ae: String,
    },
    /// A-ASSOCIATE-RJ (PS3.8 Table 9-21).
    Rejected {
        /// 1 rejected-permanent, 2 rejected-transient.
        result: u8,
        /// 1 service-user, 2 service-provider (ACSE), 3 service-provider
        /// (presentation).
        source: u8,
        reason: u8,
        /// A person's reading of source and reason.
        description: String,
    },
    /// A-ABORT (PS3.8 Table 9-26).
    Aborted { source: u8, reason: u8 },
}

/// The A-ASSOCIATE answer and the SCP's implementation details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssociateAnswer {
    pub association: Association,
    pub implementation_class_uid: Option<String>,
    pub implementation_version_name: Option<String>,
    pub max_pdu_length: Option<u32>,
}

/// Parses one A-ASSOCIATE-AC, -RJ or A-ABORT PDU.
pub fn parse_associate_answer(b: &[u8]) -> Result<AssociateAnswer, ParseError> {
    let total = pdu_len(b)?;
    let p = slice(b, 0, total, "dicom pdu")?;
    let kind = u8_at(p, 0, "dicom pdu type")?;
    let none = |association| AssociateAnswer {
        association,
        implementation_class_uid: None,
        implementation_version_name: None,
        max_pdu_length: None,
    };
    match kind {
        PDU_ASSOCIATE_RJ => {
            let result = u8_at(p, 7, "a-associate-rj result")?;
            let source = u8_at(p, 8, "a-associate-rj source")?;
            let reason = u8_at(p, 9, "a-associate-rj reason")?;
            Ok(none(Association::Rejected {
                result,
                source,
                reason,
                description: reject_description(source, reason),
            }))
        }
        PDU_ABORT => Ok(none(Association::Aborted {
            source: u8_at(p, 8, "a-abort source")?,
            reason: u8_at(p, 9, "a-abort reason")?,
        })),
        PDU_ASSOCIATE_AC => parse_ac(p),
        _ => Err(ParseError::invalid("dicom pdu is not an associate answer")),
    }
}

fn parse_ac(p: &[u8]) -> Result<AssociateAnswer, ParseError> {
    let called = slice(p, 10, 16, "a-associate-ac called ae")?;
    let mut answer = AssociateAnswer {
        association: Association::Accepted {
            verification_accepted: false,
            context_result: None,
            called_ae: clean_text(called),
        },
        implementation_class_uid: None,
        implementation_version_name: None,
        max_pdu_length: None,
    };
    let mut context_result = None;
    let mut items = Items::new(slice(
        p,
        74,
        p.len().saturating_sub(74),
        "a-associate-ac items",
    )?);
    while let Some((kind, value)) = items.next_item()? {
        match kind {
            0x21 => {
                let id = u8_at(value, 0, "presentation context id")?;
                let result = u8_at(value, 2, "presentation context result")?;
                if id == 1 {
                    context_result = Some(result);
                }
            }
            0x50 => {
                let mut sub = Items::new(value);
                while let Some((k, v)) = sub.next_item()? {
                    match k {
                        0x51 => answer.max_pdu_length = Some(be32(v, 0, "maximum length")?),
                        0x52 => answer.implementation_class_uid = Some(uid_text(v)),
                        0x55 => answer.implementation_version_name = Some(uid_text(v)),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if let Association::Accepted {
        verification_accepted,
        context_result: cr,
        ..
    } = &mut answer.association
    {
        *verification_accepted = context_result == Some(0);
        *cr = context_result;
    }
    Ok(answer)
}

fn uid_text(v: &[u8]) -> String {
    let end = v
        .iter()
        .rposition(|&c| c != 0 && c != b' ')
        .map_or(0, |i| i + 1);
    clean_text(v.get(..end).unwrap_or_default())
}

fn reject_description(source: u8, reason: u8) -> String {
    let text = match (source, reason) {
        (1, 1) => "service-user: no reason given",
        (1, 2) => "service-user: application context name not supported",
        (1, 3) => "service-user: calling AE title not recognized",
        (1, 7) => "service-user: called AE title not recognized",
        (2, 1) => "service-provider (ACSE): no reason given",
        (2, 2) => "service-provider (ACSE): protocol version not supported",
        (3, 1) => "service-provider (presentation): temporary congestion",
        (3, 2) => "service-provider (presentation): local limit exceeded",
        _ => "unrecognised source/reason",
    };
    text.to_owned()
}

/// A walker over `TYPE RESERVED LENGTH(2) VALUE` items.
struct Items<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Items<'a> {
    fn new(b: &'a [u8]) -> Self {
        Items { b, at: 0 }
    }

    fn next_item(&mut self) -> Result<Option<(u8, &'a [u8])>, ParseError> {
        if self.at >= self.b.len() {
            return Ok(None);
        }
        let kind = u8_at(self.b, self.at, "dicom item type")?;
        let len = usize::from(be16(self.b, self.at + 2, "dicom item length")?);
        let value = slice(self.b, self.at + 4, len, "dicom item").map_err(|_| {
            // Inside a complete PDU an overrun is a lie, not a truncation.
            ParseError::invalid("dicom item length")
        })?;
        self.at += 4 + len;
        Ok(Some((kind, value)))
    }
}

/// What the DICOM service answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DicomInfo {
    #[serde(flatten)]
    pub answer: AssociateAnswer,
    /// Whether the SCP confirmed the release (A-RELEASE-RP).
    pub released: bool,
}

/// Associates with `addr` for Verification, then releases.
pub async fn probe_dicom(addr: SocketAddr, limits: &ProbeLimits) -> Result<DicomInfo, ProbeError> {
    let deadline = limits.deadline_from_now();
    let mut conn = Conn::connect(addr, limits, deadline).await?;
    let result = async {
        conn.send(&encode_associate_rq(CALLED_AE, CALLING_AE))
            .await?;
        let frame = conn.read_frame(pdu_len).await?;
        let answer = parse_associate_answer(&frame)?;
        let mut released = false;
        if matches!(answer.association, Association::Accepted { .. }) {
            conn.send(&encode_release_rq()).await?;
            // The release answer is a courtesy: its absence is no error.
            if let Ok(rp) = conn.read_frame(pdu_len).await {
                released = rp.first() == Some(&PDU_RELEASE_RP);
            }
        }
        Ok(DicomInfo { answer, released })
    }
    .await;
    conn.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{quick_limits, serve, Script};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn associate_rq_has_the_ps3_8_layout() {
        let rq = encode_associate_rq("STORESCP", "TRUSTWATCH");
        assert_eq!(rq[0], 0x01);
        assert_eq!(rq[1], 0x00);
        let len = u32::from_be_bytes([rq[2], rq[3], rq[4], rq[5]]) as usize;
        assert_eq!(len + 6, rq.len());
        assert_eq!(&rq[6..10], &[0x00, 0x01, 0x00, 0x00]);
        assert_eq!(&rq[10..26], b"STORESCP        ");
        assert_eq!(&rq[26..42], b"TRUSTWATCH      ");
        assert!(rq[42..74].iter().all(|&b| b == 0));
        // Application context item: 10 00 00 15 "1.2.840.10008.3.1.1.1".
        assert_eq!(&rq[74..78], &[0x10, 0x00, 0x00, 0x15]);
        assert_eq!(&rq[78..99], APPLICATION_CONTEXT.as_bytes());
        // Presentation context: 20 00 00 2e, id 1, then 30 00 00 11
        // "1.2.840.10008.1.1" and 40 00 00 11 "1.2.840.10008.1.2".
        assert_eq!(
            &rq[99..107],
            &[0x20, 0x00, 0x00, 0x2e, 0x01, 0x00, 0x00, 0x00]
        );
        assert_eq!(&rq[107..111], &[0x30, 0x00, 0x00, 0x11]);
        assert_eq!(&rq[111..128], b"1.2.840.10008.1.1");
        assert_eq!(&rq[128..132], &[0x40, 0x00, 0x00, 0x11]);
        assert_eq!(&rq[132..149], b"1.2.840.10008.1.2");
        // User information: max length 16384.
        assert_eq!(rq[149], 0x50);
        assert_eq!(
            &rq[153..161],
            &[0x51, 0x00, 0x00, 0x04, 0x00, 0x00, 0x40, 0x00]
        );
        assert_eq!(
            encode_release_rq(),
            [0x05, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00]
        );
    }

    fn ac(result: u8) -> Vec<u8> {
        let mut body = vec![0x00, 0x01, 0x00, 0x00];
        body.extend_from_slice(&ae_title("ANY-SCP"));
        body.extend_from_slice(&ae_title("TRUSTWATCH"));
        body.extend_from_slice(&[0u8; 32]);
        body.extend(item(0x10, APPLICATION_CONTEXT.as_bytes()));
        let pc = [
            &[0x01, 0x00, result, 0x00][..],
            &item(0x40, IMPLICIT_VR_LITTLE_ENDIAN.as_bytes()),
        ]
        .concat();
        body.extend(item(0x21, &pc));
        let user = [
            item(0x51, &16384u32.to_be_bytes()),
            item(0x52, b"1.2.276.0.7230010.3.0.3.6.7"),
            item(0x55, b"OFFIS_DCMTK_367"),
        ]
        .concat();
        body.extend(item(0x50, &user));
        pdu(PDU_ASSOCIATE_AC, &body)
    }

    #[test]
    fn parses_an_accept_with_implementation_details() {
        let a = parse_associate_answer(&ac(0)).expect("valid");
        assert_eq!(
            a.association,
            Association::Accepted {
                verification_accepted: true,
                context_result: Some(0),
                called_ae: "ANY-SCP".into()
            }
        );
        assert_eq!(
            a.implementation_version_name.as_deref(),
            Some("OFFIS_DCMTK_367")
        );
        assert_eq!(
            a.implementation_class_uid.as_deref(),
            Some("1.2.276.0.7230010.3.0.3.6.7")
        );
        assert_eq!(a.max_pdu_length, Some(16384));
        let refused = parse_associate_answer(&ac(3)).expect("valid");
        assert!(matches!(
            refused.association,
            Association::Accepted {
                verification_accepted: false,
                context_result: Some(3),
                ..
            }
        ));
    }

    #[test]
    fn parses_reject_and_abort() {
        // A-ASSOCIATE-RJ: 03 00 00000004 00 01 01 07 (permanent, user,
        // called AE title not recognized).
        let rj = [0x03, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x01, 0x01, 0x07];
        let a = parse_associate_answer(&rj).expect("valid");
        assert_eq!(
            a.association,
            Association::Rejected {
                result: 1,
                source: 1,
                reason: 7,
                description: "service-user: called AE title not recognized".into()
            }
        );
        let ab = [0x07, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x02, 0x00];
        assert_eq!(
            parse_associate_answer(&ab).expect("valid").association,
            Association::Aborted {
                source: 2,
                reason: 0
            }
        );
    }

    #[test]
    fn lying_item_lengths_and_wrong_pdus_are_errors() {
        let mut a = ac(0);
        // The application context item claims 0x7fff bytes.
        a[74 + 2] = 0x7f;
        a[74 + 3] = 0xff;
        assert!(matches!(
            parse_associate_answer(&a),
            Err(ParseError::Invalid { .. })
        ));
        let mut short = ac(0);
        short.truncate(50);
        assert!(matches!(
            parse_associate_answer(&short),
            Err(ParseError::Truncated { .. })
        ));
        assert!(parse_associate_answer(&encode_release_rq()).is_err());
        assert!(parse_associate_answer(&[0x09, 0, 0, 0, 0, 0]).is_err());
    }

    proptest! {
        #[test]
        fn parser_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_associate_answer(&bytes);
        }

        #[test]
        fn mutated_accepts_never_panic(pos in 0usize..250, byte in any::<u8>()) {
            let mut a = ac(0);
            if let Some(b) = a.get_mut(pos) { *b = byte; }
            let _ = parse_associate_answer(&a);
        }
    }

    /// Live: dcmtk's storescp. It cannot be told to listen on loopback
    /// only, so it runs in a network namespace of its own (nothing but a
    /// loopback interface there).
    #[tokio::test]
    async fn live_storescp_accepts_verification_and_releases() {
        use super::super::testutil::live;
        if !live::isolated(&live::test_path(
            module_path!(),
            "live_storescp_accepts_verification_and_releases",
        )) {
            return;
        }
        live::require("storescp", "dcmtk");
        let dir = live::temp_dir("storescp");
        let out_dir = dir.join("out");
        std::fs::create_dir_all(&out_dir).expect("out dir");
        let out_arg = out_dir.display().to_string();
        let daemon = live::spawn(
            "storescp",
            &[
                "--aetitle",
                "STORESCP",
                "--output-directory",
                &out_arg,
                "11112",
            ],
            dir,
        );
        let addr: SocketAddr = ([127, 0, 0, 1], 11112).into();
        assert!(
            live::wait_listening(addr, std::time::Duration::from_secs(5)).await,
            "storescp did not start: {}",
            daemon.log()
        );
        let info = probe_dicom(addr, &quick_limits()).await.expect("dicom");
        assert!(info.released);
        assert!(matches!(
            info.answer.association,
            Association::Accepted {
                verification_accepted: true,
                ..
            }
        ));
        assert!(info
            .answer
            .implementation_version_name
            .as_deref()
            .is_some_and(|v| v.starts_with("OFFIS_DCMTK")));
        // Nothing was stored.
        assert_eq!(
            std::fs::read_dir(&out_dir).map(|d| d.count()).unwrap_or(0),
            0
        );
    }

    #[tokio::test]
    async fn probe_associates_then_releases() {
        let addr = serve(vec![Script::Steps(vec![
            (true, ac(0)),
            (true, vec![0x06, 0x00, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 0]),
        ])])
        .await;
        let info = probe_dicom(addr, &quick_limits()).await.expect("dicom");
        assert!(info.released);
        assert!(matches!(
            info.answer.association,
            Association::Accepted {
                verification_accepted: true,
                ..
            }
        ));
    }
}
