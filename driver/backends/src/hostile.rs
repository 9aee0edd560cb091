//! A hostile device for testing the driver: wraps any [`Backend`] and lets a byte script
//! decide, access by access, what the driver really sees.
//!
//! The inner backend (usually the emulated 82574L) still performs every access, so side
//! effects such as read-to-clear happen as on hardware; the script then corrupts the value
//! on its way back (all-ones, zero, garbage, bit flips), declares the device gone for good
//! (every read all-ones from then on), drops posted writes, writes garbage into mapped DMA
//! memory (what a broken device's descriptor write-back looks like), signals notifiers
//! spuriously, makes `wait` return early, and fails backend calls with typed errors.
//!
//! The fuzz target `driver_hostile` feeds the script from the fuzzer; unit tests feed it
//! fixed or seeded bytes. When the script runs out, the device behaves (pass-through), so
//! every run ends. The backend also keeps the evidence the harness checks invariants
//! against: which reads it made all-ones, what it injected, and its own map of live DMA
//! windows (mapped == unmapped after teardown, no window overlaps, no unmap of an unknown
//! IOVA).

use crate::backend::{Backend, BackendInfo, DmaPerm};
use crate::dma::DmaMemory;
use crate::error::BackendError;
use crate::eventfd::EventFd;
use std::collections::BTreeMap;

/// Bytes that decide what the hostile device does; pass-through once exhausted.
#[derive(Debug, Clone, Default)]
pub struct Script {
    data: Vec<u8>,
    pos: usize,
}

impl Script {
    pub fn new(data: impl Into<Vec<u8>>) -> Self {
        Script { data: data.into(), pos: 0 }
    }

    /// A script of `len` bytes from a seeded generator (deterministic).
    pub fn seeded(seed: u64, len: usize) -> Self {
        // SplitMix64: enough for test scripts, no dependency.
        let mut x = seed;
        let data = (0..len)
            .map(|_| {
                x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = x;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                (z ^ (z >> 31)) as u8
            })
            .collect();
        Script { data, pos: 0 }
    }

    pub fn exhausted(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn byte(&mut self) -> Option<u8> {
        let b = self.data.get(self.pos).copied();
        if b.is_some() {
            self.pos += 1;
        }
        b
    }

    pub fn u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        for x in &mut b {
            *x = self.byte().unwrap_or(0);
        }
        u32::from_le_bytes(b)
    }
}

/// What the hostile device did, for invariant checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostileLog {
    /// Register and config reads made by the driver.
    pub reads: u64,
    /// Register and config writes made by the driver.
    pub writes: u64,
    /// Reads whose value the script replaced or corrupted.
    pub corrupted_reads: u64,
    /// BAR reads answered with all-ones: (bar, offset), first few hundred kept.
    pub all_ones: Vec<(u8, u64)>,
    /// Config reads answered with all-ones: offsets.
    pub config_all_ones: Vec<u16>,
    /// Writes the script dropped.
    pub dropped_writes: u64,
    /// Garbage writes into mapped DMA memory: (iova, len).
    pub dma_injections: Vec<(u64, usize)>,
    /// Spurious notifier signals.
    pub spurious_irqs: u64,
    /// Backend calls the script failed.
    pub failed_calls: u64,
    /// Surprise removal happened (all reads all-ones from then on).
    pub removed: bool,
    /// Map/unmap calls the driver made that were wrong: overlap, unknown IOVA.
    pub bad_dma_calls: Vec<String>,
}

impl HostileLog {
    /// The device misbehaved only in ways that cannot make it touch memory it was not told
    /// to (spurious interrupts, short waits): no corrupted read, dropped write, failed call,
    /// DMA scribble or removal. A DMA fault on an honest device is the driver's fault.
    pub fn honest(&self) -> bool {
        self.corrupted_reads == 0
            && self.dropped_writes == 0
            && self.failed_calls == 0
            && self.dma_injections.is_empty()
            && !self.removed
    }
}

const LOG_CAP: usize = 512;

/// The hostile wrapper.
pub struct HostileBackend<B: Backend> {
    inner: B,
    script: Script,
    windows: BTreeMap<u64, DmaMemory>,
    /// Total register/config accesses allowed before the run is declared unbounded.
    pub access_budget: u64,
    pub log: HostileLog,
}

/// Control-byte meaning for a read.
enum ReadAction {
    Pass,
    AllOnes,
    Zero,
    Value(u32),
    Flip(u32),
}

impl<B: Backend> HostileBackend<B> {
    pub fn new(inner: B, script: Script) -> Self {
        HostileBackend { inner, script, windows: BTreeMap::new(), access_budget: 2_000_000, log: HostileLog::default() }
    }

    pub fn inner(&self) -> &B {
        &self.inner
    }

    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }

    pub fn into_inner(self) -> B {
        self.inner
    }

    /// Make the device disappear now (every later read all-ones, writes ignored).
    pub fn remove(&mut self) {
        self.log.removed = true;
    }

    /// True when the driver saw all-ones at BAR `bar` offset `offset`.
    pub fn saw_all_ones(&self, bar: u8, offset: u64) -> bool {
        self.log.removed || self.log.all_ones.contains(&(bar, offset))
    }

    /// Live DMA windows as this wrapper counts them.
    pub fn windows(&self) -> usize {
        self.windows.len()
    }

    // Test-only backend: an unbounded driver loop is exactly what this must expose, loudly.
    #[allow(clippy::panic)]
    fn count(&mut self) {
        let n = self.log.reads + self.log.writes;
        if n >= self.access_budget {
            panic!("driver made {n} device accesses: unbounded loop against a hostile device");
        }
    }

    fn read_action(&mut self) -> ReadAction {
        let Some(b) = self.script.byte() else { return ReadAction::Pass };
        match b {
            0x00..=0x9F => ReadAction::Pass,
            0xA0..=0xBF => ReadAction::AllOnes,
            0xC0..=0xCF => ReadAction::Zero,
            0xD0..=0xDF => ReadAction::Value(self.script.u32()),
            0xE0..=0xEF => ReadAction::Flip(self.script.u32()),
            0xF0..=0xFE => {
                self.inject();
                ReadAction::Pass
            }
            0xFF => {
                self.log.removed = true;
                ReadAction::AllOnes
            }
        }
    }

    fn apply(&mut self, v: u32, size_mask: u32) -> (u32, bool) {
        if self.log.removed {
            return (size_mask, true);
        }
        let out = match self.read_action() {
            ReadAction::Pass => return (v, false),
            ReadAction::AllOnes => size_mask,
            ReadAction::Zero => 0,
            ReadAction::Value(x) => x & size_mask,
            ReadAction::Flip(m) => (v ^ m) & size_mask,
        };
        self.log.corrupted_reads += 1;
        (out, out == size_mask)
    }

    /// Side effects of a write or a wait: a DMA garbage write, a spurious interrupt, removal.
    /// Returns false when the write is to be dropped.
    fn side_effect(&mut self) -> bool {
        let Some(b) = self.script.byte() else { return true };
        match b {
            0x00..=0xBF => true,
            0xC0..=0xCF => {
                self.log.dropped_writes += 1;
                false
            }
            0xD0..=0xDF => {
                let vectors = self.inner.msix_vectors();
                if vectors > 0 {
                    let v = u16::from(b & 0x0F) % vectors;
                    if let Some(n) = self.inner.notifier(v) {
                        let _ = n.signal();
                        self.log.spurious_irqs += 1;
                    }
                }
                true
            }
            0xE0..=0xFE => {
                self.inject();
                true
            }
            0xFF => {
                self.log.removed = true;
                true
            }
        }
    }

    /// Write script bytes into one mapped window the device may write.
    fn inject(&mut self) {
        let n = self.windows.len();
        if n == 0 {
            return;
        }
        let which = usize::from(self.script.byte().unwrap_or(0)) % n;
        let off_raw = self.script.u32() as usize;
        let len = usize::from(self.script.byte().unwrap_or(0) % 64) + 1;
        let mut data = vec![0u8; len];
        for d in &mut data {
            *d = match self.script.byte() {
                // Often all-ones: lengths 0xffff, addresses 0xffffffff, status all set.
                Some(x) if x >= 0xF0 => 0xFF,
                Some(x) => x,
                None => 0xFF,
            };
        }
        if let Some((&iova, mem)) = self.windows.iter().nth(which) {
            let span = mem.len().saturating_sub(len).max(1);
            let off = off_raw % span;
            if mem.write(off, &data).is_some() && self.log.dma_injections.len() < LOG_CAP {
                self.log.dma_injections.push((iova.wrapping_add(off as u64), len));
            }
        }
    }

    fn maybe_fail(&mut self) -> bool {
        if matches!(self.script.byte(), Some(0xF8..=0xFF)) {
            self.log.failed_calls += 1;
            return true;
        }
        false
    }
}

impl<B: Backend> Backend for HostileBackend<B> {
    fn info(&self) -> BackendInfo {
        let mut i = self.inner.info();
        i.name = format!("hostile:{}", i.name);
        i
    }

    fn config_read(&mut self, offset: u16, size: u8) -> Result<u32, BackendError> {
        self.log.reads += 1;
        self.count();
        let v = self.inner.config_read(offset, size)?;
        let mask = match size {
            1 => 0xFF,
            2 => 0xFFFF,
            _ => u32::MAX,
        };
        let (v, ones) = self.apply(v, mask);
        if ones && self.log.config_all_ones.len() < LOG_CAP {
            self.log.config_all_ones.push(offset);
        }
        Ok(v)
    }

    fn config_write(&mut self, offset: u16, size: u8, value: u32) -> Result<(), BackendError> {
        self.log.writes += 1;
        self.count();
        if self.log.removed || !self.side_effect() {
            return Ok(());
        }
        self.inner.config_write(offset, size, value)
    }

    fn bar_len(&self, bar: u8) -> Option<u64> {
        self.inner.bar_len(bar)
    }

    fn read32(&mut self, bar: u8, offset: u64) -> u32 {
        self.log.reads += 1;
        self.count();
        let v = self.inner.read32(bar, offset);
        let (v, ones) = self.apply(v, u32::MAX);
        if ones && self.log.all_ones.len() < LOG_CAP && !self.log.all_ones.contains(&(bar, offset)) {
            self.log.all_ones.push((bar, offset));
        }
        v
    }

    fn write32(&mut self, bar: u8, offset: u64, value: u32) {
        self.log.writes += 1;
        self.count();
        if self.log.removed || !self.side_effect() {
            return;
        }
        self.inner.write32(bar, offset, value);
    }

    fn dma_alloc(&mut self, len: usize) -> Result<DmaMemory, BackendError> {
        if self.maybe_fail() {
            return Err(BackendError::DmaAlloc { len, why: "hostile backend: allocation refused".into() });
        }
        self.inner.dma_alloc(len)
    }

    fn dma_map(&mut self, mem: &DmaMemory, iova: u64, perm: DmaPerm) -> Result<(), BackendError> {
        let len = mem.len() as u64;
        let end = iova.checked_add(len);
        let overlaps = match end {
            None => true,
            Some(end) => self.windows.range(..end).next_back().is_some_and(|(&s, m)| s + m.len() as u64 > iova),
        };
        if overlaps {
            self.log.bad_dma_calls.push(format!("map {iova:#x}+{len:#x} overlaps a live window or wraps"));
        }
        if self.maybe_fail() {
            return Err(BackendError::DmaMap { iova, len, why: "hostile backend: IOMMU refused the mapping".into() });
        }
        self.inner.dma_map(mem, iova, perm)?;
        self.windows.insert(iova, mem.clone());
        Ok(())
    }

    fn dma_unmap(&mut self, iova: u64) -> Result<(), BackendError> {
        if self.windows.remove(&iova).is_none() {
            self.log.bad_dma_calls.push(format!("unmap of {iova:#x}, which is not mapped"));
        }
        self.inner.dma_unmap(iova)
    }

    fn msix_enable(&mut self, vectors: u16) -> Result<(), BackendError> {
        if self.maybe_fail() {
            return Err(BackendError::Msix { vectors, why: "hostile backend: vectors refused".into() });
        }
        self.inner.msix_enable(vectors)
    }

    fn msix_disable(&mut self) -> Result<(), BackendError> {
        self.inner.msix_disable()
    }

    fn msix_mask(&mut self, vector: u16, masked: bool) -> Result<(), BackendError> {
        self.inner.msix_mask(vector, masked)
    }

    fn notifier(&self, vector: u16) -> Option<&EventFd> {
        self.inner.notifier(vector)
    }

    fn msix_vectors(&self) -> u16 {
        self.inner.msix_vectors()
    }

    fn live_mappings(&self) -> usize {
        self.windows.len()
    }

    fn dma_faults(&self) -> Option<u64> {
        self.inner.dma_faults()
    }

    fn reset(&mut self) -> Result<(), BackendError> {
        if self.maybe_fail() {
            return Err(BackendError::Reset { why: "hostile backend: reset failed".into() });
        }
        self.inner.reset()
    }

    fn now_ns(&self) -> u64 {
        self.inner.now_ns()
    }

    fn wait(&mut self, ns: u64) {
        // Early return (as on an interrupt): the script may cut the wait short.
        let ns = match self.script.byte() {
            Some(b @ 0xF0..=0xFF) => ns / 16 * u64::from(b & 0x0F),
            _ => ns,
        };
        self.side_effect();
        self.inner.wait(ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulated::EmulatedBackend;
    use nicqual_model::i82574::{Config, I82574 as Model};
    use nicqual_nics::i82574::{I82574, Options};

    fn model() -> EmulatedBackend<Model> {
        EmulatedBackend::new(Model::new(Config::default()), "model:i82574l")
    }

    #[test]
    fn empty_script_is_the_real_device() {
        let hb = HostileBackend::new(model(), Script::default());
        let mut d = I82574::attach(hb, Options::default()).unwrap();
        d.bring_up().unwrap();
        let hb = d.shutdown();
        assert_eq!(hb.log.corrupted_reads, 0);
        assert_eq!(hb.live_mappings(), 0);
    }

    #[test]
    fn removal_is_reported_as_device_gone_and_sticks() {
        let mut hb = HostileBackend::new(model(), Script::default());
        hb.remove();
        let e = I82574::attach(hb, Options::default()).err().unwrap();
        assert!(e.is_device_gone(), "{e}");
    }

    #[test]
    fn all_ones_status_mid_bring_up_stops_the_driver_with_a_typed_error() {
        let hb = HostileBackend::new(model(), Script::default());
        let mut d = I82574::attach(hb, Options::default()).unwrap();
        d.backend_mut().remove();
        let e = d.bring_up().unwrap_err();
        assert!(e.is_device_gone(), "{e}");
        assert!(d.is_gone());
        assert!(d.read(nicqual_hw::i82574::STATUS).unwrap_err().is_device_gone());
    }

    #[test]
    fn a_gone_device_is_not_touched_again() {
        let hb = HostileBackend::new(model(), Script::default());
        let mut d = I82574::attach(hb, Options::default()).unwrap();
        d.backend_mut().remove();
        assert!(d.read(nicqual_hw::i82574::CTRL).unwrap_err().is_device_gone());
        let n = d.backend().log.reads + d.backend().log.writes;
        assert!(d.check_msix_entry(0).unwrap_err().is_device_gone());
        assert!(d.fire_and_wait(nicqual_hw::i82574::IvarEntry::RxQ0).is_err());
        assert_eq!(d.backend().log.reads + d.backend().log.writes, n);
    }

    #[test]
    fn removal_at_any_access_of_bring_up_and_datapath_setup_leaves_nothing_mapped() {
        // Regression (fuzz finding): the device vanishing while setup_datapath programmed the
        // rings returned early with the DMA region still mapped. Sweep the removal point over
        // every script byte the sequence consumes.
        use nicqual_nics::i82574::datapath::DatapathConfig;
        let mut removed_in_setup = 0;
        for k in 0..400 {
            let mut bytes = vec![0u8; k];
            bytes.push(0xFF);
            let hb = HostileBackend::new(model(), Script::new(bytes));
            let Ok(mut d) = I82574::attach(hb, Options::default()) else { continue };
            let up = d.bring_up();
            let before = d.backend().live_mappings();
            let dp = d.setup_datapath(DatapathConfig { ring_size: 8, pool_entries: 16, ..Default::default() });
            if up.is_ok() && dp.is_err() && before == 0 {
                removed_in_setup += 1;
            }
            let hb = d.shutdown();
            assert_eq!(hb.live_mappings(), 0, "removal after {k} script bytes: a DMA window leaked");
            assert!(hb.log.bad_dma_calls.is_empty(), "k={k}: {:?}", hb.log.bad_dma_calls);
        }
        assert!(removed_in_setup > 0, "the sweep never removed the device inside setup_datapath");
    }
}
