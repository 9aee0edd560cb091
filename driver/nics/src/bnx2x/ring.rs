//! The driver's own ring arithmetic for bnx2x chains (the model keeps its own; tests run
//! one against the other): free-running u16 indices over pages whose last slot(s) hold the
//! next-page pointer, as Linux's `NEXT_RX_IDX` / `NEXT_SGE_IDX` / `NEXT_RCQ_IDX` /
//! `NEXT_TX_IDX` and `RX_BD` / `RX_SGE` / `RCQ_BD` / `TX_BD` masks (`bnx2x.h`).

use nicqual_hw::bnx2x as hw;

/// One chain's geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chain {
    pub per_page: u16,
    pub link_slots: u16,
    pub pages: u16,
    /// Bytes per slot.
    pub entry: usize,
}

impl Chain {
    /// RX BD chain of `pages` pages (512 BDs, 2 link slots each).
    pub const fn rx_bd(pages: u16) -> Chain {
        Chain { per_page: hw::RX_DESC_CNT, link_slots: hw::NEXT_PAGE_RX_DESC_CNT, pages, entry: hw::RX_BD_SIZE }
    }
    /// SGE chain (512 per page, 2 link slots).
    pub const fn sge(pages: u16) -> Chain {
        Chain { per_page: hw::RX_SGE_CNT, link_slots: hw::NEXT_PAGE_SGE_DESC_CNT, pages, entry: hw::RX_BD_SIZE }
    }
    /// RCQ (64 CQEs per page, 1 link slot).
    pub const fn rcq(pages: u16) -> Chain {
        Chain { per_page: hw::RCQ_DESC_CNT, link_slots: hw::NEXT_PAGE_RCQ_DESC_CNT, pages, entry: hw::RCQ_CQE_SIZE }
    }
    /// TX BD chain (256 per page, 1 link slot).
    pub const fn tx(pages: u16) -> Chain {
        Chain { per_page: hw::TX_DESC_CNT, link_slots: hw::NEXT_PAGE_TX_DESC_CNT, pages, entry: hw::TX_BD_SIZE }
    }

    /// Geometry a u16 index can run over: powers of two, at most 65536 slots.
    pub const fn valid(self) -> bool {
        self.per_page.is_power_of_two()
            && self.pages.is_power_of_two()
            && (self.per_page as u32) * (self.pages as u32) <= 32768
            && self.link_slots < self.per_page
    }

    /// All slots, link slots included.
    pub const fn total(self) -> usize {
        self.per_page as usize * self.pages as usize
    }

    /// Slots that carry data.
    pub const fn usable(self) -> usize {
        (self.per_page - self.link_slots) as usize * self.pages as usize
    }

    /// Bytes of the chain's pages.
    pub const fn bytes(self) -> usize {
        self.pages as usize * hw::BCM_PAGE_SIZE
    }

    /// Ring slot of a free-running index.
    #[inline]
    pub const fn slot(self, x: u16) -> usize {
        (x as usize) & (self.total() - 1)
    }

    /// True when `x` falls on a next-page slot.
    #[inline]
    pub const fn is_link(self, x: u16) -> bool {
        (x & (self.per_page - 1)) >= self.per_page - self.link_slots
    }

    /// `x` moved past a link slot (Linux bumps `hw_comp_cons` this way).
    #[inline]
    pub const fn skip_link(self, x: u16) -> u16 {
        if self.is_link(x) { x.wrapping_add(self.per_page - (x & (self.per_page - 1))) } else { x }
    }

    /// The next data index.
    #[inline]
    pub const fn next(self, x: u16) -> u16 {
        self.skip_link(x.wrapping_add(1))
    }

    /// Data slots from `cons` up to `prod` (both data indices). `per_page` is a power of
    /// two (every constructor's), so page numbers are shifts, not divisions.
    #[inline]
    pub const fn distance(self, prod: u16, cons: u16) -> usize {
        let raw = prod.wrapping_sub(cons) as usize;
        let shift = self.per_page.trailing_zeros();
        let pages = ((prod >> shift).wrapping_sub(cons >> shift)) as usize & ((65536 >> shift) - 1);
        raw - pages * self.link_slots as usize
    }

    /// Byte offset of slot `s` inside the chain's pages.
    #[inline]
    pub const fn offset(self, s: usize) -> usize {
        s * self.entry
    }

    /// Byte offset of page `p`'s link entry.
    pub const fn link_offset(self, p: usize) -> usize {
        p * hw::BCM_PAGE_SIZE + (self.per_page - self.link_slots) as usize * self.entry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_skips_link_slots_like_linux() {
        let rx = Chain::rx_bd(2);
        assert_eq!(rx.next(509), 512);
        assert_eq!(rx.next(1021), 1024);
        assert_eq!(rx.slot(1024), 0);
        assert_eq!(rx.distance(512, 509), 1);
        assert_eq!(rx.distance(1027, 1021), 4);
        assert_eq!(rx.distance(2, 65533), 3, "across the u16 wrap: 65533, then 0 (past the link slots), 1, 2");
        let rcq = Chain::rcq(8);
        assert_eq!(rcq.next(62), 64);
        assert_eq!(rcq.skip_link(63), 64);
        assert_eq!(rcq.usable(), 504);
        let tx = Chain::tx(1);
        assert_eq!(tx.next(254), 256);
        assert_eq!(tx.distance(256 + 3, 250), 8);
        assert_eq!(tx.link_offset(0), 255 * 16);
        assert!(!Chain::tx(3).valid() && Chain::rx_bd(8).valid());
    }
}

/// TX BDs as the two little-endian 64-bit words the driver stores (composed in registers,
/// stored with [`nicqual_pci::DmaMemory::write_words`]; see the layout tests).
pub mod bd {
    /// `eth_tx_start_bd`: address, then `nbd`, `nbytes`, `vlan_or_ethertype`, `bd_flags`,
    /// `general_data`.
    #[inline(always)]
    pub fn start(addr: u64, nbd: u16, nbytes: u16, bd_flags: u8, general_data: u8) -> [u64; 2] {
        [addr, u64::from(nbd) | u64::from(nbytes) << 16 | u64::from(bd_flags) << 48 | u64::from(general_data) << 56]
    }

    /// `eth_tx_parse_bd_e2`: six zero u16s (no MACs, no tunnel), then `parsing_data`.
    #[inline(always)]
    pub fn parse_e2(parsing_data: u32) -> [u64; 2] {
        [0, u64::from(parsing_data) << 32]
    }

    /// `eth_tx_bd` (data BD): address, `total_pkt_bytes`, `nbytes`.
    #[inline(always)]
    pub fn data(addr: u64, total_pkt_bytes: u16, nbytes: u16) -> [u64; 2] {
        [addr, u64::from(total_pkt_bytes) | u64::from(nbytes) << 16]
    }
}

#[cfg(test)]
mod bd_layout_tests {
    use super::bd;
    use nicqual_hw::bnx2x as hw;
    use zerocopy::IntoBytes;

    fn bytes(w: [u64; 2]) -> Vec<u8> {
        w.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn composed_bds_match_the_struct_layouts() {
        let mut s = hw::TxStartBd { bd_flags: 0x90, general_data: 0x41, ..Default::default() };
        s.addr_lo.set(0x89AB_CDEF);
        s.addr_hi.set(0x0123_4567);
        s.nbd.set(3);
        s.nbytes.set(1514);
        assert_eq!(bytes(bd::start(0x0123_4567_89AB_CDEF, 3, 1514, 0x90, 0x41)), s.as_bytes());
        let mut p = hw::TxParseBdE2::default();
        p.parsing_data.set(0xDEAD_BEEF);
        assert_eq!(bytes(bd::parse_e2(0xDEAD_BEEF)), p.as_bytes());
        let mut d = hw::TxDataBd::default();
        d.addr_lo.set(0x1000);
        d.addr_hi.set(2);
        d.total_pkt_bytes.set(9000);
        d.nbytes.set(4096);
        assert_eq!(bytes(bd::data(0x2_0000_1000, 9000, 4096)), d.as_bytes());
    }
}
