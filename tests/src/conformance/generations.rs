//! Cases a differential run found on the power-on state (before any time has passed, and
//! NVM words the driver does not read), added with QEMU 11.1 as the second oracle.

use super::{Case, eerd, regs};
use nicqual_hw::i82574 as r;

fn word(b: &mut dyn nicqual_pci::Backend, w: u32) -> String {
    format!("{:#06x}", eerd(b, w) >> r::EERD_DATA_SHIFT)
}

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!("reset.status-at-time-0", "STATUS at power-on, before any time has passed", known = "row G1", |b| regs(
            b,
            &[("STATUS", r::STATUS)]
        )),
        case!("eerd.word-03", "EEPROM word 0x03 (compatibility)", known = "row G2", |b| word(b, 3)),
        case!(
            "eerd.word-05",
            "EEPROM word 0x05 (image version; Linux reports it as firmware version)",
            known = "row G2",
            |b| word(b, 5)
        ),
    ]
}
