//! A Cisco VIC (enic) vNIC as a PCI function (1137:0043, or the VF id 0071): BAR0 holds the
//! vNIC resource header and table (`vnic_resource.h`), a devcmd window (`vnic_devcmd.h`),
//! [`QUEUES`] WQ/RQ pairs, [`CQ_COUNT`] completion queues and [`INTR_COUNT`] interrupt
//! control blocks (`vnic_wq.h`, `vnic_rq.h`, `vnic_cq.h`, `vnic_intr.h`), and the MSI-X
//! table and PBA the resource table also lists. The IOMMU sits in front of every access.
//!
//! Bring-up is the devcmd sequence Linux's `vnic_dev.c` runs: `CMD_OPEN` then
//! `CMD_OPEN_STATUS` until done, `CMD_INIT` then `CMD_INIT_STATUS`, `CMD_DEV_SPEC` reads of
//! `vnic_enet_config` (the MTU among them), `CMD_GET_MAC_ADDR`, `CMD_ENABLE_WAIT`. A command
//! keeps `STAT_BUSY` set for [`DEVCMD_BUSY_NS`] of virtual time; open and init report "in
//! progress" for [`OPEN_NS`]. A command out of order fails with `STAT_ERROR` and
//! `ERR_EBADSTATE` in `args[0]`. No frame moves until the vNIC is enabled.
//!
//! Rings use the shared mechanism ([`crate::ring`]): descriptors are fetched and completions
//! written through [`DescRing`], completion queues produce with a [`ColorCursor`] whose
//! colour flips on every wrap, and the colour byte is written last. Each completion adds a
//! credit to the interrupt its CQ names (`interrupt_offset`); an unmasked interrupt with
//! credits outstanding sends its MSI-X message (after the coalescing timer, if set) and,
//! with `mask_on_assertion`, masks itself; the driver returns credits through
//! `int_credit_return` (with the unmask and timer-reset bits). Interpretation of
//! `vnic_intr.h` (the register names and Linux's use of them), not of Cisco firmware.
//!
//! Transmitted packets loop back into the receive queue of the same number (the adapter's
//! internal switch), so a driver can test itself; [`EnicDevice::receive`] delivers frames
//! from the wire into RQ 0. The vNIC MTU is an adapter setting ([`EnicConfig::vnic_mtu`],
//! a UCS adapter policy) the host does not control: frames above it are dropped at the port,
//! whatever MTU the driver uses.
//!
//! Faults: the seeded [`EnicFaultPlan`] (the adapter writing past the posted buffer,
//! reporting more bytes than posted, spanning buffers, completing an index never posted)
//! and an armed [`FaultPlan`]: `lose-vector:N`, `drop-irq:N:P`, `surprise-removal`,
//! `hostile-completion:N` (one field of the N-th completion corrupted, the field picked by
//! [`FaultState::next_completion`]: type, queue, index, sop/eop, truncated flag,
//! bytes_written over the posted buffer, colour) and `stall-consumer:Q` (WQ Q's
//! `fetch_index` stops moving). Any value written anywhere is safe: nothing here panics,
//! loops without bound or allocates by a size the driver chose.

use crate::config::{BarKind, ConfigSpace};
use crate::faults::{FaultPlan, FaultState, FaultTarget};
use crate::iommu::{DmaFault, Iommu};
use crate::msix::{Msix, MsixOutcome};
use crate::ring::{ColorCursor, DescRing, RingError, RingLayout};
use crate::{MsiMessage, PciDevice};
use nicqual_hw::enic::{self as hw, CqDesc, CqEnetRqDesc, RqCompletion, RqEnetDesc, WqEnetDesc};
use nicqual_hw::pci;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// WQ/RQ pairs.
pub const QUEUES: usize = 4;
/// Completion queues: CQ `i` serves RQ `i`, CQ `QUEUES + i` serves WQ `i` (as Linux enic
/// assigns them: `enic_cq_rq`, `enic_cq_wq`).
pub const CQ_COUNT: usize = 2 * QUEUES;
/// Interrupts: RQ `i` on `i`, WQ `i` on `QUEUES + i`, then error and notify
/// (`enic_msix_rq_intr`, `enic_msix_wq_intr`, `ENIC_MSIX_RESERVED_INTR`).
pub const INTR_COUNT: usize = 2 * QUEUES + 2;

/// BAR0 offsets of the blocks the resource table lists (the model's layout; a driver must
/// take them from the table).
pub const DEVCMD_BASE: u64 = 0x0800;
pub const WQ_BASE: u64 = 0x1000;
pub const RQ_BASE: u64 = 0x2000;
pub const CQ_BASE: u64 = 0x3000;
pub const INTR_BASE: u64 = 0x4000;
pub const MSIX_TABLE_BASE: u64 = 0x5000;
pub const MSIX_PBA_BASE: u64 = 0x6000;
pub const BAR0_LEN: u64 = 0x7000;
/// BAR0 as sized in config space (a power of two holding every block).
pub const BAR0_SIZE: u64 = 0x8000;
/// Where the MSI-X capability sits in config space (the model's choice).
pub const CAP_MSIX: u16 = 0x50;
/// Virtual time a devcmd keeps `STAT_BUSY` set.
pub const DEVCMD_BUSY_NS: u64 = 2_000;
/// Virtual time `CMD_OPEN` and `CMD_INIT` take (their status commands say "in progress"
/// until then).
pub const OPEN_NS: u64 = 50_000;
/// Largest frame the model assembles from WQ buffers.
const MAX_TX_FRAME: usize = 16384;

/// The resource table the model serves: (type, BAR0 offset, count).
pub const RESOURCES: [(u8, u64, u32); 7] = [
    (hw::RES_TYPE_DEVCMD, DEVCMD_BASE, hw::DEVCMD_LEN as u32),
    (hw::RES_TYPE_WQ, WQ_BASE, QUEUES as u32),
    (hw::RES_TYPE_RQ, RQ_BASE, QUEUES as u32),
    (hw::RES_TYPE_CQ, CQ_BASE, CQ_COUNT as u32),
    (hw::RES_TYPE_INTR_CTRL, INTR_BASE, INTR_COUNT as u32),
    (hw::RES_TYPE_INTR_TABLE, MSIX_TABLE_BASE, INTR_COUNT as u32),
    (hw::RES_TYPE_INTR_PBA, MSIX_PBA_BASE, INTR_COUNT as u32),
];

/// Ways the adapter misbehaves on receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnicFault {
    /// Ignore the posted length: DMA the whole frame and report its full length.
    Overrun,
    /// Write the frame within the buffer but report `bytes_written` past the posted length.
    OverLength,
    /// Split the frame over this buffer and the next (sop without eop, then eop without sop)
    /// although the driver posted ONLY_SOP buffers.
    Span,
    /// Complete an RQ index the driver never posted (the data goes to the real buffer).
    UnpostedIndex,
}

impl EnicFault {
    pub const ALL: [EnicFault; 4] =
        [EnicFault::Overrun, EnicFault::OverLength, EnicFault::Span, EnicFault::UnpostedIndex];

    pub fn name(self) -> &'static str {
        match self {
            EnicFault::Overrun => "overrun",
            EnicFault::OverLength => "over-length",
            EnicFault::Span => "span",
            EnicFault::UnpostedIndex => "unposted-index",
        }
    }
}

/// Seeded misbehaviour: each received frame draws a fault with probability
/// `per_mille / 1000`, uniformly among `kinds`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EnicFaultPlan {
    pub seed: u64,
    pub per_mille: u32,
    pub kinds: Vec<EnicFault>,
}

impl EnicFaultPlan {
    pub fn none() -> Self {
        EnicFaultPlan { seed: 0, per_mille: 0, kinds: Vec::new() }
    }
}

/// The field a hostile completion (`hostile-completion:N`) corrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostileField {
    Type,
    Queue,
    Index,
    SopEop,
    Truncated,
    BytesWritten,
    Colour,
}

impl HostileField {
    pub fn name(self) -> &'static str {
        match self {
            HostileField::Type => "type",
            HostileField::Queue => "queue",
            HostileField::Index => "index",
            HostileField::SopEop => "sop/eop",
            HostileField::Truncated => "truncated",
            HostileField::BytesWritten => "bytes_written",
            HostileField::Colour => "colour",
        }
    }
}

/// A hostile completion the adapter wrote: which CQ, which slot, which field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HostileCompletion {
    pub cq: u32,
    pub slot: u32,
    pub field: HostileField,
}

/// The adapter settings the host does not control (UCS service profile / adapter policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnicConfig {
    /// The vNIC's MTU (`vnic_enet_config.mtu`).
    pub vnic_mtu: u32,
    pub mac: [u8; 6],
    /// Present as the SR-IOV VF (device id 0071) rather than the PF (0043).
    pub vf: bool,
}

impl Default for EnicConfig {
    fn default() -> Self {
        EnicConfig { vnic_mtu: 1500, mac: [0x00, 0x25, 0xB5, 0x00, 0x00, 0x1A], vf: false }
    }
}

/// What the adapter counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct EnicDeviceStats {
    pub tx_frames: u64,
    pub rx_frames: u64,
    /// Frames larger than the vNIC MTU (+ VLAN header) dropped at the port.
    pub rx_oversize_dropped: u64,
    /// Frames dropped for want of a posted buffer (`dropped_packet_count`).
    pub rx_no_buffer: u64,
    /// Frames cut to the posted length (`truncated` set).
    pub rx_truncated: u64,
    /// Device DMA the IOMMU blocked.
    pub dma_blocked: u64,
    /// Faults of the plan acted out, per kind (order of [`EnicFault::ALL`]).
    pub faults_injected: [u64; 4],
    /// Devcmds executed, and those that failed (`STAT_ERROR`).
    pub devcmds: u64,
    pub devcmd_errors: u64,
    /// Devcmd writes while the previous one was still busy (dropped).
    pub devcmd_overrun: u64,
    /// MSI-X messages sent, held in the PBA, and lost to a fault.
    pub msix_sent: u64,
    pub msix_pended: u64,
    pub msix_lost: u64,
    /// Completions not written because the CQ is disabled, unsized or absent.
    pub cq_dropped: u64,
}

/// A WQ or RQ control block.
#[derive(Debug, Clone, Copy, Default)]
struct QueueCtrl {
    ring_base: u64,
    ring_size: u32,
    posted_index: u32,
    cq_index: u32,
    enable: bool,
    fetch_index: u32,
    error_status: u32,
    dropped: u32,
}

/// A CQ control block with the producer cursor.
#[derive(Debug, Clone, Copy, Default)]
struct CqCtrl {
    ring_base: u64,
    ring_size: u32,
    flow_control: bool,
    color_enable: bool,
    head: u32,
    tail: u32,
    tail_color: bool,
    interrupt_enable: bool,
    entry_enable: bool,
    message_enable: bool,
    interrupt_offset: u32,
}

/// An interrupt control block.
#[derive(Debug, Clone, Copy, Default)]
struct IntrCtrl {
    coalescing_timer: u32,
    coalescing_value: u32,
    coalescing_type: u32,
    mask_on_assertion: bool,
    mask: bool,
    credits: u32,
    /// Coalescing timer running: assert at this time.
    due_ns: Option<u64>,
}

/// The devcmd window and the vNIC state it drives.
#[derive(Debug, Clone, Copy, Default)]
struct Devcmd {
    status: u32,
    cmd: u32,
    args: [u64; hw::DEVCMD_NARGS],
    busy_until: u64,
    open_done_at: Option<u64>,
    init_done_at: Option<u64>,
    enabled: bool,
}

/// The vNIC.
#[derive(Debug)]
pub struct EnicDevice {
    cfg: ConfigSpace,
    config: EnicConfig,
    iommu: Iommu,
    now_ns: u64,
    wq: [QueueCtrl; QUEUES],
    rq: [QueueCtrl; QUEUES],
    cq: [CqCtrl; CQ_COUNT],
    intr: [IntrCtrl; INTR_COUNT],
    devcmd: Devcmd,
    msix: Msix,
    delivered: Vec<MsiMessage>,
    plan: EnicFaultPlan,
    rng: ChaCha8Rng,
    forced: Option<EnicFault>,
    faults: FaultState,
    hostile: Vec<HostileCompletion>,
    /// WQ fetch indices frozen by `stall-consumer`.
    stalled: [Option<u32>; QUEUES],
    /// Surprise removal: every register reads all-ones, no DMA.
    gone: bool,
    /// Frame assembly buffer (kept to avoid an allocation per frame).
    scratch: Vec<u8>,
    /// The resource table served: [`RESOURCES`] unless a test rewrote an entry.
    table: [(u8, u8, u32, u32); TABLE_SLOTS],
    pub stats: EnicDeviceStats,
}

/// Resource table entries the model can serve (the rest read as end-of-list).
pub const TABLE_SLOTS: usize = 16;

/// Hostile completions kept for reports (the count goes on in [`FaultState`]).
const HOSTILE_LOG_CAP: usize = 64;

impl EnicDevice {
    /// A vNIC whose configured MTU (UCSM/CIMC) is `vnic_mtu`, other settings default.
    pub fn new(vnic_mtu: u32, plan: EnicFaultPlan) -> EnicDevice {
        EnicDevice::with_config(EnicConfig { vnic_mtu, ..EnicConfig::default() }, plan)
    }

    pub fn with_config(config: EnicConfig, plan: EnicFaultPlan) -> EnicDevice {
        let rng = ChaCha8Rng::seed_from_u64(plan.seed);
        let device_id = if config.vf { hw::PCI_DEVICE_ID_CISCO_VIC_ENET_VF } else { hw::PCI_DEVICE_ID_CISCO_VIC_ENET };
        let mut cfg = ConfigSpace::new(hw::PCI_VENDOR_ID_CISCO, device_id, 0x0200_0000, hw::PCI_VENDOR_ID_CISCO, 0);
        cfg.add_bar(hw::BAR_REGS, BarKind::Mem32, BAR0_SIZE);
        let msix = cfg.add_cap(pci::CAP_ID_MSIX, CAP_MSIX, 12);
        cfg.set16(msix + pci::MSIX_MSG_CTRL, INTR_COUNT as u16 - 1);
        cfg.set_wmask8(msix + pci::MSIX_MSG_CTRL + 1, 0xC0); // Enable, Function Mask
        cfg.set32(msix + pci::MSIX_TABLE, MSIX_TABLE_BASE as u32 | u32::from(hw::BAR_REGS));
        cfg.set32(msix + pci::MSIX_PBA, MSIX_PBA_BASE as u32 | u32::from(hw::BAR_REGS));
        EnicDevice {
            cfg,
            config,
            iommu: Iommu::new(),
            now_ns: 0,
            wq: [QueueCtrl::default(); QUEUES],
            rq: [QueueCtrl::default(); QUEUES],
            cq: [CqCtrl::default(); CQ_COUNT],
            intr: [IntrCtrl::default(); INTR_COUNT],
            devcmd: Devcmd::default(),
            msix: Msix::new(INTR_COUNT as u16),
            delivered: Vec::new(),
            plan,
            rng,
            forced: None,
            faults: FaultState::default(),
            hostile: Vec::new(),
            stalled: [None; QUEUES],
            gone: false,
            scratch: Vec::new(),
            table: default_table(),
            stats: EnicDeviceStats::default(),
        }
    }

    /// Rewrite resource table entry `i` (type, BAR, offset, count): a hostile or broken
    /// table for tests and fuzzing. `None` for an entry past [`TABLE_SLOTS`].
    pub fn set_resource(&mut self, i: usize, ty: u8, bar: u8, offset: u32, count: u32) -> Option<()> {
        *self.table.get_mut(i)? = (ty, bar, offset, count);
        Some(())
    }

    /// What a fault plan may break on this device.
    pub fn fault_target() -> FaultTarget {
        FaultTarget {
            msix_vectors: INTR_COUNT as u16,
            ivar_entries: 0,
            completions: true,
            consumer_queues: QUEUES as u16,
        }
    }

    /// Arm a fault plan now; its times count from this moment.
    pub fn arm_faults(&mut self, plan: FaultPlan) {
        self.faults = FaultState::new(plan);
        self.faults.arm(self.now_ns);
    }

    pub fn fault_state(&self) -> &FaultState {
        &self.faults
    }

    /// Hostile completions written so far (the first `HOSTILE_LOG_CAP`).
    pub fn hostile_completions(&self) -> &[HostileCompletion] {
        &self.hostile
    }

    pub fn config(&self) -> EnicConfig {
        self.config
    }

    pub fn iommu(&mut self) -> &mut Iommu {
        &mut self.iommu
    }

    pub fn vnic_mtu(&self) -> u32 {
        self.config.vnic_mtu
    }

    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// True once the vNIC is enabled (`CMD_ENABLE`).
    pub fn is_enabled(&self) -> bool {
        self.devcmd.enabled
    }

    /// The next received frame acts out `f` regardless of the plan (tests).
    pub fn force_next(&mut self, f: EnicFault) {
        self.forced = Some(f);
    }

    /// The function disappears (reads all-ones, no DMA).
    pub fn surprise_remove(&mut self) {
        self.gone = true;
        self.iommu.set_blocked(true);
    }

    fn is_gone(&mut self) -> bool {
        if !self.gone && self.faults.removed(self.now_ns) {
            self.surprise_remove();
        }
        self.gone
    }

    // ---- registers ------------------------------------------------------------------------

    /// 32-bit read of BAR0.
    pub fn reg_read32(&mut self, off: u64) -> u32 {
        if self.is_gone() {
            return u32::MAX;
        }
        if off < DEVCMD_BASE {
            return resource_table_read(&self.table, off);
        }
        if let Some(r) = block(off, DEVCMD_BASE, 1, hw::DEVCMD_LEN).map(|(_, r)| r) {
            return self.devcmd_read(r);
        }
        if let Some((i, r)) = block(off, WQ_BASE, QUEUES, hw::VNIC_RES_STRIDE) {
            let frozen = self.stalled.get(i).copied().flatten();
            let stall = self.faults.consumer_stalled(i as u16, self.now_ns);
            let q = self.wq.get_mut(i).copied().unwrap_or_default();
            if stall
                && frozen.is_none()
                && let Some(s) = self.stalled.get_mut(i)
            {
                *s = Some(q.fetch_index);
            }
            return match r {
                hw::Q_FETCH_INDEX if stall => frozen.unwrap_or(q.fetch_index),
                hw::WQ_ERROR_STATUS => q.error_status,
                _ => queue_read(&q, r),
            };
        }
        if let Some((i, r)) = block(off, RQ_BASE, QUEUES, hw::VNIC_RES_STRIDE) {
            let q = self.rq.get(i).copied().unwrap_or_default();
            return match r {
                hw::RQ_ERROR_STATUS => q.error_status,
                hw::RQ_DROPPED_PACKET_COUNT => q.dropped,
                _ => queue_read(&q, r),
            };
        }
        if let Some((i, r)) = block(off, CQ_BASE, CQ_COUNT, hw::VNIC_RES_STRIDE) {
            let c = self.cq.get(i).copied().unwrap_or_default();
            return match r {
                hw::CQ_RING_BASE => c.ring_base as u32,
                hw::CQ_RING_BASE_HI => (c.ring_base >> 32) as u32,
                hw::CQ_RING_SIZE => c.ring_size,
                hw::CQ_FLOW_CONTROL_ENABLE => u32::from(c.flow_control),
                hw::CQ_COLOR_ENABLE => u32::from(c.color_enable),
                hw::CQ_HEAD => c.head,
                hw::CQ_TAIL => c.tail,
                hw::CQ_TAIL_COLOR => u32::from(c.tail_color),
                hw::CQ_INTERRUPT_ENABLE => u32::from(c.interrupt_enable),
                hw::CQ_ENTRY_ENABLE => u32::from(c.entry_enable),
                hw::CQ_MESSAGE_ENABLE => u32::from(c.message_enable),
                hw::CQ_INTERRUPT_OFFSET => c.interrupt_offset,
                _ => 0,
            };
        }
        if let Some((i, r)) = block(off, INTR_BASE, INTR_COUNT, hw::VNIC_RES_STRIDE) {
            let c = self.intr.get(i).copied().unwrap_or_default();
            return match r {
                hw::INTR_COALESCING_TIMER => c.coalescing_timer,
                hw::INTR_COALESCING_VALUE => c.coalescing_value,
                hw::INTR_COALESCING_TYPE => c.coalescing_type,
                hw::INTR_MASK_ON_ASSERTION => u32::from(c.mask_on_assertion),
                hw::INTR_MASK => u32::from(c.mask),
                hw::INTR_INT_CREDITS => c.credits,
                _ => 0,
            };
        }
        let table_len = INTR_COUNT as u64 * pci::MSIX_ENTRY_SIZE;
        if (MSIX_TABLE_BASE..MSIX_TABLE_BASE + table_len).contains(&off) {
            let rel = off - MSIX_TABLE_BASE;
            if self.faults.vector_lost((rel / pci::MSIX_ENTRY_SIZE) as u16, self.now_ns) {
                return u32::MAX;
            }
            return self.msix.table_read(rel);
        }
        if (MSIX_PBA_BASE..MSIX_PBA_BASE + 8).contains(&off) {
            return self.msix.pba_read(off - MSIX_PBA_BASE);
        }
        0
    }

    /// 32-bit write of BAR0. Writing a WQ's `posted_index` makes the adapter fetch and send
    /// (synchronously); writing an RQ's publishes buffers; writing the devcmd `cmd` runs it.
    pub fn reg_write32(&mut self, off: u64, v: u32) {
        if self.is_gone() {
            return;
        }
        if let Some((_, r)) = block(off, DEVCMD_BASE, 1, hw::DEVCMD_LEN) {
            self.devcmd_write(r, v);
        } else if let Some((i, r)) = block(off, WQ_BASE, QUEUES, hw::VNIC_RES_STRIDE) {
            if let Some(q) = self.wq.get_mut(i) {
                queue_write(q, r, v);
            }
            if r == hw::Q_POSTED_INDEX || r == hw::Q_ENABLE {
                self.run_wq(i);
            }
        } else if let Some((i, r)) = block(off, RQ_BASE, QUEUES, hw::VNIC_RES_STRIDE) {
            if let Some(q) = self.rq.get_mut(i) {
                queue_write(q, r, v);
            }
        } else if let Some((i, r)) = block(off, CQ_BASE, CQ_COUNT, hw::VNIC_RES_STRIDE) {
            if let Some(c) = self.cq.get_mut(i) {
                let on = v & 1 != 0;
                match r {
                    hw::CQ_RING_BASE => c.ring_base = (c.ring_base & !0xFFFF_FFFF) | u64::from(v),
                    hw::CQ_RING_BASE_HI => c.ring_base = (c.ring_base & 0xFFFF_FFFF) | (u64::from(v) << 32),
                    hw::CQ_RING_SIZE => c.ring_size = v,
                    hw::CQ_FLOW_CONTROL_ENABLE => c.flow_control = on,
                    hw::CQ_COLOR_ENABLE => c.color_enable = on,
                    hw::CQ_HEAD => c.head = v,
                    hw::CQ_TAIL => c.tail = v,
                    hw::CQ_TAIL_COLOR => c.tail_color = on,
                    hw::CQ_INTERRUPT_ENABLE => c.interrupt_enable = on,
                    hw::CQ_ENTRY_ENABLE => c.entry_enable = on,
                    hw::CQ_MESSAGE_ENABLE => c.message_enable = on,
                    hw::CQ_INTERRUPT_OFFSET => c.interrupt_offset = v,
                    _ => {}
                }
            }
        } else if let Some((i, r)) = block(off, INTR_BASE, INTR_COUNT, hw::VNIC_RES_STRIDE) {
            self.intr_write(i, r, v);
        } else {
            let table_len = INTR_COUNT as u64 * pci::MSIX_ENTRY_SIZE;
            if (MSIX_TABLE_BASE..MSIX_TABLE_BASE + table_len).contains(&off) {
                let out = self.msix.table_write(off - MSIX_TABLE_BASE, v);
                self.release(out);
            }
        }
    }

    // ---- devcmd ---------------------------------------------------------------------------

    fn devcmd_read(&mut self, r: u64) -> u32 {
        let d = &mut self.devcmd;
        if self.now_ns >= d.busy_until {
            d.status &= !hw::STAT_BUSY;
        }
        match r {
            hw::DEVCMD_STATUS => d.status,
            hw::DEVCMD_CMD => d.cmd,
            _ => {
                // Offsets below the argument block (between the status and command words,
                // or before them) hold nothing: they read 0.
                let Some(k) = r.checked_sub(hw::DEVCMD_ARGS).map(|o| (o / 4) as usize) else {
                    return 0;
                };
                let a = d.args.get(k / 2).copied().unwrap_or(0);
                if k.is_multiple_of(2) { a as u32 } else { (a >> 32) as u32 }
            }
        }
    }

    fn devcmd_write(&mut self, r: u64, v: u32) {
        if r == hw::DEVCMD_STATUS {
            return;
        }
        if r != hw::DEVCMD_CMD {
            // A write below the argument block (not status, not command) is dropped.
            let Some(k) = r.checked_sub(hw::DEVCMD_ARGS).map(|o| (o / 4) as usize) else {
                return;
            };
            if let Some(a) = self.devcmd.args.get_mut(k / 2) {
                *a = if k.is_multiple_of(2) {
                    (*a & !0xFFFF_FFFF) | u64::from(v)
                } else {
                    (*a & 0xFFFF_FFFF) | (u64::from(v) << 32)
                };
            }
            return;
        }
        if self.now_ns < self.devcmd.busy_until {
            self.stats.devcmd_overrun += 1;
            return;
        }
        self.stats.devcmds += 1;
        self.devcmd.cmd = v;
        self.devcmd.busy_until = self.now_ns.saturating_add(DEVCMD_BUSY_NS);
        let r = self.run_devcmd(v);
        let d = &mut self.devcmd;
        d.status = hw::STAT_BUSY;
        if let Err(code) = r {
            d.status |= hw::STAT_ERROR;
            d.args[0] = code;
            self.stats.devcmd_errors += 1;
        }
    }

    /// Carry out devcmd `cmd` on `args`; `Err(ERR_*)` sets `STAT_ERROR`.
    fn run_devcmd(&mut self, cmd: u32) -> Result<(), u64> {
        let now = self.now_ns;
        let done = |t: Option<u64>| t.is_some_and(|t| now >= t);
        let d = &mut self.devcmd;
        let a0 = d.args[0];
        match cmd {
            hw::CMD_OPEN => d.open_done_at = Some(now + OPEN_NS),
            hw::CMD_OPEN_STATUS => {
                d.args[0] = u64::from(!done(d.open_done_at));
                if d.open_done_at.is_none() {
                    return Err(hw::ERR_EBADSTATE);
                }
            }
            hw::CMD_CLOSE => {
                *d =
                    Devcmd { status: d.status, cmd: d.cmd, args: d.args, busy_until: d.busy_until, ..Devcmd::default() }
            }
            hw::CMD_INIT if done(d.open_done_at) => d.init_done_at = Some(now + OPEN_NS),
            hw::CMD_INIT_STATUS if d.init_done_at.is_some() => {
                d.args[0] = u64::from(!done(d.init_done_at));
                d.args[1] = 0;
            }
            hw::CMD_DEINIT => {
                d.init_done_at = None;
                d.enabled = false;
            }
            hw::CMD_DEV_SPEC => {
                let (off, size) = (a0 & 0xFFFF, (d.args[1] & 0xFF) as usize);
                d.args[0] = enet_config_read(&self.config, off as usize, size).ok_or(hw::ERR_EINVAL)?;
            }
            hw::CMD_GET_MAC_ADDR if done(d.open_done_at) => {
                let mut b = [0u8; 8];
                b[..6].copy_from_slice(&self.config.mac);
                d.args[0] = u64::from_le_bytes(b);
            }
            hw::CMD_ENABLE | hw::CMD_ENABLE_WAIT if done(d.init_done_at) => d.enabled = true,
            hw::CMD_DISABLE => d.enabled = false,
            hw::CMD_INIT | hw::CMD_INIT_STATUS | hw::CMD_GET_MAC_ADDR | hw::CMD_ENABLE | hw::CMD_ENABLE_WAIT => {
                return Err(hw::ERR_EBADSTATE);
            }
            _ => return Err(hw::ERR_ECMDUNKNOWN),
        }
        Ok(())
    }

    // ---- interrupts -----------------------------------------------------------------------

    fn intr_write(&mut self, i: usize, r: u64, v: u32) {
        let Some(c) = self.intr.get_mut(i) else { return };
        match r {
            hw::INTR_COALESCING_TIMER => c.coalescing_timer = v & 0xFFFF,
            hw::INTR_COALESCING_VALUE => c.coalescing_value = v & 0xFFFF,
            hw::INTR_COALESCING_TYPE => c.coalescing_type = v & 3,
            hw::INTR_MASK_ON_ASSERTION => c.mask_on_assertion = v & 1 != 0,
            hw::INTR_MASK => c.mask = v & 1 != 0,
            hw::INTR_INT_CREDIT_RETURN => {
                c.credits = c.credits.saturating_sub(v & hw::INTR_CREDITS_MASK);
                if v & hw::INTR_UNMASK != 0 {
                    c.mask = false;
                }
                if v & hw::INTR_RESET_TIMER != 0 {
                    c.due_ns = None;
                }
            }
            _ => return,
        }
        if matches!(r, hw::INTR_MASK | hw::INTR_INT_CREDIT_RETURN) {
            self.assert_intr(i);
        }
    }

    /// One event for interrupt `i` (a completion on a CQ that names it).
    fn credit(&mut self, i: usize) {
        if let Some(c) = self.intr.get_mut(i) {
            c.credits = (c.credits + 1).min(hw::INTR_CREDITS_MASK);
            self.assert_intr(i);
        }
    }

    /// Send interrupt `i`'s message if it is unmasked with credits outstanding, now or when
    /// its coalescing timer runs out.
    fn assert_intr(&mut self, i: usize) {
        let now = self.now_ns;
        let Some(c) = self.intr.get_mut(i) else { return };
        if c.mask || c.credits == 0 {
            return;
        }
        if c.coalescing_timer > 0 {
            match c.due_ns {
                None => {
                    c.due_ns = Some(now + u64::from(c.coalescing_timer) * 1000);
                    return;
                }
                Some(t) if now < t => return,
                Some(_) => c.due_ns = None,
            }
        }
        if c.mask_on_assertion {
            c.mask = true;
        }
        let out = self.msix.notify(i as u16);
        self.release(vec![out]);
    }

    fn release(&mut self, outcomes: Vec<MsixOutcome>) {
        for o in outcomes {
            match o {
                MsixOutcome::Send { vector, address, data } => self.send_message(vector, address, data),
                MsixOutcome::Pending => self.stats.msix_pended += 1,
                MsixOutcome::Disabled => {}
            }
        }
    }

    /// A message leaves the device: faults, bus mastering, then the interrupt window or memory.
    fn send_message(&mut self, vector: u16, address: u64, data: u32) {
        let now = self.now_ns;
        if self.is_gone() {
            return;
        }
        if self.faults.swallow_message(vector, now) {
            self.stats.msix_lost += 1;
            return;
        }
        if self.cfg.command() & pci::COMMAND_BUS_MASTER == 0 {
            return;
        }
        self.stats.msix_sent += 1;
        if address & pci::MSI_ADDRESS_MASK == pci::MSI_ADDRESS_BASE {
            self.delivered.push(MsiMessage { address, data, at_ns: now });
        } else {
            let _ = self.iommu.write(address, &data.to_le_bytes(), now);
        }
    }

    fn sync_msix_control(&mut self) {
        let ctrl = self.cfg.get16(CAP_MSIX + pci::MSIX_MSG_CTRL);
        self.msix.enabled = ctrl & pci::MSIX_CTRL_ENABLE != 0;
        self.msix.function_mask = ctrl & pci::MSIX_CTRL_FUNCTION_MASK != 0;
        let out = self.msix.release_unmasked();
        self.release(out);
    }

    // ---- transmit -------------------------------------------------------------------------

    /// Fetch WQ `w`'s descriptors from `fetch_index` up to `posted_index`, assemble packets,
    /// loop them back into RQ `w` and complete them on the WQ's CQ.
    fn run_wq(&mut self, w: usize) {
        let Some(q) = self.wq.get(w).copied() else { return };
        if !q.enable || !self.devcmd.enabled || q.ring_size == 0 {
            return;
        }
        let Ok(ring) = DescRing::<WqEnetDesc>::new("WQ", RingLayout::Contiguous { base: q.ring_base }, q.ring_size)
        else {
            self.wq_error(w);
            return;
        };
        let mut frame = std::mem::take(&mut self.scratch);
        frame.clear();
        let mut fetch = q.fetch_index;
        // At most one lap, whatever the indices say.
        for _ in 0..q.ring_size {
            if fetch == q.posted_index {
                break;
            }
            let idx = fetch;
            let Ok(desc) = ring.fetch(&mut self.iommu, idx, self.now_ns) else {
                self.stats.dma_blocked += 1;
                self.wq_error(w);
                break;
            };
            let len = desc.buf_len() as usize;
            let start = frame.len();
            if start + len > MAX_TX_FRAME {
                self.wq_error(w);
                break;
            }
            frame.resize(start + len, 0);
            let slice = frame.get_mut(start..).unwrap_or_default();
            if self.iommu.read(desc.address.get(), slice, self.now_ns).is_err() {
                self.stats.dma_blocked += 1;
                self.wq_error(w);
                break;
            }
            fetch = wrap_next(idx, q.ring_size);
            if let Some(m) = self.wq.get_mut(w) {
                m.fetch_index = fetch;
            }
            if desc.eop() {
                self.stats.tx_frames += 1;
                self.now_ns += wire_ns(frame.len());
                if desc.cq_entry() {
                    let c = wq_completion_words(hw::CQ_DESC_TYPE_WQ_ENET, w as u16, idx as u16);
                    self.complete(q.cq_index as usize, c, q.ring_size, 0);
                }
                self.receive_on(w, &frame);
                frame.clear();
            }
        }
        self.scratch = frame;
    }

    fn wq_error(&mut self, w: usize) {
        if let Some(m) = self.wq.get_mut(w) {
            m.error_status = 1;
            m.enable = false;
        }
    }

    // ---- receive --------------------------------------------------------------------------

    /// A frame arrives from the wire into RQ 0. Returns what happened to it.
    pub fn receive(&mut self, frame: &[u8]) -> RxFate {
        self.receive_on(0, frame)
    }

    /// A frame for RQ `r` (the loopback of WQ `r`, or the wire).
    pub fn receive_on(&mut self, r: usize, frame: &[u8]) -> RxFate {
        let Some(q) = self.rq.get(r).copied() else { return RxFate::Dropped };
        if self.is_gone() || !self.devcmd.enabled || !q.enable || q.ring_size == 0 {
            return RxFate::Dropped;
        }
        self.stats.rx_frames += 1;
        if frame.len() as u64 > u64::from(self.config.vnic_mtu) + u64::from(hw::VLAN_ETH_HLEN) {
            self.stats.rx_oversize_dropped += 1;
            self.rq_dropped(r);
            return RxFate::Dropped;
        }
        let Some(idx) = self.take_rq_buffer(r) else {
            self.stats.rx_no_buffer += 1;
            self.rq_dropped(r);
            return RxFate::Dropped;
        };
        let Ok(ring) = DescRing::<RqEnetDesc>::new("RQ", RingLayout::Contiguous { base: q.ring_base }, q.ring_size)
        else {
            return RxFate::Dropped;
        };
        let desc = match ring.fetch(&mut self.iommu, idx, self.now_ns) {
            Ok(d) => d,
            Err(_) => {
                self.stats.dma_blocked += 1;
                if let Some(m) = self.rq.get_mut(r) {
                    m.error_status = 1;
                }
                return RxFate::Dropped;
            }
        };
        let fault = self.draw_fault();
        if let Some(f) = fault
            && let Some(n) = EnicFault::ALL.iter().position(|k| *k == f)
            && let Some(c) = self.stats.faults_injected.get_mut(n)
        {
            *c += 1;
        }
        let posted = usize::from(desc.buf_len());
        let addr = desc.address.get();
        let cq = q.cq_index as usize;
        let base = RqCompletion {
            completed_index: idx as u16,
            q_number: r as u16,
            sop: true,
            eop: true,
            bytes_written: 0,
            truncated: false,
            fcs_ok: true,
            ty: hw::CQ_DESC_TYPE_RQ_ENET,
            color: false,
        };
        let size = q.ring_size;
        let fate = match fault {
            Some(EnicFault::Overrun) => {
                let blocked = self.dma(addr, frame);
                self.complete_rq(cq, RqCompletion { bytes_written: frame.len() as u16, ..base }, size, posted);
                blocked
            }
            Some(EnicFault::OverLength) => {
                let n = frame.len().min(posted);
                let blocked = self.dma(addr, frame.get(..n).unwrap_or_default());
                let claim = (posted + 1 + self.rng.random_range(0..64usize)).min(usize::from(hw::LEN_MASK));
                self.complete_rq(cq, RqCompletion { bytes_written: claim as u16, ..base }, size, posted);
                blocked
            }
            Some(EnicFault::Span) => {
                let half = (frame.len() / 2).min(posted);
                let blocked = self.dma(addr, frame.get(..half).unwrap_or_default());
                self.complete_rq(cq, RqCompletion { bytes_written: half as u16, eop: false, ..base }, size, posted);
                if let Some(next) = self.take_rq_buffer(r)
                    && let Ok(d2) = ring.fetch(&mut self.iommu, next, self.now_ns)
                {
                    let rest = frame.get(half..).unwrap_or_default();
                    let rest = rest.get(..rest.len().min(usize::from(d2.buf_len()))).unwrap_or_default();
                    let _ = self.dma(d2.address.get(), rest);
                    let c = RqCompletion {
                        completed_index: next as u16,
                        bytes_written: rest.len() as u16,
                        sop: false,
                        ..base
                    };
                    self.complete_rq(cq, c, size, usize::from(d2.buf_len()));
                }
                blocked
            }
            Some(EnicFault::UnpostedIndex) => {
                let n = frame.len().min(posted);
                let blocked = self.dma(addr, frame.get(..n).unwrap_or_default());
                // An index never posted: beyond the ring (the 12-bit field allows it) or
                // the one slot the driver keeps empty (the posted index itself).
                let bogus = if self.rng.random_bool(0.5) && size < 4096 {
                    size + self.rng.random_range(0..4096 - size)
                } else {
                    q.posted_index
                };
                let c = RqCompletion {
                    completed_index: bogus as u16,
                    bytes_written: n as u16,
                    truncated: n < frame.len(),
                    ..base
                };
                self.complete_rq(cq, c, size, posted);
                blocked
            }
            None => {
                let n = frame.len().min(posted);
                if n < frame.len() {
                    self.stats.rx_truncated += 1;
                }
                let blocked = self.dma(addr, frame.get(..n).unwrap_or_default());
                let c = RqCompletion { bytes_written: n as u16, truncated: n < frame.len(), ..base };
                self.complete_rq(cq, c, size, posted);
                blocked
            }
        };
        self.now_ns += wire_ns(frame.len());
        if fate { RxFate::Blocked } else { RxFate::Written }
    }

    fn rq_dropped(&mut self, r: usize) {
        if let Some(m) = self.rq.get_mut(r) {
            m.dropped = m.dropped.wrapping_add(1);
        }
    }

    /// The RQ buffer at `fetch_index`, if the driver has posted one; advances the fetch index.
    fn take_rq_buffer(&mut self, r: usize) -> Option<u32> {
        let q = self.rq.get_mut(r)?;
        if q.fetch_index == q.posted_index || q.ring_size == 0 {
            return None;
        }
        let idx = q.fetch_index;
        q.fetch_index = wrap_next(idx, q.ring_size);
        Some(idx)
    }

    fn draw_fault(&mut self) -> Option<EnicFault> {
        if let Some(f) = self.forced.take() {
            return Some(f);
        }
        if self.plan.per_mille == 0 || self.plan.kinds.is_empty() {
            return None;
        }
        if self.rng.random_range(0..1000u32) >= self.plan.per_mille {
            return None;
        }
        let i = self.rng.random_range(0..self.plan.kinds.len());
        self.plan.kinds.get(i).copied()
    }

    /// Device write of frame data; true when the IOMMU blocked it.
    fn dma(&mut self, addr: u64, data: &[u8]) -> bool {
        match self.iommu.write(addr, data, self.now_ns) {
            Ok(()) => false,
            Err(_) => {
                self.stats.dma_blocked += 1;
                true
            }
        }
    }

    fn complete_rq(&mut self, cq: usize, c: RqCompletion, ring_size: u32, posted: usize) {
        self.complete(cq, rq_completion_words(c), ring_size, posted);
    }

    /// Write a completion at CQ `cq`'s tail with the tail colour (colour byte last), advance
    /// the tail (the colour flips when it wraps), and credit the CQ's interrupt. An armed
    /// `hostile-completion` may corrupt one field first. `ring_size` and `posted` are those
    /// of the queue and buffer the completion is for (what a hostile index or length
    /// exceeds); `posted` is 0 for a WQ completion.
    ///
    /// The completion comes as the two little-endian words the adapter stores (composed in
    /// registers, see [`rq_completion_words`]); in one cached window they are stored as
    /// such, otherwise as bytes in order, colour byte last.
    fn complete(&mut self, cq: usize, mut words: [u64; 2], ring_size: u32, posted: usize) {
        let Some(c) = self.cq.get(cq).copied() else {
            self.stats.cq_dropped += 1;
            return;
        };
        let Some(cursor) = ColorCursor::at(c.ring_size, c.tail, c.tail_color) else {
            self.stats.cq_dropped += 1;
            return;
        };
        if !c.entry_enable {
            self.stats.cq_dropped += 1;
        } else {
            // The colour bit is bit 7 of byte 15 (`type_color`), the top byte of word 1.
            let color_bit = u64::from(hw::CQ_DESC_COLOR) << (8 * (hw::CQ_TYPE_COLOR_OFFSET - 8));
            let color = cursor.color() && c.color_enable;
            words[1] = (words[1] & !color_bit) | if color { color_bit } else { 0 };
            if let Some(pick) = self.faults.next_completion(self.now_ns) {
                let mut bytes = [0u8; 16];
                for (d, w) in bytes.chunks_exact_mut(8).zip(&words) {
                    d.copy_from_slice(&w.to_le_bytes());
                }
                let field = corrupt(&mut bytes, pick, ring_size, posted);
                words = completion_words(&bytes);
                if self.hostile.len() < HOSTILE_LOG_CAP {
                    self.hostile.push(HostileCompletion { cq: cq as u32, slot: cursor.index(), field });
                }
            }
            let r = DescRing::<CqDesc>::new("CQ", RingLayout::Contiguous { base: c.ring_base }, c.ring_size).and_then(
                |ring| {
                    let iova = ring.addr(cursor.index())?;
                    if self.iommu.write_words_if_cached(iova, &words) {
                        return Ok(());
                    }
                    let mut bytes = [0u8; 16];
                    for (d, w) in bytes.chunks_exact_mut(8).zip(&words) {
                        d.copy_from_slice(&w.to_le_bytes());
                    }
                    let desc =
                        zerocopy::FromBytes::read_from_bytes(&bytes).unwrap_or_else(|_| CqDesc::new(0, 0, 0, false));
                    let last = hw::CQ_TYPE_COLOR_OFFSET..hw::CQ_TYPE_COLOR_OFFSET + 1;
                    ring.write_back_ordered(&mut self.iommu, cursor.index(), &desc, last, self.now_ns)
                },
            );
            if r.is_err() {
                self.stats.dma_blocked += 1;
            }
        }
        let mut next = cursor;
        next.advance();
        if let Some(cm) = self.cq.get_mut(cq) {
            cm.tail = next.index();
            cm.tail_color = next.color();
        }
        if c.interrupt_enable {
            self.credit(c.interrupt_offset as usize);
        }
    }

    /// Write a raw receive completion at CQ 0's tail exactly as given (its colour byte
    /// included), then advance the tail: a hostile adapter for tests.
    pub fn inject_rq_completion(&mut self, raw: CqEnetRqDesc) -> Result<(), RingError> {
        let c = self.cq.first().copied().unwrap_or_default();
        let ring = DescRing::<CqEnetRqDesc>::new("CQ0", RingLayout::Contiguous { base: c.ring_base }, c.ring_size)?;
        let index = if c.tail < c.ring_size { c.tail } else { 0 };
        ring.write_back(&mut self.iommu, index, &raw, self.now_ns)?;
        if let Some(mut cur) = ColorCursor::at(c.ring_size, index, c.tail_color) {
            cur.advance();
            if let Some(cm) = self.cq.first_mut() {
                cm.tail = cur.index();
                cm.tail_color = cur.color();
            }
        }
        Ok(())
    }

    /// The colour the adapter writes on CQ `cq`'s next completion.
    pub fn cq_tail_color(&self, cq: usize) -> bool {
        self.cq.get(cq).is_some_and(|c| c.tail_color)
    }

    /// Interrupt `i`'s outstanding credits and mask (tests, reports).
    pub fn intr_state(&self, i: usize) -> Option<(u32, bool)> {
        self.intr.get(i).map(|c| (c.credits, c.mask))
    }

    pub fn dma_faults(&self) -> &[DmaFault] {
        self.iommu.faults()
    }
}

/// Corrupt one field of completion `b` (16 bytes, `cq_desc` layout) as `pick` chooses;
/// returns the field. Fields that only receive completions carry (sop/eop, truncated,
/// bytes_written) are only picked when `posted` > 0.
fn corrupt(b: &mut [u8], pick: u32, ring_size: u32, posted: usize) -> HostileField {
    let fields: &[HostileField] = if posted > 0 {
        &[
            HostileField::Type,
            HostileField::Queue,
            HostileField::Index,
            HostileField::SopEop,
            HostileField::Truncated,
            HostileField::BytesWritten,
            HostileField::Colour,
        ]
    } else {
        &[HostileField::Type, HostileField::Queue, HostileField::Index, HostileField::Colour]
    };
    let field = fields.get(pick as usize % fields.len()).copied().unwrap_or(HostileField::Type);
    let salt = (pick >> 8) as u16;
    let mut word = |at: usize, f: &dyn Fn(u16) -> u16| {
        if let (Some(&lo), Some(&hi)) = (b.get(at), b.get(at + 1)) {
            let [l, h] = f(u16::from_le_bytes([lo, hi])).to_le_bytes();
            if let Some(x) = b.get_mut(at) {
                *x = l;
            }
            if let Some(x) = b.get_mut(at + 1) {
                *x = h;
            }
        }
    };
    match field {
        HostileField::Type => {
            if let Some(x) = b.get_mut(hw::CQ_TYPE_COLOR_OFFSET) {
                // Any other of the 16 types.
                let t = *x & hw::CQ_DESC_TYPE_MASK;
                *x = (*x & !hw::CQ_DESC_TYPE_MASK) | ((t + 1 + (salt % 15) as u8) & hw::CQ_DESC_TYPE_MASK);
            }
        }
        HostileField::Queue => {
            word(2, &|v| (v & !hw::Q_NUMBER_MASK) | (((v & hw::Q_NUMBER_MASK) + 1 + salt % 1000) & hw::Q_NUMBER_MASK))
        }
        HostileField::Index => {
            // An index outside the ring when the 12-bit field allows one; half a lap
            // away otherwise.
            let bogus = if ring_size < 4096 { (ring_size + u32::from(salt) % (4096 - ring_size)) as u16 } else { 2048 };
            word(0, &|v| {
                let i = if ring_size < 4096 { bogus } else { (v & hw::COMPLETED_INDEX_MASK) ^ bogus };
                (v & !hw::COMPLETED_INDEX_MASK) | (i & hw::COMPLETED_INDEX_MASK)
            })
        }
        HostileField::SopEop => {
            let bit =
                if salt.is_multiple_of(2) { hw::CQ_ENET_RQ_DESC_FLAGS_SOP } else { hw::CQ_ENET_RQ_DESC_FLAGS_EOP };
            word(0, &|v| v & !bit)
        }
        HostileField::Truncated => word(8, &|v| v | hw::CQ_ENET_RQ_DESC_FLAGS_TRUNCATED),
        HostileField::BytesWritten => {
            let claim = (posted + 1 + usize::from(salt % 64)).min(usize::from(hw::LEN_MASK)) as u16;
            word(8, &|v| (v & !hw::LEN_MASK) | claim)
        }
        HostileField::Colour => {
            if let Some(x) = b.get_mut(hw::CQ_TYPE_COLOR_OFFSET) {
                *x ^= hw::CQ_DESC_COLOR;
            }
        }
    }
    field
}

fn queue_read(q: &QueueCtrl, r: u64) -> u32 {
    match r {
        hw::Q_RING_BASE => q.ring_base as u32,
        hw::Q_RING_BASE_HI => (q.ring_base >> 32) as u32,
        hw::Q_RING_SIZE => q.ring_size,
        hw::Q_POSTED_INDEX => q.posted_index,
        hw::Q_CQ_INDEX => q.cq_index,
        hw::Q_ENABLE | hw::Q_RUNNING => u32::from(q.enable),
        hw::Q_FETCH_INDEX => q.fetch_index,
        _ => 0,
    }
}

fn queue_write(q: &mut QueueCtrl, r: u64, v: u32) {
    match r {
        hw::Q_RING_BASE => q.ring_base = (q.ring_base & !0xFFFF_FFFF) | u64::from(v),
        hw::Q_RING_BASE_HI => q.ring_base = (q.ring_base & 0xFFFF_FFFF) | (u64::from(v) << 32),
        hw::Q_RING_SIZE => q.ring_size = v,
        hw::Q_POSTED_INDEX => {
            if v >= q.ring_size {
                // A posted index outside the ring: the adapter flags an error and stops
                // the queue rather than fetch from it.
                q.error_status = 1;
                q.enable = false;
            } else {
                q.posted_index = v;
            }
        }
        hw::Q_CQ_INDEX => q.cq_index = v,
        hw::Q_ENABLE => {
            q.enable = v & 1 != 0;
            if q.enable {
                q.error_status = 0;
            }
        }
        hw::Q_FETCH_INDEX => q.fetch_index = if v < q.ring_size { v } else { 0 },
        _ => {}
    }
}

/// `CMD_DEV_SPEC`: `size` (1, 2, 4 or 8) bytes of `vnic_enet_config` at `off`.
fn enet_config_read(c: &EnicConfig, off: usize, size: usize) -> Option<u64> {
    let mut b = [0u8; hw::ENET_CONFIG_LEN];
    let mut put = |at: u64, v: &[u8]| {
        if let Some(d) = b.get_mut(at as usize..at as usize + v.len()) {
            d.copy_from_slice(v);
        }
    };
    put(hw::ENET_CONFIG_WQ_DESC_COUNT, &hw::MAX_WQ_DESCS.to_le_bytes());
    put(hw::ENET_CONFIG_RQ_DESC_COUNT, &hw::MAX_RQ_DESCS.to_le_bytes());
    put(hw::ENET_CONFIG_MTU, &(c.vnic_mtu.min(u32::from(u16::MAX)) as u16).to_le_bytes());
    if !matches!(size, 1 | 2 | 4 | 8) {
        return None;
    }
    let s = b.get(off..off.checked_add(size)?)?;
    let mut v = [0u8; 8];
    v.get_mut(..size)?.copy_from_slice(s);
    Some(u64::from_le_bytes(v))
}

/// The vNIC as a PCI function: config space with BAR0 (resource table, devcmd, control
/// blocks, MSI-X table and PBA) and an MSI-X capability. The adapter works synchronously
/// inside register writes; coalescing timers fire as the clock advances.
impl PciDevice for EnicDevice {
    fn config_read(&mut self, offset: u16, size: u8) -> u32 {
        if self.is_gone() {
            return if size >= 4 { u32::MAX } else { (1u32 << (8 * u32::from(size))) - 1 };
        }
        self.cfg.read(offset, size)
    }

    fn config_write(&mut self, offset: u16, size: u8, value: u32) {
        if self.is_gone() {
            return;
        }
        self.cfg.write(offset, size, value);
        let ctl = CAP_MSIX + pci::MSIX_MSG_CTRL;
        if offset <= ctl + 1 && u32::from(offset) + u32::from(size) > u32::from(ctl) {
            self.sync_msix_control();
        }
    }

    fn bar_len(&self, bar: u8) -> Option<u64> {
        self.cfg.bar_size(bar)
    }

    fn bar_read32(&mut self, bar: u8, offset: u64) -> u32 {
        if bar != hw::BAR_REGS || offset >= BAR0_SIZE || !offset.is_multiple_of(4) {
            return u32::MAX;
        }
        self.reg_read32(offset)
    }

    fn bar_write32(&mut self, bar: u8, offset: u64, value: u32) {
        if bar == hw::BAR_REGS && offset < BAR0_SIZE && offset.is_multiple_of(4) {
            self.reg_write32(offset, value);
        }
    }

    fn advance(&mut self, ns: u64) {
        self.now_ns = self.now_ns.saturating_add(ns);
        for i in 0..INTR_COUNT {
            if self.intr.get(i).and_then(|c| c.due_ns).is_some_and(|t| self.now_ns >= t) {
                self.assert_intr(i);
            }
        }
    }

    fn now_ns(&self) -> u64 {
        self.now_ns
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        let busy = (self.devcmd.busy_until > self.now_ns).then_some(self.devcmd.busy_until);
        self.intr.iter().filter_map(|c| c.due_ns).chain(busy).min()
    }

    fn function_reset(&mut self) {
        let plan = self.plan.clone();
        let iommu = std::mem::take(&mut self.iommu);
        let faults = std::mem::take(&mut self.faults);
        let hostile = std::mem::take(&mut self.hostile);
        let (now, config, gone, stats, table) = (self.now_ns, self.config, self.gone, self.stats, self.table);
        *self = EnicDevice::with_config(config, plan);
        self.table = table;
        self.iommu = iommu;
        self.faults = faults;
        self.hostile = hostile;
        self.now_ns = now;
        self.gone = gone;
        self.stats = stats;
    }

    fn take_interrupts(&mut self) -> Vec<MsiMessage> {
        std::mem::take(&mut self.delivered)
    }

    fn iommu(&mut self) -> &mut Iommu {
        &mut self.iommu
    }

    fn dma_faults_total(&self) -> u64 {
        self.iommu.faults_total()
    }
}

/// What became of a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxFate {
    /// Written to a buffer and completed.
    Written,
    /// Completed, but the IOMMU blocked the data write.
    Blocked,
    /// Dropped by the adapter (MTU, no buffer, queue or vNIC disabled).
    Dropped,
}

/// Serialization time at 10 Gbit/s with preamble, FCS and inter-frame gap (24 bytes).
fn wire_ns(len: usize) -> u64 {
    ((len as u64 + 24) * 8).div_ceil(10)
}

/// [`RESOURCES`] in BAR0, then end-of-list entries.
fn default_table() -> [(u8, u8, u32, u32); TABLE_SLOTS] {
    let mut t = [(hw::RES_TYPE_EOL, 0, 0, 0); TABLE_SLOTS];
    for (slot, (ty, off, n)) in t.iter_mut().zip(RESOURCES) {
        *slot = (ty, hw::BAR_REGS, off as u32, n);
    }
    t
}

/// The resource table: header (magic, version), then `table`, then end-of-list.
fn resource_table_read(table: &[(u8, u8, u32, u32)], off: u64) -> u32 {
    match off {
        0 => hw::VNIC_RES_MAGIC,
        4 => hw::VNIC_RES_VERSION,
        _ => {
            let rel = off.wrapping_sub(hw::RES_HDR_LEN);
            let (i, field) = ((rel / hw::RES_ENTRY_LEN) as usize, rel % hw::RES_ENTRY_LEN);
            match (table.get(i), field) {
                // type u8, bar u8, pad[2]
                (Some((ty, bar, _, _)), 0) => u32::from(*ty) | (u32::from(*bar) << 8),
                (Some((_, _, o, _)), 4) => *o,
                (Some((_, _, _, n)), 8) => *n,
                _ => u32::from(hw::RES_TYPE_EOL),
            }
        }
    }
}

/// (instance, offset in it) when `off` falls in one of `count` blocks of `stride` bytes
/// from `base`.
fn block(off: u64, base: u64, count: usize, stride: u64) -> Option<(usize, u64)> {
    let rel = off.checked_sub(base)?;
    let i = rel / stride;
    (i < count as u64).then_some((i as usize, rel % stride))
}

#[cfg(test)]
mod tests;

/// `(idx + 1) % size` without a division in the common case (`idx + 1 < size`); the
/// same value for any `idx` (a hostile fetch index included). `size` is never 0 here
/// (callers return early for an unset ring), and 0 for it gives 0.
#[inline(always)]
fn wrap_next(idx: u32, size: u32) -> u32 {
    let n = idx.wrapping_add(1);
    if n < size { n } else { n.checked_rem(size).unwrap_or(0) }
}

/// A completion's 16 bytes as two little-endian words.
fn completion_words(b: &[u8; 16]) -> [u64; 2] {
    let (mut lo, mut hi) = ([0u8; 8], [0u8; 8]);
    lo.copy_from_slice(b.get(..8).unwrap_or(&[0; 8]));
    hi.copy_from_slice(b.get(8..).unwrap_or(&[0; 8]));
    [u64::from_le_bytes(lo), u64::from_le_bytes(hi)]
}

/// `cq_enet_rq_desc` composed in registers (colour 0; [`EnicDevice::complete`] sets it):
/// `completed_index_flags` (bytes 0-1: index, EOP b14, SOP b15), `q_number_rss_type_flags`
/// (2-3), `rss_hash` 0 (4-7), `bytes_written_flags` (8-9: bytes, TRUNCATED b14), `vlan` and
/// `checksum_fcoe` 0 (10-13), `flags` (14: FCS_OK b7), `type_color` (15).
#[inline(always)]
fn rq_completion_words(c: RqCompletion) -> [u64; 2] {
    let mut ci = c.completed_index & hw::COMPLETED_INDEX_MASK;
    if c.sop {
        ci |= hw::CQ_ENET_RQ_DESC_FLAGS_SOP;
    }
    if c.eop {
        ci |= hw::CQ_ENET_RQ_DESC_FLAGS_EOP;
    }
    let mut bw = c.bytes_written & hw::LEN_MASK;
    if c.truncated {
        bw |= hw::CQ_ENET_RQ_DESC_FLAGS_TRUNCATED;
    }
    let flags = if c.fcs_ok { hw::CQ_ENET_RQ_DESC_FLAGS_FCS_OK } else { 0 };
    let tc = (c.ty & hw::CQ_DESC_TYPE_MASK) | if c.color { hw::CQ_DESC_COLOR } else { 0 };
    let w0 = u64::from(ci) | u64::from(c.q_number & hw::Q_NUMBER_MASK) << 16;
    let w1 = u64::from(bw) | u64::from(flags) << 48 | u64::from(tc) << 56;
    [w0, w1]
}

/// `cq_desc` (a WQ completion) composed in registers, colour 0: `completed_index` (bytes
/// 0-1), `q_number` (2-3), reserved, `type_color` (15).
#[inline(always)]
fn wq_completion_words(ty: u8, q: u16, completed_index: u16) -> [u64; 2] {
    let w0 = u64::from(completed_index & hw::COMPLETED_INDEX_MASK) | u64::from(q & hw::Q_NUMBER_MASK) << 16;
    [w0, u64::from(ty & hw::CQ_DESC_TYPE_MASK) << 56]
}
