use super::*;
use nicqual_dma::memory::HostMemory;
use nicqual_dma::swiotlb::{DeviceName, DmaDirection, Generation, MapKind, Swiotlb};

/// Worst-case simulation, independent of the predictor's arithmetic: allocate every buffer
/// the configuration holds at once from the memory model (kmalloc-style power-of-two
/// alignment), and bounce through a real [`Swiotlb`] every one the memory model says must
/// bounce. Returns true if any mapping failed.
fn simulate_worst_case(cfg: &Bnx2xDmaConfig, pool: &SwiotlbConfig) -> bool {
    let pages = 1 << 20;
    let mut mem = match cfg.memory {
        MemoryKind::Native => HostMemory::native(pages),
        MemoryKind::XenPv => HostMemory::xen_pv(pages, 1, 11),
    };
    let mut tlb = Swiotlb::new(*pool);
    let dev = DeviceName::new("bnx2x", "0000:04:00.0");
    let mut buffers: Vec<(u64, usize, usize)> = Vec::new(); // (count, size, offset)
    let rx = hw::rx_buf_size(cfg.mtu) as usize;
    buffers.push(((cfg.ports * cfg.rx_bds_per_port) as u64, rx, hw::NET_SKB_PAD as usize));
    if cfg.gro && hw::mtu_allows_gro(cfg.mtu) {
        buffers.push(((cfg.ports * cfg.rx_queues * hw::MAX_AGG_QS as u32) as u64, rx, hw::NET_SKB_PAD as usize));
        buffers.push(((cfg.ports * cfg.rx_queues * hw::MAX_RX_SGE_CNT as u32) as u64, 4096, 0));
    }
    let stop = hw::MAX_SKB_FRAGS + 4;
    let tx_pkts = (cfg.ports * cfg.tx_queues * (cfg.tx_bds_per_queue.saturating_sub(stop) / 2)) as u64;
    // Transmit skbs are the same with GRO on or off.
    buffers.push((tx_pkts, cfg.tx_linear_bytes, 64));
    for (count, size, off) in buffers {
        let align = ((size + off) as u64).next_power_of_two().max(4096);
        for _ in 0..count {
            let phys = mem.alloc((size + off) as u64, align).expect("model memory is large enough");
            if mem.needs_bounce(phys + off as u64, size as u64, u64::MAX)
                && tlb.alloc(&dev, phys, size, DmaDirection::FromDevice, MapKind::Single, 0).is_err()
            {
                return true;
            }
        }
    }
    false
}

fn row(f: impl FnOnce(&mut Bnx2xDmaConfig)) -> Bnx2xDmaConfig {
    let mut c = Bnx2xDmaConfig::field();
    f(&mut c);
    c
}

#[test]
fn predictor_agrees_with_the_simulation() {
    let classic = |mib| SwiotlbConfig::with_mib(Generation::ClassicXen, mib);
    let table: Vec<(&str, Bnx2xDmaConfig, SwiotlbConfig, bool)> = vec![
        ("field: 2 ports, MTU 9000, GRO off, Xen, 64 MiB", Bnx2xDmaConfig::field(), classic(64), true),
        ("field with swiotlb=128", Bnx2xDmaConfig::field(), classic(128), true),
        ("GRO on, MTU 9000, 2 ports, 64 MiB (rx still bounces)", row(|c| c.gro = true), classic(64), true),
        // GRO cannot turn TPA on at MTU 9000 and does not reshape transmit skbs: the same
        // demand as GRO off.
        ("GRO on, MTU 9000, 1 port, 64 MiB", row(|c| (c.gro, c.ports) = (true, 1)), classic(64), true),
        ("GRO on, MTU 9000, 2 ports, 128 MiB", row(|c| c.gro = true), classic(128), true),
        (
            "GRO on, 2 ports x 2000 rx BDs, 64 MiB",
            row(|c| (c.gro, c.rx_bds_per_port) = (true, 2000)),
            classic(64),
            true,
        ),
        ("MTU 1500, GRO off, standard frames", row(|c| (c.mtu, c.tx_linear_bytes) = (1500, 1514)), classic(64), false),
        ("native memory, field config", row(|c| c.memory = MemoryKind::Native), classic(64), false),
        (
            "GRO off, 1 port, 400 tx BDs, 256 MiB",
            row(|c| (c.ports, c.tx_bds_per_queue) = (1, 400)),
            classic(256),
            false,
        ),
        (
            "6.x allocator, GRO on, 2 ports, 64 MiB",
            row(|c| c.gro = true),
            SwiotlbConfig::default_for(Generation::Modern),
            true,
        ),
        (
            "MTU 1500, GRO on, 4 rx queues, 1514-byte tx (TPA: page buffers only)",
            row(|c| (c.mtu, c.gro, c.rx_queues, c.tx_linear_bytes) = (1500, true, 4, 1514)),
            classic(32),
            false,
        ),
        (
            "MTU 4000, GRO off: 255 of 256 segments",
            row(|c| (c.mtu, c.tx_linear_bytes) = (4000, 1514)),
            classic(64),
            false,
        ),
        ("MTU 4000, GRO on: TPA buffers tip it over", row(|c| (c.mtu, c.gro) = (4000, true)), classic(64), true),
    ];
    assert!(table.len() >= 10);
    for (name, cfg, pool, expect) in table {
        let p = cfg.predict(&pool);
        let sim = simulate_worst_case(&cfg, &pool);
        assert_eq!(p.will_exhaust, sim, "{name}: predictor says {}, simulation {sim}", p.message);
        assert_eq!(sim, expect, "{name}: {}", p.message);
    }
}

#[test]
fn field_configuration_message_and_check() {
    let cfg = Bnx2xDmaConfig::field();
    let pool = SwiotlbConfig::default_for(Generation::ClassicXen);
    let p = cfg.predict(&pool);
    let rx = &p.classes[0];
    assert_eq!((rx.bouncing, rx.nslots, rx.slots_with_alignment, rx.per_segment), (8156, 5, 6, 21));
    assert_eq!(rx.segments, 389, "8156 / 21 rounded up");
    let tx = &p.classes[1];
    assert_eq!((tx.bouncing, tx.nslots, tx.per_segment), (2 * 2028, 17, 7));
    assert!(
        p.message.starts_with("8156 rx BDs x 5 slots (21 per segment) + 4056 tx linear skbs x 17 slots"),
        "{}",
        p.message
    );
    assert!(p.message.contains("> 256 segments (32768 slots, 64 MiB): will exhaust"), "{}", p.message);
    let r = preflight_check(&cfg, &pool);
    assert_eq!(r.result, CheckResult::Fail);
    assert!(!r.detail.contains("enable GRO"), "{}", r.detail);
    assert!(r.detail.contains("enabling GRO would not help: bnx2x_mtu_allows_gro(9000) is false"), "{}", r.detail);
    let ok = preflight_check(&row(|c| c.memory = MemoryKind::Native), &pool);
    assert_eq!(ok.result, CheckResult::Pass, "{}", ok.detail);
    assert!(ok.detail.contains("no bouncing mappings"), "{}", ok.detail);
}

#[test]
fn partial_scatter_scales_the_demand() {
    let pool = SwiotlbConfig::default_for(Generation::ClassicXen);
    // Rx rings only (no transmit in flight), a quarter of the buffers scattered.
    let cfg = row(|c| (c.gro, c.scattered_fraction, c.tx_bds_per_queue) = (true, 0.25, 0));
    let p = cfg.predict(&pool);
    assert_eq!(p.classes[0].bouncing, 2039);
    assert!(!p.will_exhaust, "{}", p.message);
    assert_eq!(p.margin_slots, (256 - 98) * 128);
}

/// The advice follows the predictor and the ring configuration: GRO is never advised (it
/// cannot turn TPA on at MTU 9000, and TPA only adds buffers where it can), and every change
/// that is advised fits when tried.
#[test]
fn advice_is_only_what_the_predictor_says_fits() {
    let pool = SwiotlbConfig::with_mib(Generation::ClassicXen, 64);
    let field = Bnx2xDmaConfig::field();
    // GRO on predicts the same as GRO off at MTU 9000 (TPA off, same mappings).
    let on = row(|c| c.gro = true);
    assert!(!on.tpa());
    assert_eq!(on.predict(&pool).demand_slots, field.predict(&pool).demand_slots);
    let a = advice(&field, &pool);
    assert!(a.iter().any(|x| x.contains("would not help")), "{a:?}");
    // MTU 1500 alone does not fit at worst (every transmit packet in flight bounced at
    // 33 KB): not advised; a smaller ring plus it would, but only single changes are tried.
    let mtu1500 = Bnx2xDmaConfig { mtu: 1500, ..field.clone() };
    assert!(mtu1500.predict(&pool).will_exhaust);
    assert!(!a.iter().any(|x| x.starts_with("MTU 1500")), "{a:?}");
    assert!(a.iter().any(|x| x == "a 256 MiB pool fits at worst"), "{a:?}");
    // Advice for a bigger pool names one the predictor says fits.
    for x in &a {
        if let Some(m) = x.strip_prefix("a ").and_then(|r| r.split(' ').next()).and_then(|m| m.parse::<usize>().ok()) {
            assert!(!field.predict(&SwiotlbConfig::with_mib(Generation::ClassicXen, m)).will_exhaust, "{x}");
        }
    }
    // Where GRO can turn TPA on (MTU 4000), TPA adds buffers: still not advised.
    let m4000 = row(|c| c.mtu = 4000);
    let with_tpa = Bnx2xDmaConfig { gro: true, ..m4000.clone() };
    assert!(with_tpa.tpa());
    assert!(with_tpa.predict(&pool).demand_slots >= m4000.predict(&pool).demand_slots);
    assert!(advice(&m4000, &pool).iter().all(|x| !x.contains("enable GRO")));
}
