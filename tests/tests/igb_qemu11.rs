//! The igb interrupt-block probe on QEMU 11.1 (groundwork; no igb model): prints the
//! answers (docs/CONFORMANCE.md records them) and checks the facts Linux's igb driver
//! relies on. Needs the forky root (`make deps`).

use nicqual_tests::igb::{fresh_igb, run, table};

#[test]
fn igb_interrupt_block_answers_as_linux_igb_expects() {
    let rows = run(&mut fresh_igb).unwrap_or_else(|e| panic!("cannot probe QEMU 11.1's igb: {e}"));
    let text = table(&rows);
    println!("{text}");
    let a = |n: &str| rows.iter().find(|r| r.name == n).map(|r| r.answer.clone()).unwrap_or_default();
    assert_eq!(a("igb.identity"), "id=0x10c98086 class=0x02000001", "{text}");
    assert!(a("igb.msix-capability").starts_with("vectors=10 "), "{text}");
    // Per-queue IVAR bytes read back as written.
    assert!(a("igb.ivar.per-queue").ends_with("read=0x83828180"), "{text}");
    // EICS on vector 3 with EIMS set: vector 3 pending.
    assert!(a("igb.eics.msix-vector").starts_with("PBA=0x8 "), "{text}");
    // Masked in EIMS: no message.
    assert!(a("igb.eics.masked").starts_with("PBA=0x0 "), "{text}");
    // The other causes go where IVAR_MISC says.
    assert_eq!(a("igb.ivar-misc.other"), "PBA=0x200", "{text}");
}
