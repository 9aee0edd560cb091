//! What a finding involves and what to do about it, for the checks of the 82574L suite.
//!
//! Subjects come from the check name (`vector[TxQ0]`, `msix-table[1]`) and from the
//! detail, whose wording the driver's typed errors fix: `NAME (0xOFFSET)` for registers,
//! `MSI-X vector N`, `IVAR entry E`, `MSI-X table entry N (BAR3 0xOFF)`, `device gone`.
//! Register names are only accepted when `hw` knows them at that offset (or by that name).
//! Other suites can set `subjects` / `action` on their checks directly.

use nicqual_hw::i82574::{self as r, IvarEntry};
use nicqual_report::{Check, Outcome, Subject, SubjectKind};

/// Fill `subjects` (any result) and `action` (failures and errors) of a check.
pub fn annotate(c: &mut Check) {
    let mut subs = subjects(&c.name, &c.detail);
    subs.dedup();
    for s in subs {
        if !c.subjects.contains(&s) {
            c.subjects.push(s);
        }
    }
    // Expected failures (a scenario's field variant) say what to change as well: that is
    // the point of reproducing them.
    if (c.result.is_bad() || c.result == nicqual_report::Outcome::Xfail) && c.action.is_none() {
        c.action = action(&c.name, &c.detail, c.result);
    }
}

/// Tokens that look like BAR0 register names in driver messages but mean something else:
/// `PBA=` there is the MSI-X pending-bit array (BAR3), not BAR0's packet buffer allocation.
const NOT_REGISTERS: &[&str] = &["PBA"];

fn hex_after(s: &str) -> Option<u64> {
    let h = s.strip_prefix("0x")?;
    let end = h.find(|ch: char| !ch.is_ascii_hexdigit()).unwrap_or(h.len());
    u64::from_str_radix(&h[..end], 16).ok()
}

fn uint_after(s: &str) -> Option<u64> {
    let end = s.find(|ch: char| !ch.is_ascii_digit()).unwrap_or(s.len());
    s[..end].parse().ok()
}

fn word_after(s: &str) -> &str {
    let end = s.find(|ch: char| !ch.is_ascii_alphanumeric()).unwrap_or(s.len());
    &s[..end]
}

fn ivar_entry(name: &str) -> Option<IvarEntry> {
    IvarEntry::ALL.into_iter().find(|e| e.name() == name)
}

fn entry_subject(e: IvarEntry) -> Subject {
    Subject {
        kind: SubjectKind::IvarEntry,
        name: e.name().into(),
        offset: Some(u64::from(r::IVAR)),
        index: Some(u64::from(e.index())),
    }
}

fn msix_entry_subject(v: u64) -> Subject {
    Subject {
        kind: SubjectKind::MsixEntry,
        name: format!("MSI-X table entry {v}"),
        offset: Some(r::MSIX_TABLE_OFFSET + 16 * v),
        index: Some(v),
    }
}

fn register_by_name(name: &str) -> Option<Subject> {
    r::register_named(name).map(|f| Subject::register(name, u64::from(f.offset)))
}

/// Registers, vectors and entries named by a check's name and detail, in order of mention.
pub fn subjects(name: &str, detail: &str) -> Vec<Subject> {
    let name = without_group(name);
    let mut out = Vec::new();
    // From the name.
    if let Some(inner) = name.strip_suffix(']').and_then(|n| n.split_once('[')) {
        match inner {
            ("msix-table", v) => {
                if let Ok(v) = v.parse::<u64>() {
                    out.push(Subject::vector(v));
                    out.push(msix_entry_subject(v));
                }
            }
            ("ivar" | "vector", e) => {
                if let Some(e) = ivar_entry(e) {
                    out.push(entry_subject(e));
                }
                if inner.0 == "ivar" {
                    out.extend(register_by_name("IVAR"));
                }
            }
            _ => {}
        }
    }
    // From the detail.
    let mut rest = detail;
    while let Some(i) = rest.find("vector ") {
        let after = &rest[i + 7..];
        let msix_table = rest[..i].ends_with("MSI-X table entry ") || rest[..i].ends_with("table ");
        if let Some(v) = uint_after(after).filter(|_| !msix_table) {
            out.push(Subject::vector(v));
        }
        rest = after;
    }
    let mut rest = detail;
    while let Some(i) = rest.find("MSI-X table entry ") {
        let after = &rest[i + 18..];
        if let Some(v) = uint_after(after) {
            out.push(Subject::vector(v));
            out.push(msix_entry_subject(v));
        }
        rest = after;
    }
    let mut rest = detail;
    while let Some(i) = rest.find("IVAR entry ") {
        let after = &rest[i + 11..];
        if let Some(e) = ivar_entry(word_after(after)) {
            out.push(entry_subject(e));
        }
        rest = after;
    }
    // `NAME (0xOFF)` and `NAME=0x...` where hw knows NAME.
    let bytes = detail.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let is_tok = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_';
        if bytes[i].is_ascii_uppercase() && (i == 0 || !is_tok(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && is_tok(bytes[i]) {
                i += 1;
            }
            let tok = &detail[start..i];
            let tail = &detail[i..];
            if let Some(off) = tail.strip_prefix(" (").and_then(hex_after) {
                // Named register with its offset: accept when hw agrees on the offset.
                if let Some(known) = u32::try_from(off).ok().and_then(r::reg_name) {
                    let known_base = known.trim_end_matches("[]");
                    if known == tok || tok.starts_with(known_base) {
                        out.push(Subject::register(tok, off));
                    }
                }
            } else if (tail.starts_with("=0x") || tail.starts_with('.')) && !NOT_REGISTERS.contains(&tok) {
                out.extend(register_by_name(tok));
            }
        } else {
            i += 1;
        }
    }
    if detail.contains("device gone") || detail.contains("all-ones") && detail.contains("STATUS") {
        out.push(Subject::new(SubjectKind::Device, "function reads all-ones"));
    }
    let mut uniq: Vec<Subject> = Vec::new();
    for s in out {
        if !uniq.contains(&s) {
            uniq.push(s);
        }
    }
    uniq
}

/// What to do about a failed or errored check of the 82574L suite.
/// A check's name without its queue-pair group prefix (`q2:vector[Other]` is a
/// `vector[Other]` check of the two-pair group).
fn without_group(name: &str) -> &str {
    name.strip_prefix(crate::i82574::group_prefix(2)).unwrap_or(name)
}

pub fn action(name: &str, detail: &str, result: Outcome) -> Option<String> {
    let name = without_group(name);
    if detail.contains("device gone") {
        return Some(
            "The function stopped answering (every read returns 0xffffffff): check the slot and the PCIe link \
             (lspci -vv, dmesg for AER or hot-unplug), re-seat or power-cycle the card. The driver stopped \
             touching it and released its resources."
                .into(),
        );
    }
    if result == Outcome::Error {
        return Some(
            "The check could not be carried out (transport or setup error): fix the environment named in the \
             detail and run again with the same seed."
                .into(),
        );
    }
    let base = name.split('[').next().unwrap_or(name);
    let arg = name.split_once('[').map(|(_, a)| a.trim_end_matches(']')).unwrap_or("");
    let s = match base {
        "pci-identity" => {
            "The function is not an 82574L as configured: check the PCI address and the device binding.".into()
        }
        "register-pattern" => "A register does not hold what was written within its writable mask: compare with a \
            known-good unit; a stuck bit means a faulty MAC, do not deploy this unit."
            .into(),
        "eeprom" => "The NVM cannot be read or its checksum (words 0x00..=0x3F must sum to 0xBABA) is wrong: \
            re-flash the NVM image with the vendor tool, or replace the card."
            .into(),
        "reset" => "CTRL.RST did not self-clear, or interrupt registers survived the reset: power-cycle; \
            if it persists the MAC does not reset and the unit is not usable."
            .into(),
        "msix-setup" => "MSI-X could not be set up as Linux e1000e does: check that the platform grants 3 vectors \
            (lspci -vv: MSI-X Count) and that interrupt remapping is enabled; else fall back to MSI."
            .into(),
        "link" => "No link within 5 s, or PHY and MAC disagree: check cable and link partner, then PHY BMSR \
            through MDIC; a MAC/PHY disagreement points at the PHY interface."
            .into(),
        "msix-table" => format!(
            "MSI-X table entry {arg} does not read back as programmed (all-ones: the entry was lost). \
             Re-program the entry and IVAR (the driver's recovery does); if it stays lost, poll its causes \
             and report the platform: on a hypervisor, check the passthrough device's interrupt remapping."
        ),
        "ivar" => format!(
            "IVAR entry {arg} does not read back what was written: rewrite IVAR and verify every entry after \
             each write; persistent corruption means {arg}'s interrupts cannot be trusted: route it to a \
             vector that verifies, or poll its cause."
        ),
        "vector" => format!(
            "{arg} interrupts raised by ICS never arrived on their MSI-X vector: the vector is lost between \
             device and CPU. Look at the msix-table and ivar rows for that vector; re-program both (recovery \
             does) or fall back to polling, and keep the pending-cause watchdog on."
        ),
        "irq-watchdog" => "A cause stayed pending with no interrupt delivered: interrupts silently stopped on the \
            vector named. Keep this watchdog enabled in production; re-program the vector or poll its causes."
            .into(),
        "recovery" => "Re-programming IVAR and the MSI-X entry did not bring the vector back: its causes are now \
            polled (more latency, still correct). Move the card or replace it; attach this report."
            .into(),
        "loopback" => format!(
            "Frames of {arg} B did not come back intact through MAC loopback: compare length and digest in the \
             detail. A shortfall points at RX/TX descriptor handling or (9018 B) at RCTL.LPE/buffer sizing; \
             corrupted bytes at DMA (IOMMU mappings, buffer reuse). Do not carry traffic of that size on this unit."
        ),
        "rss-spread" => "Frames did not arrive on the receive queue the redirection table names for their hash: \
            RSS steering cannot be relied on; compare MRQC, RETA and RSSRK read-back and the per-queue counts in \
            the detail, and run with one queue pair until it is understood."
            .into(),
        "rss-hash" => "The RSS hash or type written back differs from the Toeplitz hash over the same fields: \
            check the key (RSSRK), the hash types enabled in MRQC and RXCSUM.PCSD; software relying on the hash \
            (flow steering, RPS) would misplace flows."
            .into(),
        "rss-loopback" => "Frames on a receive queue were missing or not byte-exact: check receive ring 1 \
            (RDBAL1..RDT1, RXDCTL1) and DMA mappings; do not enable the second queue pair on this unit."
            .into(),
        "statistics" => "The statistics registers disagree with the traffic sent: the counters named in the detail \
            cannot be trusted for monitoring on this device/model; compare with the datasheet definition \
            (octets count DA through FCS)."
            .into(),
        "rx-overrun" => "A full receive ring was not reported (MPC/RXO) or the datapath did not recover after \
            refilling: drops under load would go unseen. Check the RXO cause routing (Other vector) and the \
            driver's refill path."
            .into(),
        "link-change" => format!(
            "A link drop and return was not seen {}: link changes would go unnoticed. Check the Other vector \
             (msix-table/ivar rows) or keep STATUS polling on in the driver's watchdog.",
            if arg == "polling" { "by polling STATUS.LU" } else { "through LSC on the Other vector" }
        ),
        "teardown" => "Resources were left after shutdown (MSI-X still enabled or DMA mappings live): fix the \
            driver's teardown path before the device is reused."
            .into(),
        _ => return None,
    };
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[Subject]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lost_vector_names_vector_and_entry() {
        let s = subjects(
            "vector[TxQ0]",
            "MSI-X vector 1 (IVAR entry TxQ0) lost: 0/8 delivered; first loss: TxQ0 raised by ICS, no message on vector 1 within 10000 us (PBA=0x2)",
        );
        assert_eq!(names(&s), ["IVAR entry TxQ0", "MSI-X vector 1"]);
    }

    #[test]
    fn registers_need_hw_to_agree() {
        let s = subjects("register-pattern", "FCAL (0x00028): wrote 0x5a5a5a5a, read 0xffffffff: device gone");
        assert_eq!(s[0], Subject::register("FCAL", 0x28));
        assert_eq!(s.last().unwrap().kind, SubjectKind::Device);
        // Wrong offset for the name: not a register subject.
        assert!(subjects("x", "FCAL (0x00030): odd").is_empty());
        let s = subjects("reset", "after CTRL.RST: IVAR=0x00000001 IMS=0x00000000 EIAC=0x0");
        assert_eq!(
            names(&s),
            ["register CTRL (0x00000)", "register IVAR (0x000e4)", "register IMS (0x000d0)", "register EIAC (0x000dc)"]
        );
    }

    #[test]
    fn msix_table_entries_carry_their_bar3_offset() {
        let s = subjects("msix-table[1]", "MSI-X table entry 1 (BAR3 0x0010): address reads 0xffffffff");
        assert_eq!(names(&s), ["MSI-X vector 1", "MSI-X table entry 1 (BAR3 0x0010)"]);
    }

    #[test]
    fn every_suite_check_has_an_action_when_it_fails() {
        for name in crate::i82574::SUITE.iter().chain(&["teardown"]) {
            let n = name.replace('*', "1");
            assert!(action(&n, "x", Outcome::Fail).is_some(), "{n}");
        }
        assert!(action("something-new", "x", Outcome::Fail).is_none());
        assert!(action("eeprom", "device gone: ...", Outcome::Fail).unwrap().contains("0xffffffff"));
    }
}
