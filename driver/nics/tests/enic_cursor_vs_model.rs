//! The enic driver's own completion cursor ([`CqCursor`]) against the model's producer
//! cursor ([`ColorCursor`]), and the whole driver against the whole model.
//!
//! Each side keeps its own colour arithmetic; these properties run one against the other, so
//! a wrap or colour bug on either side (a colour flipped a slot early or late, an index that
//! wraps at the wrong place) shows up as a missed, repeated or stale completion.

use nicqual_backends::emulated::EmulatedBackend;
use nicqual_model::enic::{EnicDevice, EnicFaultPlan};
use nicqual_model::ring::ColorCursor;
use nicqual_nics::enic::cursor::CqCursor;
use nicqual_nics::enic::{Enic, Platform, Policy};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

/// Fixed seeds: every run draws the same cases.
fn config(cases: u32, seed: u64) -> ProptestConfig {
    ProptestConfig { cases, rng_seed: RngSeed::Fixed(seed), failure_persistence: None, ..ProptestConfig::default() }
}

/// One step of the simulation: the producer writes up to `write` entries (never more than
/// the ring has room for), then the consumer drains up to `drain`. Both are fractions of the
/// ring in 1/64ths, so small and large rings alike see empty, partial and full rings.
#[derive(Debug, Clone, Copy)]
struct Step {
    write: u32,
    drain: u32,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec((0u32..=64, 0u32..=64).prop_map(|(write, drain)| Step { write, drain }), 1..120)
}

/// `frac`/64 of `size`, rounded up so that small rings still move.
fn part(size: u32, frac: u32) -> u32 {
    (u64::from(size) * u64::from(frac)).div_ceil(64) as u32
}

/// The slot the driver's cursor names; a cursor outside the ring is a failure, not a panic.
fn at(ring: &[(bool, u64)], cons: CqCursor) -> Result<(bool, u64), String> {
    ring.get(cons.index() as usize)
        .copied()
        .ok_or_else(|| format!("driver cursor at slot {} of {}", cons.index(), ring.len()))
}

/// What the consumer saw after running `steps` over a ring of `size` slots, or why the
/// run broke a property. Each slot holds (colour, sequence number); memory starts zeroed,
/// i.e. colour 0, which the driver must not take for a completion.
fn run(size: u32, steps: &[Step]) -> Result<u64, String> {
    let mut ring = vec![(false, u64::MAX); size as usize];
    let mut prod = ColorCursor::new(size, true).ok_or("model refused the ring size")?;
    let mut cons = CqCursor::new(size).ok_or("driver refused the ring size")?;
    let (mut produced, mut consumed) = (0u64, 0u64);
    for (n, s) in steps.iter().enumerate() {
        let room = u64::from(size) - (produced - consumed);
        let write = u64::from(part(size, s.write)).min(room);
        for _ in 0..write {
            let slot = ring.get_mut(prod.index() as usize).ok_or(format!("model cursor at slot {}", prod.index()))?;
            *slot = (prod.color(), produced);
            produced += 1;
            prod.advance();
        }
        let want = u64::from(part(size, s.drain));
        let mut drained = 0u64;
        while drained < want {
            let (color, seq) = at(&ring, cons)?;
            if !cons.is_new(color) {
                break;
            }
            if consumed == produced {
                return Err(format!(
                    "step {n}: slot {} taken as new with nothing produced (stale seq {seq})",
                    cons.index()
                ));
            }
            if seq != consumed {
                return Err(format!("step {n}: slot {} gave seq {seq}, expected {consumed}", cons.index()));
            }
            if color != cons.expected_color() {
                return Err(format!("step {n}: is_new and expected_color disagree at slot {}", cons.index()));
            }
            consumed += 1;
            drained += 1;
            cons.consume();
        }
        // The consumer stopped early only because nothing more was produced.
        if drained < want && consumed != produced {
            return Err(format!(
                "step {n}: consumer stopped at slot {} after {consumed} of {produced} entries",
                cons.index()
            ));
        }
        if consumed == produced && (cons.index() != prod.index() || cons.expected_color() != prod.color()) {
            return Err(format!(
                "step {n}: caught up but the cursors disagree: driver slot {} colour {}, model slot {} colour {}",
                cons.index(),
                cons.expected_color(),
                prod.index(),
                prod.color()
            ));
        }
    }
    // Drain the rest: everything produced comes out, nothing more.
    for _ in 0..size {
        let (color, seq) = at(&ring, cons)?;
        if !cons.is_new(color) {
            break;
        }
        if seq != consumed {
            return Err(format!("final drain: slot {} gave seq {seq}, expected {consumed}", cons.index()));
        }
        consumed += 1;
        cons.consume();
    }
    if consumed != produced {
        return Err(format!("final drain: {consumed} of {produced} entries seen"));
    }
    Ok(produced)
}

proptest! {
    #![proptest_config(config(256, 0x656e_6963_0001))]

    /// Random sizes, including non-powers of two and the one-slot ring.
    #[test]
    fn driver_cursor_sees_exactly_what_the_model_produced(size in 1u32..=4096, steps in steps()) {
        let produced = run(size, &steps).map_err(TestCaseError::fail)?;
        // Nothing is vacuous: a run that wrote nothing has nothing to check.
        prop_assume!(produced > 0);
    }

    /// Small rings, long runs: many laps, so many colour flips on both sides.
    #[test]
    fn many_laps_of_small_rings(size in 1u32..=40, steps in prop::collection::vec(
        (0u32..=64, 0u32..=64).prop_map(|(write, drain)| Step { write, drain }), 200..400)) {
        let produced = run(size, &steps).map_err(TestCaseError::fail)?;
        prop_assume!(produced >= 4 * u64::from(size));
    }
}

/// The shape the property relies on, pinned: a run that fills, drains and wraps a
/// 3-slot ring (not a power of two) several times.
#[test]
fn fill_drain_wrap_three_slots() {
    let steps: Vec<Step> = (0..12).map(|_| Step { write: 64, drain: 64 }).collect();
    assert_eq!(run(3, &steps), Ok(36));
    // Writes of one slot with no drains in between fill the ring and then stall.
    let stall: Vec<Step> = (0..5).map(|_| Step { write: 1, drain: 0 }).collect();
    assert_eq!(run(3, &stall), Ok(3));
}

// ---- end to end: the Enic driver over the enic model ---------------------------------------

fn frame(len: usize, seq: u32) -> Vec<u8> {
    let s = seq.to_le_bytes();
    (0..len).map(|i| (i as u8).wrapping_mul(29) ^ s[i % 4]).collect()
}

proptest! {
    #![proptest_config(config(64, 0x656e_6963_0002))]

    /// Bursts of random-size frames over small rings for many laps: every frame comes back
    /// byte-exact, in order, once, and nothing is dropped.
    #[test]
    fn every_frame_delivered_byte_exact_over_many_laps(
        entries in prop::sample::select(vec![64u32, 96, 128]),
        bursts in prop::collection::vec((1u32..=64, prop::collection::vec(1usize..=1518, 1..8)), 16..40),
    ) {
        let dev = EmulatedBackend::new(EnicDevice::new(1500, EnicFaultPlan::none()), "model:enic");
        let (mut e, note) = Enic::new(dev, Policy::Nicqual, Platform::Direct, 1500, entries)
            .map_err(|err| TestCaseError::fail(err.to_string()))?;
        prop_assert_eq!(note, None);
        let (mut seq, mut got) = (0u32, Vec::new());
        let mut sent = Vec::new();
        for (burst, sizes) in &bursts {
            // A burst never exceeds the receive buffers posted (entries - 1).
            let burst = (*burst).min(entries - 1);
            for k in 0..burst {
                let f = frame(sizes[k as usize % sizes.len()], seq);
                e.send(&f).map_err(|err| TestCaseError::fail(format!("frame {seq}: {err}")))?;
                sent.push(f);
                seq += 1;
            }
            e.poll_rx(&mut got);
            prop_assert_eq!(got.len(), sent.len(), "after frame {}", seq);
        }
        prop_assert_eq!(&got, &sent);
        prop_assert_eq!(e.stats.dropped_total(), 0);
        prop_assert_eq!(e.stats.tx_bad_completions, 0);
        prop_assert_eq!(e.stats.rx_delivered, u64::from(seq));
        prop_assert!(e.backend().device().dma_faults().is_empty());
        // The point of the test is laps: make sure the case went round the rings.
        prop_assume!(seq >= 2 * entries);
    }
}
