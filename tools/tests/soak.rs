//! `nicqual soak` end to end: a short deterministic soak passes with every frame accounted
//! for and prints the counts; a bad duration is a usage error.

use std::process::Command;

#[test]
fn short_soak_accounts_for_every_frame() {
    let out = Command::new(env!("CARGO_BIN_EXE_nicqual"))
        .args(["--quiet", "soak", "--seed", "11", "--rounds", "300", "--duration", "10m"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let count = |key: &str| -> i64 {
        let line =
            text.lines().find(|l| l.trim_start().starts_with(key)).unwrap_or_else(|| panic!("no `{key}` in\n{text}"));
        line.split_whitespace().last().unwrap().parse().unwrap()
    };
    assert_eq!(count("unaccounted"), 0, "{text}");
    assert!(count("frames sent") > 300, "{text}");
    assert!(count("delivered intact") > 0, "{text}");
    assert!(text.contains("surprise removal: reported by the driver"), "{text}");
    assert!(text.trim_end().ends_with("PASS"), "{text}");

    let json = Command::new(env!("CARGO_BIN_EXE_nicqual"))
        .args(["--quiet", "soak", "--seed", "11", "--rounds", "300", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["unaccounted"], 0);
    assert_eq!(v["sent"].as_i64(), Some(count("frames sent")), "same seed, same rounds, same traffic");
}

#[test]
fn bad_duration_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_nicqual")).args(["soak", "--duration", "5parsecs"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown time unit"));
}

/// `--pcap`: the frames A put on the cable, readable as a pcap (what tshark opens): as many
/// as the report says, each addressed from A to B, timestamps never going back.
#[test]
fn pcap_holds_the_frames_on_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("soak.pcap");
    let out = Command::new(env!("CARGO_BIN_EXE_nicqual"))
        .args(["--quiet", "soak", "--seed", "3", "--rounds", "40", "--json", "--pcap", pcap.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut r = pcap_file::pcap::PcapReader::new(std::fs::File::open(&pcap).unwrap()).unwrap();
    let (mut n, mut last) = (0u64, std::time::Duration::ZERO);
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        assert_eq!(&p.data[..6], &[0x02, 0x6e, 0x71, 0, 0, 0x0b], "to B");
        assert_eq!(&p.data[6..12], &[0x02, 0x6e, 0x71, 0, 0, 0x0a], "from A");
        assert!(p.timestamp >= last);
        last = p.timestamp;
        n += 1;
    }
    assert!(n > 0);
    assert_eq!(v["pcap_frames"].as_u64(), Some(n));
}
