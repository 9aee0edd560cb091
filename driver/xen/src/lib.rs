//! Xen paravirtual networking, front-end side: [`netfront::Netfront`] and the small
//! interface ([`XenGuest`]) through which it reaches the platform — the calls a PV guest
//! kernel makes: its page allocator, its p2m, its own grant table, xenstore, the event
//! channel, and memory-reservation hypercalls.
//!
//! The dom0 receive-pool policy ([`rxpool`]) lives here too: it is back-end policy, kept
//! beside the front end because both speak the same ring and neither may depend on the
//! Xen host model (that is a dev-dependency, for tests only). Each has its own ring
//! arithmetic ([`ring`]). The only platform implementation today is the emulated one,
//! `nicqual_backends::xen::GuestPort` on `nicqual-model`'s Xen host.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

pub mod netfront;
pub mod ring;
pub mod rxpool;

use nicqual_hw::xen_netif::{DomId, GrantEntryV1, GrantRef};

/// A guest pseudo-physical frame number.
pub type Pfn = u32;

/// Errors of a platform call (the guest kernel's view).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {why}")]
pub struct PlatformError {
    pub op: &'static str,
    pub why: String,
}

/// What a PV guest kernel offers a front-end driver.
pub trait XenGuest {
    /// This guest's domain id.
    fn domid(&self) -> DomId;
    /// Current time, ns (virtual in the emulation).
    fn now_ns(&self) -> u64;

    /// Allocate a page (backed by a machine frame when the call returns).
    fn alloc_page(&mut self) -> Result<Pfn, PlatformError>;
    /// Free a page.
    fn free_page(&mut self, pfn: Pfn);
    /// The p2m entry of `pfn` (`INVALID_FRAME` when the page has no machine frame).
    fn pfn_to_mfn(&self, pfn: Pfn) -> u32;
    /// Give `pfn`'s frame back to Xen (flipping front ends do this for each posted page).
    fn decrease_reservation(&mut self, pfn: Pfn) -> Result<(), PlatformError>;
    /// Back an unbacked `pfn` with a fresh frame.
    fn populate(&mut self, pfn: Pfn) -> Result<u32, PlatformError>;
    /// Install a frame received by transfer at `pfn`.
    fn set_p2m(&mut self, pfn: Pfn, mfn: u32) -> Result<(), PlatformError>;
    fn page_read(&self, pfn: Pfn, off: usize, buf: &mut [u8]) -> Result<(), PlatformError>;
    fn page_write(&mut self, pfn: Pfn, off: usize, data: &[u8]) -> Result<(), PlatformError>;

    /// Entries in this guest's grant table.
    fn gnttab_entries(&self) -> u32;
    fn gnttab_read(&self, gref: GrantRef) -> Result<GrantEntryV1, PlatformError>;
    fn gnttab_write(&mut self, gref: GrantRef, e: GrantEntryV1) -> Result<(), PlatformError>;
    /// True while the back end holds `gref` mapped.
    fn gnttab_in_use(&self, gref: GrantRef) -> bool;

    fn xs_read(&self, path: &str) -> Option<String>;
    fn xs_write(&mut self, path: &str, value: &str);
    /// The front end changed its xenbus state (the back end's watch fires).
    fn switch_state(&mut self, state: u32) -> Result<(), PlatformError>;
    /// Kick the event channel; returns true when the back end signalled back.
    fn notify(&mut self) -> bool;
    /// Let `ns` of time pass (timers at the back end may fire).
    fn wait(&mut self, ns: u64);
}
