//! [`XenGuest`] on the emulated Xen host of `nicqual-model`: the guest kernel's calls become
//! calls on the model's hypervisor, xenstore and back end; an event-channel kick runs the
//! back end synchronously (deterministic, like a tail write on an emulated NIC).

use nicqual_hw::xen_netif::{DomId, GrantEntryV1, GrantRef, xenbus_state};
use nicqual_model::xen::{GRANT_TABLE_ENTRIES, XenHost};
use nicqual_xen::{Pfn, PlatformError, XenGuest};

/// The guest's side of an emulated host.
pub struct GuestPort<'a> {
    pub host: &'a mut XenHost,
}

impl<'a> GuestPort<'a> {
    pub fn new(host: &'a mut XenHost) -> Self {
        GuestPort { host }
    }
}

fn perr(op: &'static str) -> impl Fn(nicqual_model::xen::XenMemError) -> PlatformError {
    move |e| PlatformError { op, why: e.to_string() }
}

impl XenGuest for GuestPort<'_> {
    fn domid(&self) -> DomId {
        self.host.guest
    }

    fn now_ns(&self) -> u64 {
        self.host.clock.now_ns()
    }

    fn alloc_page(&mut self) -> Result<Pfn, PlatformError> {
        self.host.hv.alloc_page(self.host.guest).map_err(perr("alloc_page"))
    }

    fn free_page(&mut self, pfn: Pfn) {
        let _ = self.host.hv.free_page(self.host.guest, pfn);
    }

    fn pfn_to_mfn(&self, pfn: Pfn) -> u32 {
        self.host.hv.pfn_to_mfn(self.host.guest, pfn)
    }

    fn decrease_reservation(&mut self, pfn: Pfn) -> Result<(), PlatformError> {
        self.host.hv.decrease_reservation(self.host.guest, pfn).map(|_| ()).map_err(perr("decrease_reservation"))
    }

    fn populate(&mut self, pfn: Pfn) -> Result<u32, PlatformError> {
        self.host.hv.populate(self.host.guest, pfn).map_err(perr("populate_physmap"))
    }

    fn set_p2m(&mut self, pfn: Pfn, mfn: u32) -> Result<(), PlatformError> {
        self.host.hv.set_p2m(self.host.guest, pfn, mfn).map_err(perr("mmu_update"))
    }

    fn page_read(&self, pfn: Pfn, off: usize, buf: &mut [u8]) -> Result<(), PlatformError> {
        self.host.hv.page_read(self.host.guest, pfn, off, buf).map_err(perr("page read"))
    }

    fn page_write(&mut self, pfn: Pfn, off: usize, data: &[u8]) -> Result<(), PlatformError> {
        self.host.hv.page_write(self.host.guest, pfn, off, data).map_err(perr("page write"))
    }

    fn gnttab_entries(&self) -> u32 {
        GRANT_TABLE_ENTRIES
    }

    fn gnttab_read(&self, gref: GrantRef) -> Result<GrantEntryV1, PlatformError> {
        self.host.hv.gnttab_read(self.host.guest, gref).map_err(perr("grant table read"))
    }

    fn gnttab_write(&mut self, gref: GrantRef, e: GrantEntryV1) -> Result<(), PlatformError> {
        self.host.hv.gnttab_write(self.host.guest, gref, e).map_err(perr("grant table write"))
    }

    fn gnttab_in_use(&self, gref: GrantRef) -> bool {
        self.host.hv.gref_in_use(self.host.guest, gref)
    }

    fn xs_read(&self, path: &str) -> Option<String> {
        self.host.store.read(path).map(str::to_string)
    }

    fn xs_write(&mut self, path: &str, value: &str) {
        self.host.store.write(path, value);
    }

    fn switch_state(&mut self, state: u32) -> Result<(), PlatformError> {
        let dir = self.host.netback.frontend_dir();
        self.host.store.write(&format!("{dir}/state"), state);
        if state == xenbus_state::CONNECTED {
            let XenHost { hv, store, netback, .. } = &mut *self.host;
            netback.connect(hv, store).map_err(|e| PlatformError { op: "backend connect", why: e.to_string() })?;
        } else if state == xenbus_state::CLOSING || state == xenbus_state::CLOSED {
            let XenHost { hv, netback, .. } = &mut *self.host;
            netback.disconnect(hv);
        }
        Ok(())
    }

    fn notify(&mut self) -> bool {
        self.host.kick_backend()
    }

    fn wait(&mut self, ns: u64) {
        self.host.clock.advance(ns);
    }
}

/// dom0's page allocator of the emulated host, as the back end's receive pools see it.
pub struct Dom0Pages<'a>(pub &'a mut nicqual_model::xen::balloon::XenMemory);

impl nicqual_xen::rxpool::PageSource for Dom0Pages<'_> {
    fn alloc_page(&mut self, now_ns: u64) -> Result<(), String> {
        self.0.alloc_page(now_ns).map_err(|e| e.to_string())
    }

    fn free_page(&mut self) {
        self.0.free_page();
    }

    fn headroom(&self) -> i64 {
        let free = i64::try_from(self.0.free_pages()).unwrap_or(i64::MAX);
        free.saturating_sub(i64::try_from(self.0.balloon_debt()).unwrap_or(i64::MAX))
    }

    fn boot_pages(&self) -> u64 {
        self.0.dom0_boot_pages()
    }
}
