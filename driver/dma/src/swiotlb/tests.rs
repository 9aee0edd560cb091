use super::*;
use proptest::prelude::*;

fn dev() -> DeviceName {
    DeviceName::new("bnx2x", "0000:04:00.0")
}

fn pool(generation: Generation, nslabs: usize) -> Swiotlb {
    Swiotlb::new(SwiotlbConfig::with_slots(generation, nslabs))
}

fn map_n(p: &mut Swiotlb, size: usize) -> Result<TlbMapping, SwiotlbError> {
    p.alloc(&dev(), 0x10_0000, size, DmaDirection::FromDevice, MapKind::Single, 0)
}

const ALL: [Generation; 3] = [Generation::ClassicXen, Generation::Legacy, Generation::Modern];

#[test]
fn slot_counts_per_mapping_size() {
    // (bytes, slots): 1500/1920 = MTU 1500 buffers, 9018/9094/9472 = MTU 9000 rx buffers of
    // enic / old bnx2x / bnx2x, 25158 and 33302 from the field log, 256 KiB = one segment.
    let table = [
        (1, 1),
        (1500, 1),
        (1920, 1),
        (2048, 1),
        (2049, 2),
        (4096, 2),
        (9018, 5),
        (9094, 5),
        (9472, 5),
        (25158, 13),
        (33302, 17),
        (65536, 32),
        (MAX_MAPPING_SIZE, 128),
    ];
    for g in ALL {
        for (size, slots) in table {
            let mut p = pool(g, 256);
            let m = map_n(&mut p, size).unwrap();
            assert_eq!((m.nslots, p.stats().used), (slots, slots), "{g:?} {size} bytes");
            assert_eq!(p.free(m.tlb_addr).unwrap(), slots);
            assert_eq!(p.stats().used, 0);
        }
        // One byte more than a segment can never be mapped.
        let mut p = pool(g, 256);
        assert!(matches!(map_n(&mut p, MAX_MAPPING_SIZE + 1), Err(SwiotlbError::Full { nslots: 129, .. })));
        assert!(matches!(map_n(&mut p, 0), Err(SwiotlbError::ZeroLength { .. })));
    }
}

#[test]
fn no_mapping_crosses_a_segment_even_with_free_slots_in_total() {
    for g in ALL {
        let mut p = pool(g, 256);
        let a = map_n(&mut p, 100 * IO_TLB_SIZE).unwrap();
        let b = map_n(&mut p, 100 * IO_TLB_SIZE).unwrap();
        assert_eq!((a.index, b.index), (0, 128), "{g:?}: the second run may not start at 100");
        // 56 slots are free, but only in two 28-slot runs: a 29-slot request is refused.
        assert_eq!(p.nslabs_free(), 56);
        match map_n(&mut p, 29 * IO_TLB_SIZE) {
            Err(SwiotlbError::Full { largest_free_run, used, total, .. }) => {
                assert_eq!((largest_free_run, used, total), (28, 200, 256))
            }
            other => panic!("{g:?}: expected Full, got {other:?}"),
        }
        // Next-fit: the search resumes after the last allocation.
        assert_eq!(map_n(&mut p, 28 * IO_TLB_SIZE).unwrap().index, 228);
        assert_eq!(map_n(&mut p, 28 * IO_TLB_SIZE).unwrap().index, 100);
    }
}

#[test]
fn page_sized_mappings_are_page_aligned_per_generation() {
    // 6.x aligns from PAGE_SIZE, the old allocator only above it.
    for (g, aligned_4096) in [(Generation::Modern, true), (Generation::Legacy, false), (Generation::ClassicXen, false)]
    {
        let mut p = pool(g, 256);
        assert_eq!(map_n(&mut p, 100).unwrap().index, 0);
        let m = map_n(&mut p, PAGE_SIZE).unwrap();
        assert_eq!(m.index, if aligned_4096 { 2 } else { 1 }, "{g:?}");
        let m = map_n(&mut p, PAGE_SIZE + 1).unwrap();
        assert_eq!(m.tlb_addr % PAGE_SIZE as u64, 0, "{g:?}: > PAGE_SIZE is page-aligned everywhere");
    }
}

#[test]
fn five_slot_page_aligned_maps_fit_21_per_segment() {
    for g in ALL {
        let mut p = pool(g, 128);
        let idx: Vec<usize> = std::iter::from_fn(|| map_n(&mut p, 9472).ok().map(|m| m.index)).collect();
        assert_eq!(idx.len(), 21, "{g:?}");
        assert!(idx.iter().enumerate().all(|(k, &i)| i == 6 * k), "{g:?}: {idx:?}");
        assert_eq!(p.stats().used, 105);
    }
    // The default 64 MiB pool: 256 segments x 21 = 5376 concurrent 9472-byte maps.
    let mut p = Swiotlb::new(SwiotlbConfig::default_for(Generation::Legacy));
    let n = std::iter::from_fn(|| map_n(&mut p, 9472).ok()).count();
    assert_eq!(n, 5376);
}

#[test]
fn search_is_next_fit_and_wraps_to_the_start() {
    for g in ALL {
        let mut p = pool(g, 256);
        let a = map_n(&mut p, 120 * IO_TLB_SIZE).unwrap();
        let b = map_n(&mut p, 120 * IO_TLB_SIZE).unwrap();
        assert_eq!((a.index, b.index), (0, 128));
        p.free(a.tlb_addr).unwrap();
        // Next-fit: a small map goes after the last allocation, not into the hole at 0.
        assert_eq!(map_n(&mut p, 100).unwrap().index, 248, "{g:?}");
        // 100 slots do not fit at 249..256: the search wraps around to slot 0.
        assert_eq!(map_n(&mut p, 100 * IO_TLB_SIZE).unwrap().index, 0, "{g:?}");
    }
}

#[test]
fn modern_areas_start_at_the_cpu_and_skip_full_areas() {
    let cfg = SwiotlbConfig::with_slots(Generation::Modern, 256).areas(2);
    assert_eq!(cfg.nareas, 2);
    let mut p = Swiotlb::new(cfg);
    let on = |p: &mut Swiotlb, size, cpu| p.alloc(&dev(), 0, size, DmaDirection::ToDevice, MapKind::Single, cpu);
    assert_eq!(on(&mut p, 100, 1).unwrap().index, 128, "cpu 1 starts in area 1");
    assert_eq!(on(&mut p, 100 * IO_TLB_SIZE, 0).unwrap().index, 0);
    // Area 0 has 28 unused slots, so a 40-slot map from cpu 0 goes to area 1 (page-aligned:
    // slot 129 is skipped).
    assert_eq!(on(&mut p, 40 * IO_TLB_SIZE, 0).unwrap().index, 130);
    // Too few areas for the pool: limited to one segment each.
    assert_eq!(SwiotlbConfig::with_slots(Generation::Modern, 256).areas(8).nareas, 2);
    assert_eq!(SwiotlbConfig::with_slots(Generation::Legacy, 256).areas(8).nareas, 1);
}

#[test]
fn failure_messages_are_the_kernels_words() {
    let d1 = DeviceName::new("bnx2x", "0000:04:00.1");
    // Classic Xen (the field kernel): 33302 bytes on transmit would have panicked, 25158
    // bytes got the overflow buffer.
    let mut p = pool(Generation::ClassicXen, 128);
    map_n(&mut p, 127 * IO_TLB_SIZE).unwrap();
    let e = p.alloc(&d1, 0, 33302, DmaDirection::ToDevice, MapKind::Single, 0).unwrap_err();
    let SwiotlbError::Full { action, .. } = e else { panic!("{e:?}") };
    assert_eq!(action, OldKernelAction::Panic { message: "DMA: Random memory could be DMA read".into() });
    let e = p.alloc(&d1, 0, 25158, DmaDirection::ToDevice, MapKind::Single, 0).unwrap_err();
    assert!(matches!(e, SwiotlbError::Full { action: OldKernelAction::OverflowBuffer, .. }));
    let e = p.alloc(&d1, 0, 40000, DmaDirection::FromDevice, MapKind::Sg, 0).unwrap_err();
    assert!(matches!(e, SwiotlbError::Full { action: OldKernelAction::OverflowBuffer, .. }), "sg never panicked");
    assert_eq!(
        p.log(),
        [
            "PCI-DMA: Out of SW-IOMMU space for 33302 bytes at device 0000:04:00.1",
            "PCI-DMA: Out of SW-IOMMU space for 25158 bytes at device 0000:04:00.1",
            "PCI-DMA: Out of SW-IOMMU space for 40000 bytes at device 0000:04:00.1",
        ]
    );
    assert_eq!(panic_message(DmaDirection::FromDevice), "DMA: Random memory could be DMA written");
    assert_eq!(panic_message(DmaDirection::Bidirectional), "DMA: Random memory could be DMA accessed");

    let mut p = pool(Generation::Legacy, 128);
    map_n(&mut p, 127 * IO_TLB_SIZE).unwrap();
    let _ = map_n(&mut p, 9472);
    assert_eq!(
        p.log(),
        [
            "bnx2x 0000:04:00.0: swiotlb buffer is full (sz: 9472 bytes)",
            "DMA: Out of SW-IOMMU space for 9472 bytes at device 0000:04:00.0",
        ]
    );

    let mut p = pool(Generation::Modern, 128);
    map_n(&mut p, 126 * IO_TLB_SIZE).unwrap();
    let e = map_n(&mut p, 9472).unwrap_err();
    assert!(matches!(e, SwiotlbError::Full { action: OldKernelAction::MappingError, nslots: 5, .. }));
    assert_eq!(
        p.log(),
        ["bnx2x 0000:04:00.0: swiotlb buffer is full (sz: 9472 bytes), total 128 (slots), used 126 (slots)"]
    );
    assert_eq!(p.stats().failures, 1);
}

#[test]
fn full_pool_overflow_and_panic_rule_at_the_32_kib_boundary() {
    // lib/swiotlb.c swiotlb_full(): `size <= io_tlb_overflow || !do_panic` returns the
    // overflow buffer; swiotlb_map_page passes do_panic = 1, swiotlb_map_sg 0.
    for generation in [Generation::ClassicXen, Generation::Legacy] {
        let mut p = pool(generation, 128);
        map_n(&mut p, 127 * IO_TLB_SIZE).unwrap();
        let full = |p: &mut Swiotlb, size, kind| match p.alloc(&dev(), 0, size, DmaDirection::ToDevice, kind, 0) {
            Err(SwiotlbError::Full { action, .. }) => action,
            other => panic!("{generation:?} {size}: {other:?}"),
        };
        assert_eq!(full(&mut p, OVERFLOW_BYTES, MapKind::Single), OldKernelAction::OverflowBuffer);
        assert!(matches!(full(&mut p, OVERFLOW_BYTES + 1, MapKind::Single), OldKernelAction::Panic { .. }));
        assert_eq!(full(&mut p, OVERFLOW_BYTES + 1, MapKind::Sg), OldKernelAction::OverflowBuffer);
        let s = p.stats();
        assert_eq!((s.failures, s.overflow_handouts, s.would_panic), (3, 2, 1), "{generation:?}");
        // Nothing was taken from the pool by a failure.
        assert_eq!((s.used, s.live_mappings), (127, 1));
    }
    // 6.x: no overflow buffer, no panic: the caller gets DMA_MAPPING_ERROR.
    let mut p = pool(Generation::Modern, 128);
    map_n(&mut p, 127 * IO_TLB_SIZE).unwrap();
    let e = p.alloc(&dev(), 0, OVERFLOW_BYTES + 1, DmaDirection::ToDevice, MapKind::Single, 0).unwrap_err();
    assert!(matches!(e, SwiotlbError::Full { action: OldKernelAction::MappingError, .. }));
    assert_eq!((p.stats().overflow_handouts, p.stats().would_panic), (0, 0));
}

#[test]
fn boot_line_and_cmdline_units() {
    let p = Swiotlb::new(SwiotlbConfig::default_for(Generation::Modern));
    assert_eq!(p.boot_line(), "software IO TLB: mapped [mem 0x0000000040000000-0x0000000043ffffff] (64MB)");
    let c = |g, s| SwiotlbConfig::parse_cmdline(g, s).map(|c| (c.nslabs, c.nareas));
    assert_eq!(c(Generation::ClassicXen, "128"), Ok((65536, 1)), "classic Xen: megabytes");
    assert_eq!(c(Generation::ClassicXen, "64,force"), Ok((32768, 1)));
    assert_eq!(c(Generation::Legacy, "65536"), Ok((65536, 1)), "mainline: slots");
    assert_eq!(c(Generation::Modern, "1000"), Ok((1024, 1)), "rounded up to whole segments");
    assert_eq!(c(Generation::Modern, "65536,4"), Ok((65536, 4)));
    assert_eq!(c(Generation::Modern, "65536,3"), Ok((65536, 4)), "areas round up to a power of two");
    assert!(c(Generation::Legacy, "lots").is_err());
    assert!(c(Generation::Legacy, "0").is_err());
    assert!(c(Generation::Legacy, "128,2").is_err());
}

#[test]
fn bounce_copies_go_the_right_way() {
    for g in ALL {
        let mut p = pool(g, 128);
        let mut cpu: Vec<u8> = (0..100u8).collect();
        // To-device: copied in on map; unmap leaves the CPU buffer alone.
        let m = p.map(&dev(), &cpu, 0, 0x1000, 100, DmaDirection::ToDevice, MapKind::Single, 0).unwrap();
        let mut seen = vec![0u8; 100];
        assert!(p.store().load(m.index * IO_TLB_SIZE, &mut seen));
        assert_eq!(seen, cpu, "{g:?}");
        p.store_mut().store(m.index * IO_TLB_SIZE, &[0xEE; 100]);
        // sync_for_device re-copies CPU data in.
        p.sync_for_device(m.tlb_addr, &cpu, 0, 100, DmaDirection::ToDevice).unwrap();
        assert!(p.store().load(m.index * IO_TLB_SIZE, &mut seen));
        assert_eq!(seen, cpu);
        p.store_mut().store(m.index * IO_TLB_SIZE, &[0xEE; 100]);
        p.unmap(m.tlb_addr, &mut cpu, 0, 100, DmaDirection::ToDevice).unwrap();
        assert_eq!(cpu[5], 5, "to-device unmap copies nothing back");

        // From-device: 6.x pre-fills the bounce buffer on map, old kernels do not.
        let m = p.map(&dev(), &cpu, 0, 0x1000, 100, DmaDirection::FromDevice, MapKind::Single, 0).unwrap();
        assert!(p.store().load(m.index * IO_TLB_SIZE, &mut seen));
        assert_eq!(seen == cpu, g == Generation::Modern, "{g:?}");
        // The device writes the bounce buffer; sync_for_cpu and unmap bring it back.
        p.store_mut().store(m.index * IO_TLB_SIZE, &[0x5A; 100]);
        p.sync_for_cpu(m.tlb_addr, &mut cpu, 0, 100, DmaDirection::FromDevice).unwrap();
        assert_eq!(cpu, vec![0x5A; 100]);
        p.store_mut().store(m.index * IO_TLB_SIZE, &[0xA5; 100]);
        p.unmap(m.tlb_addr, &mut cpu, 0, 100, DmaDirection::FromDevice).unwrap();
        assert_eq!(cpu, vec![0xA5; 100]);
        assert_eq!(p.stats().live_mappings, 0);
    }
}

#[test]
fn misuse_is_a_typed_error() {
    let mut p = pool(Generation::Modern, 128);
    let mut cpu = vec![0u8; 64];
    assert!(matches!(
        p.map(&dev(), &cpu, 10, 0, 64, DmaDirection::ToDevice, MapKind::Single, 0),
        Err(SwiotlbError::ShortBuffer { .. })
    ));
    assert_eq!(p.stats().used, 0, "a refused map holds no slots");
    let m = p.map(&dev(), &cpu, 0, 0, 64, DmaDirection::ToDevice, MapKind::Single, 0).unwrap();
    assert!(matches!(
        p.sync_for_cpu(m.tlb_addr, &mut cpu, 0, 4096, DmaDirection::FromDevice),
        Err(SwiotlbError::SizeMismatch { alloc_size: 64, .. })
    ));
    assert!(matches!(p.free(m.tlb_addr + IO_TLB_SIZE as u64), Err(SwiotlbError::NotMapped { .. })));
    assert!(matches!(p.free(0xdead_beef), Err(SwiotlbError::NotMapped { .. })));
    assert_eq!(p.orig_addr(m.tlb_addr + 7), Some(7));
    p.free(m.tlb_addr).unwrap();
    assert_eq!(p.orig_addr(m.tlb_addr), None);
    assert!(matches!(p.free(m.tlb_addr), Err(SwiotlbError::NotMapped { .. })), "double unmap");
}

impl<S: ByteStore> Swiotlb<S> {
    fn nslabs_free(&self) -> usize {
        self.cfg.nslabs - self.stats.used
    }

    /// Every invariant of the slot bookkeeping; returns the live mappings (index, nslots).
    fn check_invariants(&self) -> Vec<(usize, usize)> {
        let n = self.cfg.nslabs;
        let mut live = Vec::new();
        let mut in_use = vec![false; n];
        let mut i = 0;
        while i < n {
            if self.slots[i].head {
                let k = nr_slots(self.slots[i].alloc_size as usize);
                assert!(k >= 1 && i + k <= n);
                assert_eq!(i / IO_TLB_SEGSIZE, (i + k - 1) / IO_TLB_SEGSIZE, "mapping at {i} crosses a segment");
                assert!((i..i + k).all(|j| self.free_run_at(j) == 0), "mapping at {i} has free slots");
                assert!((i + 1..i + k).all(|j| !self.slots[j].head), "mappings overlap at {i}");
                in_use[i..i + k].fill(true);
                live.push((i, k));
                i += k;
            } else {
                i += 1;
            }
        }
        let used: usize = live.iter().map(|l| l.1).sum();
        assert_eq!(used, self.stats.used);
        assert_eq!(live.len(), self.stats.live_mappings);
        assert_eq!(self.areas.iter().map(|a| a.used).sum::<usize>(), used);
        // list[] (derived from the in-use masks) is exactly the free run to the segment end.
        let mut list = vec![0usize; n];
        for j in (0..n).rev() {
            let next = if (j + 1) % IO_TLB_SEGSIZE != 0 && j + 1 < n { list[j + 1] } else { 0 };
            list[j] = if in_use[j] { 0 } else { next + 1 };
            assert_eq!(self.free_run_at(j), list[j], "list[{j}]");
        }
        assert_eq!(self.largest_free_run(), list.iter().copied().max().unwrap_or(0));
        live
    }

    /// The slot `alloc` must pick for `size` bytes from `cpu`, found the way the kernels find
    /// it, one candidate at a time; `areas` (a copy of the pool's) is updated as the search
    /// must update the pool's. The reference the skipping search is checked against.
    fn reference_find(&self, areas: &mut [Area], size: usize, cpu: usize) -> Option<usize> {
        let nslots = nr_slots(size);
        if nslots > IO_TLB_SEGSIZE {
            None
        } else if self.cfg.generation.old_allocator() {
            self.reference_find_old(areas, size, nslots)
        } else {
            let n = self.cfg.nareas;
            let start = cpu & (n - 1);
            (0..n).find_map(|k| self.reference_find_in_area(areas, (start + k) % n, size, nslots))
        }
    }

    /// `lib/swiotlb.c` `map_single`'s loop.
    fn reference_find_old(&self, areas: &mut [Area], size: usize, nslots: usize) -> Option<usize> {
        let nslabs = self.cfg.nslabs;
        let stride = if size > PAGE_SIZE { PAGE_SIZE / IO_TLB_SIZE } else { 1 };
        let mut index = areas[0].index.div_ceil(stride) * stride;
        if index >= nslabs {
            index = 0;
        }
        let wrap = index;
        loop {
            while self.crosses_boundary(index, nslots) {
                index += stride;
                if index >= nslabs {
                    index = 0;
                }
                if index == wrap {
                    return None;
                }
            }
            if self.free_run_at(index) >= nslots {
                areas[0].index = if index + nslots < nslabs { index + nslots } else { 0 };
                return Some(index);
            }
            index += stride;
            if index >= nslabs {
                index = 0;
            }
            if index == wrap {
                return None;
            }
        }
    }

    /// 6.x `swiotlb_search_pool_area`'s loop.
    fn reference_find_in_area(
        &self,
        areas: &mut [Area],
        area_index: usize,
        size: usize,
        nslots: usize,
    ) -> Option<usize> {
        let area_nslabs = self.area_nslabs;
        if nslots > area_nslabs - areas[area_index].used {
            return None;
        }
        let align_mask: u64 = if size >= PAGE_SIZE { (PAGE_SIZE - 1) as u64 } else { 0 } | (IO_TLB_SIZE - 1) as u64;
        let stride = ((align_mask >> IO_TLB_SHIFT) + 1) as usize;
        let wrap = |i: usize| if i >= area_nslabs { 0 } else { i };
        let slot_base = area_index * area_nslabs;
        let mut index = areas[area_index].index;
        let mut checked = 0;
        while checked < area_nslabs {
            let slot_index = slot_base + index;
            if self.slot_addr(slot_index) & align_mask != 0 {
                index = wrap(index + 1);
                checked += 1;
                continue;
            }
            if !self.crosses_boundary(slot_index, nslots) && self.free_run_at(slot_index) >= nslots {
                areas[area_index].index = wrap(index + nslots);
                return Some(slot_index);
            }
            index = wrap(index + stride);
            checked += stride;
        }
        None
    }

    /// Allocate through `alloc` and check the slot and the remembered indexes against the
    /// reference search; returns the mapping.
    fn alloc_checked(&mut self, size: usize, cpu: usize) -> Result<Option<TlbMapping>, String> {
        let mut want_areas = self.areas.clone();
        let want = self.reference_find(&mut want_areas, size, cpu);
        let got = match self.alloc(&dev(), 0, size, DmaDirection::ToDevice, MapKind::Single, cpu) {
            Ok(m) => Some(m),
            Err(SwiotlbError::Full { .. }) => None,
            Err(e) => return Err(e.to_string()),
        };
        let indexes = |a: &[Area]| a.iter().map(|a| a.index).collect::<Vec<_>>();
        if got.map(|m| m.index) != want || indexes(&self.areas) != indexes(&want_areas) {
            return Err(format!(
                "{size} bytes from cpu {cpu}: got slot {:?}, kernel search {want:?}; area indexes {:?}, kernel {:?}",
                got.map(|m| m.index),
                indexes(&self.areas),
                indexes(&want_areas)
            ));
        }
        Ok(got)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn slot_accounting_stays_exact(
        gen_pick in 0usize..3,
        nareas in 1usize..4,
        ops in proptest::collection::vec((any::<bool>(), 1usize..40_000, any::<u16>()), 1..300),
    ) {
        let g = ALL[gen_pick];
        let mut p = Swiotlb::new(SwiotlbConfig::with_slots(g, 512).areas(nareas));
        let mut live: Vec<TlbMapping> = Vec::new();
        for (map, size, pick) in ops {
            if map || live.is_empty() {
                let before = p.stats().used;
                match p.alloc(&dev(), 0, size, DmaDirection::ToDevice, MapKind::Single, pick as usize) {
                    Ok(m) => {
                        prop_assert_eq!(p.stats().used, before + nr_slots(size));
                        let page_aligned = match g { Generation::Modern => size >= PAGE_SIZE, _ => size > PAGE_SIZE };
                        if page_aligned { prop_assert_eq!(m.tlb_addr % PAGE_SIZE as u64, 0); }
                        live.push(m);
                    }
                    Err(SwiotlbError::Full { used, .. }) => prop_assert_eq!(used, before),
                    Err(e) => prop_assert!(false, "{e}"),
                }
            } else {
                let m = live.swap_remove(pick as usize % live.len());
                prop_assert_eq!(p.free(m.tlb_addr).unwrap(), m.nslots);
            }
            let seen = p.check_invariants();
            prop_assert_eq!(seen.len(), live.len());
            prop_assert!(p.stats().used_hiwater >= p.stats().used);
        }
        for m in live.drain(..) {
            p.free(m.tlb_addr).unwrap();
        }
        p.check_invariants();
        prop_assert_eq!(p.stats().used, 0);
        prop_assert_eq!(p.largest_free_run(), IO_TLB_SEGSIZE);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    /// The skipping search picks the slot the kernels' loops pick, fails where they fail and
    /// leaves the same remembered index, after every step of random allocate/release
    /// sequences on small, mostly full pools: both allocator generations, 1–3 areas (areas
    /// need not be whole segments), pools whose start is page aligned or not, device segment
    /// boundaries down to 16 KiB, and (hand-built configurations) pools that are not whole
    /// segments.
    #[test]
    fn fast_search_picks_the_kernels_slot(
        gen_pick in 0usize..3,
        nareas in 1usize..4,
        segments in 1usize..7,
        trim in prop_oneof![3 => Just(0usize), 1 => 1usize..127],
        start_pick in 0usize..3,
        boundary_pick in 0usize..3,
        ops in proptest::collection::vec((0u8..4, 0u8..4, any::<u32>(), any::<u16>()), 1..400),
    ) {
        let g = ALL[gen_pick];
        let base = SwiotlbConfig::with_slots(g, segments * IO_TLB_SEGSIZE).areas(nareas);
        let cfg = SwiotlbConfig {
            nslabs: base.nslabs - trim,
            start: [1 << 30, (1 << 30) + 2048, (1 << 30) + 7 * 2048][start_pick],
            seg_boundary: [DEFAULT_SEG_BOUNDARY, 64 << 10, 16 << 10][boundary_pick],
            ..base
        };
        let mut p = Swiotlb::new(cfg);
        let mut live: Vec<TlbMapping> = Vec::new();
        for (step, (op, class, raw, pick)) in ops.into_iter().enumerate() {
            if op < 3 || live.is_empty() {
                // Mostly small and jumbo-sized maps, some up to a segment and one byte past it.
                let size = 1 + raw as usize % [2 * PAGE_SIZE, 12 * 1024, 40_000, MAX_MAPPING_SIZE + 1][class as usize];
                match p.alloc_checked(size, pick as usize) {
                    Ok(Some(m)) => live.push(m),
                    Ok(None) => {}
                    Err(e) => prop_assert!(false, "step {}: {}", step, e),
                }
            } else {
                let m = live.swap_remove(pick as usize % live.len());
                prop_assert_eq!(p.free(m.tlb_addr).unwrap(), m.nslots);
            }
            prop_assert_eq!(p.check_invariants().len(), live.len());
        }
    }
}

/// The same check on the bench's pools: 64 MiB, fragmented by a seeded mix of 1–17-slot
/// mappings to 90 % occupancy, then churned with the bench's sizes and random releases.
#[test]
fn fast_search_picks_the_kernels_slot_in_a_fragmented_64_mib_pool() {
    use rand::{Rng, SeedableRng};
    for (g, nareas) in [(Generation::ClassicXen, 1), (Generation::Modern, 1), (Generation::Modern, 4)] {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(90);
        let mut p = Swiotlb::with_store(SwiotlbConfig::default_for(g).areas(nareas), Vec::new());
        let mut live = Vec::new();
        let mut checked = 0;
        for step in 0..40_000 {
            let fill = p.stats().used * 10 < p.config().nslabs * 9;
            if fill || rng.random_range(0..2) == 0 {
                let size = match rng.random_range(0..4) {
                    0 => 1500,
                    1 => 9472,
                    _ => rng.random_range(1..=17usize) * 2048 - rng.random_range(0..2048),
                };
                match p.alloc_checked(size, rng.random_range(0..8)) {
                    Ok(Some(m)) => live.push(m.tlb_addr),
                    Ok(None) => {}
                    Err(e) => panic!("{g:?} {nareas} areas, step {step}: {e}"),
                }
                checked += 1;
            } else if !live.is_empty() {
                let a = live.swap_remove(rng.random_range(0..live.len()));
                p.free(a).unwrap();
            }
        }
        assert!(checked > 20_000, "{checked}");
        p.check_invariants();
    }
}

#[test]
fn a_hand_built_config_with_zero_areas_gets_one() {
    let cfg = SwiotlbConfig { nareas: 0, ..SwiotlbConfig::with_slots(Generation::Modern, 256) };
    let mut p = Swiotlb::new(cfg);
    assert_eq!(p.config().nareas, 1);
    let m = map_n(&mut p, 9472).unwrap();
    assert_eq!((m.index, m.nslots, p.stats().used), (0, 5, 5));
}
