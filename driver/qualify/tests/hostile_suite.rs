//! The whole 82574L suite against a hostile device (seeded scripts): it never panics, it
//! claims the device gone only after STATUS really read all-ones, and it leaves nothing
//! mapped.

use nicqual_backends::emulated::EmulatedBackend;
use nicqual_backends::hostile::{HostileBackend, Script};
use nicqual_model::i82574::{Config, I82574 as Model};
use nicqual_nics::i82574::{I82574, Options};
use nicqual_pci::Backend;
use nicqual_qualify::i82574::{SuiteOptions, run_suite};

fn model() -> EmulatedBackend<Model> {
    EmulatedBackend::new(Model::new(Config::default()), "model:i82574l")
}

#[test]
fn seeded_garbage_never_panics_and_gone_is_only_claimed_after_all_ones_status() {
    for seed in 0..64 {
        let hb = HostileBackend::new(model(), Script::seeded(seed, 4096));
        let Ok(mut d) = I82574::attach(hb, Options::default()) else { continue };
        let reports = run_suite(&mut d, &SuiteOptions::default());
        assert!(!reports.is_empty(), "seed {seed}");
        let gone = d.is_gone();
        let hb = d.shutdown();
        if gone {
            assert!(
                hb.saw_all_ones(nicqual_hw::i82574::BAR_REGS, u64::from(nicqual_hw::i82574::STATUS)),
                "seed {seed}: driver declared the device gone without STATUS reading all-ones"
            );
        }
        assert_eq!(hb.live_mappings(), 0, "seed {seed}");
        assert!(hb.log.bad_dma_calls.is_empty(), "seed {seed}: {:?}", hb.log.bad_dma_calls);
    }
}
