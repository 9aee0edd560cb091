//! Fixed-size packet buffers carved out of one mapped DMA region (the ixy mempool idea).
//!
//! The pool owns `count` entries of `entry_size` bytes at a fixed offset of a [`DmaMemory`]
//! block that is mapped once at an IOVA. Free entries sit on a stack of entry ids that is
//! allocated once at construction: allocating and freeing a packet is a push or a pop, never
//! a heap allocation.
//!
//! A [`Packet`] is a handle (entry id + length), deliberately neither `Clone` nor `Copy`, so
//! an entry has one owner at a time: the pool, a ring slot, or the caller. Hand it back
//! with [`Mempool::free`]; a dropped handle leaks its entry (visible as
//! [`Mempool::available`] not returning to [`Mempool::capacity`]).

use crate::dma::DmaMemory;

/// Errors building a pool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("mempool of {count} x {entry_size} bytes at offset {offset:#x} does not fit the {len:#x}-byte DMA region")]
    DoesNotFit { count: u32, entry_size: usize, offset: usize, len: usize },
    #[error("mempool entry size {entry_size} is zero or not a multiple of 64")]
    BadEntrySize { entry_size: usize },
}

/// One packet buffer: the pool entry it lives in and the length of its data.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a packet must go back to its pool (Mempool::free) or into a ring"]
pub struct Packet {
    id: u32,
    len: u32,
}

impl Packet {
    #[inline]
    pub fn id(&self) -> u32 {
        self.id
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[derive(Debug)]
pub struct Mempool {
    mem: DmaMemory,
    base_off: usize,
    iova: u64,
    entry_size: usize,
    count: u32,
    free: Vec<u32>,
}

impl Mempool {
    /// A pool of `count` entries of `entry_size` bytes starting at byte `base_off` of `mem`,
    /// which the device sees at IOVA `iova` (the IOVA of entry 0).
    pub fn new(mem: DmaMemory, base_off: usize, iova: u64, entry_size: usize, count: u32) -> Result<Self, PoolError> {
        if entry_size == 0 || !entry_size.is_multiple_of(64) {
            return Err(PoolError::BadEntrySize { entry_size });
        }
        let fits = (count as usize)
            .checked_mul(entry_size)
            .and_then(|n| n.checked_add(base_off))
            .is_some_and(|end| end <= mem.len());
        if !fits || iova.checked_add(count as u64 * entry_size as u64).is_none() {
            return Err(PoolError::DoesNotFit { count, entry_size, offset: base_off, len: mem.len() });
        }
        // Stack order: entry 0 is handed out first.
        let free = (0..count).rev().collect();
        Ok(Mempool { mem, base_off, iova, entry_size, count, free })
    }

    #[inline]
    pub fn entry_size(&self) -> usize {
        self.entry_size
    }

    #[inline]
    pub fn capacity(&self) -> u32 {
        self.count
    }

    /// Entries on the free stack.
    #[inline]
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Take one entry (length 0), or `None` when the pool is empty.
    #[inline]
    pub fn alloc(&mut self) -> Option<Packet> {
        self.free.pop().map(|id| Packet { id, len: 0 })
    }

    /// Take up to `n` entries into `out`; returns how many.
    #[inline]
    pub fn alloc_batch(&mut self, out: &mut Vec<Packet>, n: usize) -> usize {
        let n = n.min(self.free.len());
        let keep = self.free.len() - n;
        out.extend(self.free.drain(keep..).rev().map(|id| Packet { id, len: 0 }));
        n
    }

    /// Return a packet's entry.
    #[inline]
    pub fn free(&mut self, p: Packet) {
        if p.id < self.count && self.free.len() < self.count as usize {
            self.free.push(p.id);
        }
    }

    /// Return an entry by id (ring slots hold ids, not handles).
    #[inline]
    pub fn free_id(&mut self, id: u32) {
        self.free(Packet { id, len: 0 });
    }

    /// Rebuild a handle for entry `id` holding `len` bytes (a ring slot handing its buffer
    /// to the caller). `None` for an id or length this pool cannot have produced.
    #[inline]
    pub fn handle(&self, id: u32, len: usize) -> Option<Packet> {
        (id < self.count && len <= self.entry_size).then_some(Packet { id, len: len as u32 })
    }

    /// IOVA of a packet's data (what goes into a descriptor).
    #[inline]
    pub fn iova(&self, p: &Packet) -> u64 {
        self.iova_of(p.id)
    }

    /// IOVA of entry `id`'s data.
    #[inline]
    pub fn iova_of(&self, id: u32) -> u64 {
        self.iova + id as u64 * self.entry_size as u64
    }

    fn off(&self, id: u32) -> usize {
        self.base_off + id as usize * self.entry_size
    }

    /// Set a packet's contents (and length). `None` if `data` does not fit an entry.
    #[inline]
    pub fn write(&self, p: &mut Packet, data: &[u8]) -> Option<()> {
        if data.len() > self.entry_size {
            return None;
        }
        self.mem.write_bulk(self.off(p.id), data)?;
        p.len = data.len() as u32;
        Some(())
    }

    /// Set a packet's length without touching its bytes (reusing what the entry holds).
    #[inline]
    pub fn set_len(&self, p: &mut Packet, len: usize) -> Option<()> {
        (len <= self.entry_size).then(|| p.len = len as u32)
    }

    /// Copy a packet's data into `buf` (resized to the packet length).
    #[inline]
    pub fn read_into(&self, p: &Packet, buf: &mut Vec<u8>) -> Option<()> {
        buf.resize(p.len(), 0);
        self.mem.read_bulk(self.off(p.id), buf)
    }

    /// A packet's data as a new Vec (tests, checks; not the hot path).
    #[inline]
    pub fn to_vec(&self, p: &Packet) -> Option<Vec<u8>> {
        let mut v = Vec::new();
        self.read_into(p, &mut v)?;
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: u32) -> Mempool {
        let mem = DmaMemory::alloc(n as usize * 2048).unwrap();
        Mempool::new(mem, 0, 0x1000_0000, 2048, n).unwrap()
    }

    #[test]
    fn alloc_free_is_a_stack_and_never_double_counts() {
        let mut p = pool(4);
        let a = p.alloc().unwrap();
        let b = p.alloc().unwrap();
        assert_eq!((a.id(), b.id()), (0, 1));
        assert_eq!(p.iova(&b), 0x1000_0000 + 2048);
        p.free(b);
        assert_eq!(p.alloc().unwrap().id(), 1, "last freed, first reused");
        let mut v = Vec::new();
        assert_eq!(p.alloc_batch(&mut v, 10), 2);
        assert!(p.alloc().is_none());
        for x in v {
            p.free(x);
        }
        p.free(a);
        assert_eq!(p.available(), 3, "one entry still out (leaked handle)");
    }

    #[test]
    fn data_round_trips_and_oversize_is_refused() {
        let mut p = pool(2);
        let mut a = p.alloc().unwrap();
        p.write(&mut a, b"frame bytes").unwrap();
        assert_eq!(p.to_vec(&a).unwrap(), b"frame bytes");
        assert!(p.write(&mut a, &[0u8; 2049]).is_none());
        assert!(p.handle(2, 10).is_none() && p.handle(1, 4096).is_none());
    }

    #[test]
    fn pool_must_fit_its_region() {
        let mem = DmaMemory::alloc(4096).unwrap();
        assert!(matches!(Mempool::new(mem.clone(), 0, 0, 2048, 3), Err(PoolError::DoesNotFit { .. })));
        assert!(matches!(Mempool::new(mem, 0, 0, 100, 1), Err(PoolError::BadEntrySize { .. })));
    }
}
