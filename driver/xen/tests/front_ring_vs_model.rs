//! Netfront's own shared-ring arithmetic ([`FrontRing`]) against the back-end model's
//! ([`SharedRing`]), on one simulated shared ring.
//!
//! The front end produces requests and consumes responses with `FrontRing` only; the back
//! end consumes requests and produces responses with `SharedRing` only. Every counter also
//! runs as an unwrapped `u64` next to its free-running `u32` index, started near
//! `u32::MAX` so the indices wrap: the `u64` view is the oracle for what each side must
//! see (requests the back end sees = requests pushed, responses the front end sees =
//! responses pushed, a notification exactly when the producer passes the other side's
//! event index), and the slots record who wrote what, so an overrun is seen as such.

use nicqual_model::ring::SharedRing;
use nicqual_xen::ring::FrontRing;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use std::collections::VecDeque;

fn config(cases: u32, seed: u64) -> ProptestConfig {
    ProptestConfig { cases, rng_seed: RngSeed::Fixed(seed), failure_persistence: None, ..ProptestConfig::default() }
}

/// What a slot of the shared ring holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Never written, or its response was consumed.
    Free,
    Request(u64),
    Response(u64),
}

/// One action of either side.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// Front end: produce up to n requests privately (`req_prod_pvt`).
    Produce(u32),
    /// Front end: publish `req_prod`, notify if the back end asked.
    PushRequests,
    /// Back end: consume up to n requests.
    Consume(u32),
    /// Back end: answer up to n consumed requests privately (`rsp_prod_pvt`).
    Respond(u32),
    /// Back end: publish `rsp_prod`, notify if the front end asked.
    PushResponses,
    /// Front end: consume up to n responses.
    TakeResponses(u32),
    /// Front end: ask to be woken by the next response (`rsp_event = rsp_cons + 1`).
    ArmFront,
    /// Back end: ask to be woken by the next request (`req_event = req_cons + 1`).
    ArmBack,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u32..300).prop_map(Op::Produce),
        2 => Just(Op::PushRequests),
        3 => (0u32..300).prop_map(Op::Consume),
        3 => (0u32..300).prop_map(Op::Respond),
        2 => Just(Op::PushResponses),
        3 => (0u32..300).prop_map(Op::TakeResponses),
        1 => Just(Op::ArmFront),
        1 => Just(Op::ArmBack),
    ]
}

/// A counter as both sides keep it (`u32`, free-running from `start`) and as the oracle
/// keeps it (`u64`, from 0).
#[derive(Debug, Clone, Copy)]
struct Ctr {
    abs: u64,
    start: u32,
}

impl Ctr {
    fn idx(self) -> u32 {
        self.start.wrapping_add(self.abs as u32)
    }
    fn bump(&mut self) {
        self.abs += 1;
    }
}

struct Sim {
    front: FrontRing,
    back: SharedRing,
    slots: Vec<Slot>,
    // Shared page.
    req_prod: Ctr,
    rsp_prod: Ctr,
    req_event: Ctr,
    rsp_event: Ctr,
    // Front end's private counters.
    req_prod_pvt: Ctr,
    rsp_cons: Ctr,
    // Back end's private counters.
    req_cons: Ctr,
    rsp_prod_pvt: Ctr,
    /// Requests the back end consumed and has not answered, oldest first.
    unanswered: VecDeque<u64>,
    /// Notifications sent (front to back, back to front).
    kicks: (u64, u64),
}

/// Did moving a producer from `old` to `new` pass `event` (in `(old, new]`)? The oracle,
/// on unwrapped counters.
fn crossed(old: Ctr, new: Ctr, event: Ctr) -> bool {
    old.abs < event.abs && event.abs <= new.abs
}

/// Publish a producer (`*shared = private`, RING_PUSH_*_AND_CHECK_NOTIFY): both sides'
/// `need_notify` must agree with each other and with the oracle. Returns whether to notify.
fn push(what: &str, shared: &mut Ctr, private: Ctr, event: Ctr) -> Result<bool, String> {
    let (old, new) = (*shared, private);
    *shared = new;
    let f = FrontRing::need_notify(old.idx(), new.idx(), event.idx());
    let m = SharedRing::need_notify(old.idx(), new.idx(), event.idx());
    let want = crossed(old, new, event);
    if f != m || f != want {
        return Err(format!("{what} notify {old:?}->{new:?} past {event:?}: front end {f}, model {m}, truth {want}"));
    }
    Ok(f)
}

impl Sim {
    fn new(size: u32, start: u32) -> Result<Sim, String> {
        let front = FrontRing::new(size).ok_or(format!("front end refused a ring of {size}"))?;
        let back = SharedRing::new(size).ok_or(format!("model refused a ring of {size}"))?;
        let zero = Ctr { abs: 0, start };
        // SHARED_RING_INIT / FRONT_RING_INIT: everything at the start, events one past it.
        let one = Ctr { abs: 1, start };
        Ok(Sim {
            front,
            back,
            slots: vec![Slot::Free; size as usize],
            req_prod: zero,
            rsp_prod: zero,
            req_event: one,
            rsp_event: one,
            req_prod_pvt: zero,
            rsp_cons: zero,
            req_cons: zero,
            rsp_prod_pvt: zero,
            unanswered: VecDeque::new(),
            kicks: (0, 0),
        })
    }

    fn slot_mut(&mut self, idx: u32) -> Result<&mut Slot, String> {
        let (f, b) = (self.front.slot(idx), self.back.slot(idx));
        if f != b {
            return Err(format!("index {idx:#x}: front end says slot {f}, model says {b}"));
        }
        let len = self.slots.len();
        self.slots.get_mut(f as usize).ok_or(format!("index {idx:#x}: slot {f} outside a ring of {len}"))
    }

    fn size(&self) -> u64 {
        u64::from(self.back.size())
    }

    fn step(&mut self, op: Op) -> Result<(), String> {
        match op {
            Op::Produce(n) => {
                let outstanding = self.req_prod_pvt.abs - self.rsp_cons.abs;
                let f = self.front.free_requests(self.req_prod_pvt.idx(), self.rsp_cons.idx());
                let m = self.back.free_requests(self.req_prod_pvt.idx(), self.rsp_cons.idx());
                let want = self.size().checked_sub(outstanding).map(|x| x as u32);
                if f != m || f != want {
                    return Err(format!("free_requests: front end {f:?}, model {m:?}, truth {want:?}"));
                }
                for _ in 0..n.min(f.unwrap_or(0)) {
                    let seq = self.req_prod_pvt.abs;
                    let s = self.slot_mut(self.req_prod_pvt.idx())?;
                    if *s != Slot::Free {
                        return Err(format!("request {seq} overruns a slot still holding {s:?}"));
                    }
                    *s = Slot::Request(seq);
                    self.req_prod_pvt.bump();
                }
                if self.req_prod_pvt.abs - self.rsp_cons.abs > self.size() {
                    return Err("front end has more requests outstanding than the ring holds".into());
                }
            }
            Op::PushRequests => {
                let kick = push("request", &mut self.req_prod, self.req_prod_pvt, self.req_event)?;
                self.kicks.0 += u64::from(kick);
            }
            Op::Consume(n) => {
                let seen =
                    self.back.unconsumed_requests(self.req_prod.idx(), self.req_cons.idx(), self.rsp_prod_pvt.idx());
                let want = self.req_prod.abs - self.req_cons.abs;
                if u64::from(seen) != want {
                    return Err(format!("back end sees {seen} requests, {want} were pushed and not consumed"));
                }
                for _ in 0..n.min(seen) {
                    let seq = self.req_cons.abs;
                    // RING_REQUEST_CONS_OVERFLOW on the request about to be consumed.
                    if self.back.request_cons_overflow(self.req_cons.idx(), self.rsp_prod_pvt.idx()) {
                        return Err(format!("model reports request {seq} as an overflow"));
                    }
                    let s = *self.slot_mut(self.req_cons.idx())?;
                    if s != Slot::Request(seq) {
                        return Err(format!("back end expected request {seq}, slot holds {s:?}"));
                    }
                    self.unanswered.push_back(seq);
                    self.req_cons.bump();
                }
            }
            Op::Respond(n) => {
                for _ in 0..n {
                    let Some(seq) = self.unanswered.pop_front() else { break };
                    let s = self.slot_mut(self.rsp_prod_pvt.idx())?;
                    if *s != Slot::Request(seq) {
                        return Err(format!("response {seq} lands on {s:?}"));
                    }
                    *s = Slot::Response(seq);
                    self.rsp_prod_pvt.bump();
                }
            }
            Op::PushResponses => {
                let kick = push("response", &mut self.rsp_prod, self.rsp_prod_pvt, self.rsp_event)?;
                self.kicks.1 += u64::from(kick);
            }
            Op::TakeResponses(n) => {
                let f = self.front.unconsumed_responses(self.rsp_prod.idx(), self.rsp_cons.idx());
                let m = self.back.unconsumed_responses(self.rsp_prod.idx(), self.rsp_cons.idx());
                let want = self.rsp_prod.abs - self.rsp_cons.abs;
                if f != m || u64::from(f) != want {
                    return Err(format!("unconsumed_responses: front end {f}, model {m}, truth {want}"));
                }
                for _ in 0..n.min(f) {
                    let seq = self.rsp_cons.abs;
                    let s = self.slot_mut(self.rsp_cons.idx())?;
                    if *s != Slot::Response(seq) {
                        return Err(format!("front end expected response {seq}, slot holds {s:?}"));
                    }
                    *s = Slot::Free;
                    self.rsp_cons.bump();
                }
            }
            Op::ArmFront => self.rsp_event = Ctr { abs: self.rsp_cons.abs + 1, ..self.rsp_cons },
            Op::ArmBack => self.req_event = Ctr { abs: self.req_cons.abs + 1, ..self.req_cons },
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(config(1024, 0x7865_6e00_0001))]

    /// Random sizes, random interleavings, indices starting just below the 2^32 wrap
    /// (within about a lap of it, so that every case crosses it).
    #[test]
    fn front_end_and_model_agree_across_the_wrap(
        size_exp in 0u32..=8,
        before_wrap in 0u32..=260,
        ops in prop::collection::vec(op(), 20..300),
    ) {
        let size = 1u32 << size_exp;
        let before_wrap = before_wrap % (size + 5);
        let mut sim = Sim::new(size, u32::MAX - before_wrap).map_err(TestCaseError::fail)?;
        for (i, op) in ops.iter().enumerate() {
            sim.step(*op).map_err(|e| TestCaseError::fail(format!("op {i} {op:?}: {e}")))?;
        }
        // Only runs whose front end got past the wrap count (most do).
        prop_assume!(sim.req_prod_pvt.abs > u64::from(before_wrap));
    }

    /// The same functions on arbitrary counters, hostile ones included: both sides give
    /// the same answer for every input. Distances are drawn near the ring's size half the
    /// time (where off-by-one bugs live) and anywhere in `u32` otherwise.
    #[test]
    fn same_answers_on_arbitrary_counters(
        size_exp in 0u32..=12,
        a in any::<u32>(),
        d in prop_oneof![0u32..64, any::<u32>()],
        e in prop_oneof![0u32..64, any::<u32>()],
        n in any::<u32>(),
    ) {
        let size = 1u32 << size_exp;
        let (f, m) = (FrontRing::new(size).unwrap(), SharedRing::new(size).unwrap());
        // Near the size: d and e of 0..64 land on size - 1, size and size + 1 for small rings.
        let near = |x: u32| if x < 64 { (size.saturating_sub(32)).wrapping_add(x) } else { x };
        let (b, c) = (a.wrapping_sub(near(d)), a.wrapping_sub(near(e)));
        prop_assert_eq!(f.size(), m.size());
        prop_assert_eq!(f.slot(a), m.slot(a));
        prop_assert_eq!(f.free_requests(a, b), m.free_requests(a, b));
        prop_assert_eq!(f.unconsumed_responses(a, b), m.unconsumed_responses(a, b));
        prop_assert_eq!(FrontRing::need_notify(b, a, c), SharedRing::need_notify(b, a, c));
        prop_assert_eq!(FrontRing::new(n).is_some(), SharedRing::new(n).is_some());
    }
}

/// One full lap straddling the wrap, pinned: fill the ring, answer everything, drain it.
#[test]
fn full_ring_across_the_wrap() {
    let mut sim = Sim::new(8, u32::MAX - 3).unwrap();
    for op in [Op::ArmBack, Op::Produce(100), Op::PushRequests, Op::Consume(100), Op::Respond(100)] {
        sim.step(op).unwrap();
    }
    // Eight requests fit, no more; the back end asked to be woken and was.
    assert_eq!((sim.req_prod_pvt.abs, sim.kicks.0), (8, 1));
    assert_eq!(sim.req_prod_pvt.idx(), 4);
    sim.step(Op::Produce(1)).unwrap();
    assert_eq!(sim.req_prod_pvt.abs, 8, "the ring is full until responses are consumed");
    for op in [Op::PushResponses, Op::TakeResponses(100), Op::Produce(3)] {
        sim.step(op).unwrap();
    }
    assert_eq!((sim.rsp_cons.abs, sim.req_prod_pvt.abs, sim.kicks.1), (8, 11, 1));
    assert!(sim.slots.iter().filter(|s| matches!(s, Slot::Request(_))).count() == 3);
}
