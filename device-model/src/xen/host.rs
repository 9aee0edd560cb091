//! A Xen host: hypervisor, xenstore, one vif back end and a virtual clock, in a given
//! software version; and saving a guest on one host to restore it on another.

use super::{Hypervisor, Netback, Pfn, SavedPage, XenMemError, XenStore};
use crate::clock::VirtualClock;
use nicqual_hw::xen_netif::{DOM0, DomId};

/// What differs between host software versions, as far as the vif protocol goes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HostVersion {
    pub name: &'static str,
    /// `feature-rx-flip` as netback advertises it: `None` = key absent (old front ends
    /// then prefer flipping), `Some(false)` = explicitly off (they copy).
    pub advertise_rx_flip: Option<bool>,
    /// Whether this netback can serve a flipping front end at all.
    pub can_flip: bool,
    /// Source line of `__gnttab_copy`'s "frame %lx invalid." message in this Xen.
    pub grant_copy_line: u32,
}

impl HostVersion {
    /// RHEL 5.3 dom0 (kernel-xen before -145): `feature-rx-copy=1`, no `feature-rx-flip`
    /// key, so RHEL 5 guests flip.
    pub const RHEL_5_3: HostVersion =
        HostVersion { name: "rhel-5.3", advertise_rx_flip: None, can_flip: true, grant_copy_line: 1145 };
    /// RHEL 5.4 beta dom0 (kernel-xen -145): `feature-rx-flip=0`, so guests switch to
    /// copying on their next connect (the change bug 503139 bisected to).
    pub const RHEL_5_4: HostVersion =
        HostVersion { name: "rhel-5.4", advertise_rx_flip: Some(false), can_flip: true, grant_copy_line: 1145 };
    /// Mainline Linux netback: copy only; a front end without `request-rx-copy` is refused.
    /// (The line number is not from a field log; mainline Xen's differs.)
    pub const MAINLINE: HostVersion =
        HostVersion { name: "mainline", advertise_rx_flip: Some(false), can_flip: false, grant_copy_line: 1145 };

    pub fn all() -> [HostVersion; 3] {
        [Self::RHEL_5_3, Self::RHEL_5_4, Self::MAINLINE]
    }

    pub fn by_name(name: &str) -> Option<HostVersion> {
        Self::all().into_iter().find(|v| v.name == name)
    }
}

/// One host with one PV guest (`guest`) and its vif 0 back end in dom0.
#[derive(Debug)]
pub struct XenHost {
    pub hv: Hypervisor,
    pub store: XenStore,
    pub netback: Netback,
    pub clock: VirtualClock,
    pub guest: DomId,
}

/// A saved guest: its pages by pfn (None where the page had no machine frame) and its
/// kernel allocator's free list. Grants and machine frame numbers are not part of it.
#[derive(Debug)]
pub struct SavedGuest {
    pub dom: DomId,
    pub pages: Vec<SavedPage>,
    pub free_pfns: Vec<Pfn>,
    pub from_version: &'static str,
}

impl SavedGuest {
    /// Pages that were not backed at save time (given to Xen by a flipping front end).
    pub fn unbacked_pages(&self) -> usize {
        self.pages.iter().filter(|p| p.is_none()).count()
    }
}

impl XenHost {
    /// A host with `heap_frames` free frames (one goes to the back end's staging page),
    /// numbering machine frames from `mfn_base`.
    pub fn new(version: HostVersion, heap_frames: u64, mfn_base: u32, guest: DomId) -> Self {
        let mut host = XenHost {
            hv: Hypervisor::new(version, heap_frames, mfn_base),
            store: XenStore::new(),
            netback: Netback::new(DOM0, guest, 0),
            clock: VirtualClock::default(),
            guest,
        };
        let v = host.hv.version().clone();
        host.netback.advertise(&mut host.store, &v);
        host.netback.prepare(&mut host.hv);
        host
    }

    /// Boot a guest with `pages` pages.
    pub fn boot_guest(&mut self, pages: u32) -> Result<(), XenMemError> {
        self.hv.create_domain(self.guest, pages)
    }

    /// The front end kicked its event channel: run the back end now.
    pub fn kick_backend(&mut self) -> bool {
        let now = self.clock.now_ns();
        self.hv.set_now(now);
        self.netback.kick(&mut self.hv, now)
    }

    /// `xm save`: the guest is suspended, its back end disconnected, its memory written out.
    pub fn save_guest(&mut self) -> Result<SavedGuest, XenMemError> {
        self.netback.disconnect(&mut self.hv);
        let (pages, free_pfns) = self.hv.save_domain(self.guest)?;
        self.store.remove_dir(&self.netback.frontend_dir());
        Ok(SavedGuest { dom: self.guest, pages, free_pfns, from_version: self.hv.version().name })
    }

    /// `xm restore` on this host.
    pub fn restore_guest(&mut self, saved: SavedGuest) -> Result<(), XenMemError> {
        self.guest = saved.dom;
        self.hv.restore_domain(saved.dom, saved.pages, saved.free_pfns)?;
        let v = self.hv.version().clone();
        self.netback.advertise(&mut self.store, &v);
        Ok(())
    }
}
