//! Fault plans: what breaks in an emulated device, and when. Seeded and deterministic.
//!
//! A plan is data (TOML or JSON, via serde) or built in code:
//!
//! ```
//! use nicqual_model::FaultPlan;
//! let plan = FaultPlan::new(7).lose_vector(1).drop_irq(2, 0.5).surprise_removal_at(5_000_000);
//! assert_eq!(plan.faults.len(), 3);
//! let same: FaultPlan = "lose-vector:1".parse().unwrap();
//! assert_eq!(same.faults[0], plan.faults[0]);
//! ```
//!
//! Fault times are virtual nanoseconds counted from the moment the plan is armed on a
//! device ([`FaultState::arm`]); `nicqual qualify` arms it right after the driver attached,
//! so `surprise-removal` with no time means "the device vanished under an attached driver".

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// One thing that breaks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum FaultKind {
    /// MSI-X vector `vector` is lost: its table entry reads back all-ones and every
    /// message it would send vanishes.
    LoseVector { vector: u16 },
    /// IVAR entry `entry` (0 RxQ0, 1 RxQ1, 2 TxQ0, 3 TxQ1, 4 Other) is corrupted when
    /// written: the stored nibble differs from what the driver wrote (seeded).
    CorruptIvar { entry: u8 },
    /// Each message on vector `vector` is dropped with probability `probability`.
    DropIrq { vector: u16, probability: f64 },
    /// The device is gone: every config and BAR read returns all-ones, writes are dropped,
    /// no DMA, no interrupts.
    SurpriseRemoval,
    /// The `nth` completion entry (0-based, counted from arming, over all of the device's
    /// completion queues) the device writes back is hostile: one field the device model
    /// picks with the plan's rng (index out of range, length over the posted buffer, wrong
    /// type or queue, all-ones) is corrupted. Devices with completion queues only (bnx2x
    /// CQEs, enic CQ entries); the 82574L refuses it.
    HostileCompletion { nth: u32 },
    /// The device stops advancing the consumer index it reports for queue `queue` (a TX
    /// consumer in a status block, a fetch index): work is done but never reported.
    StallConsumer { queue: u16 },
}

/// What a device offers a fault plan to break; [`FaultPlan::validate_for`] refuses a fault
/// that names something the device does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultTarget {
    /// MSI-X table entries.
    pub msix_vectors: u16,
    /// IVAR entries (0 if the device has no IVAR).
    pub ivar_entries: u8,
    /// Whether the device writes completion entries (for `hostile-completion`).
    pub completions: bool,
    /// Queues whose consumer index the device reports (for `stall-consumer`); 0 = none.
    pub consumer_queues: u16,
}

/// A fault and the virtual time (ns after arming) from which it holds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "FaultRepr")]
pub struct Fault {
    #[serde(flatten)]
    pub kind: FaultKind,
    #[serde(default)]
    pub at_ns: u64,
}

/// How a fault reads from a file: its kind, that kind's fields and `at_ns`, and nothing
/// else (serde cannot refuse unknown keys next to a flattened enum, so files go through
/// this strict form: a misspelt `at-ns` or `vectr` is an error, not a fault at t=0).
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum FaultRepr {
    LoseVector {
        vector: u16,
        #[serde(default)]
        at_ns: u64,
    },
    CorruptIvar {
        entry: u8,
        #[serde(default)]
        at_ns: u64,
    },
    DropIrq {
        vector: u16,
        probability: f64,
        #[serde(default)]
        at_ns: u64,
    },
    SurpriseRemoval {
        #[serde(default)]
        at_ns: u64,
    },
    HostileCompletion {
        nth: u32,
        #[serde(default)]
        at_ns: u64,
    },
    StallConsumer {
        queue: u16,
        #[serde(default)]
        at_ns: u64,
    },
}

impl From<FaultRepr> for Fault {
    fn from(r: FaultRepr) -> Fault {
        let (kind, at_ns) = match r {
            FaultRepr::LoseVector { vector, at_ns } => (FaultKind::LoseVector { vector }, at_ns),
            FaultRepr::CorruptIvar { entry, at_ns } => (FaultKind::CorruptIvar { entry }, at_ns),
            FaultRepr::DropIrq { vector, probability, at_ns } => (FaultKind::DropIrq { vector, probability }, at_ns),
            FaultRepr::SurpriseRemoval { at_ns } => (FaultKind::SurpriseRemoval, at_ns),
            FaultRepr::HostileCompletion { nth, at_ns } => (FaultKind::HostileCompletion { nth }, at_ns),
            FaultRepr::StallConsumer { queue, at_ns } => (FaultKind::StallConsumer { queue }, at_ns),
        };
        Fault { kind, at_ns }
    }
}

/// Largest fault file [`FaultPlan::load`] reads.
pub const MAX_PLAN_BYTES: u64 = 1 << 20;

/// A seeded list of faults.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    #[serde(default)]
    pub seed: u64,
    #[serde(default, rename = "fault")]
    pub faults: Vec<Fault>,
}

#[derive(Debug, thiserror::Error)]
pub enum FaultParseError {
    #[error("fault spec {spec:?}: {why}")]
    Spec { spec: String, why: String },
    #[error("fault file {path}: {why}")]
    File { path: String, why: String },
}

impl FaultPlan {
    pub fn new(seed: u64) -> Self {
        FaultPlan { seed, faults: Vec::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.faults.is_empty()
    }

    pub fn with(mut self, kind: FaultKind, at_ns: u64) -> Self {
        self.faults.push(Fault { kind, at_ns });
        self
    }

    pub fn lose_vector(self, vector: u16) -> Self {
        self.with(FaultKind::LoseVector { vector }, 0)
    }

    pub fn corrupt_ivar(self, entry: u8) -> Self {
        self.with(FaultKind::CorruptIvar { entry }, 0)
    }

    pub fn drop_irq(self, vector: u16, probability: f64) -> Self {
        self.with(FaultKind::DropIrq { vector, probability }, 0)
    }

    pub fn surprise_removal_at(self, at_ns: u64) -> Self {
        self.with(FaultKind::SurpriseRemoval, at_ns)
    }

    /// Merge another plan's faults into this one (the seed of `self` is kept).
    pub fn extend(&mut self, other: FaultPlan) {
        self.faults.extend(other.faults);
    }

    /// Load a plan from a `.json` file, or TOML otherwise. Unknown keys, a file over
    /// [`MAX_PLAN_BYTES`] and a plan with no fault are errors: a file given to break
    /// something that breaks nothing would let a run pass that nothing earned.
    pub fn load(path: &std::path::Path) -> Result<FaultPlan, FaultParseError> {
        use std::io::Read;
        let err = |why: String| FaultParseError::File { path: path.display().to_string(), why };
        let f = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
        let mut text = String::new();
        f.take(MAX_PLAN_BYTES + 1).read_to_string(&mut text).map_err(|e| err(e.to_string()))?;
        if text.len() as u64 > MAX_PLAN_BYTES {
            return Err(err(format!("larger than {MAX_PLAN_BYTES} bytes")));
        }
        let plan: FaultPlan = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|e| err(e.to_string()))?
        } else {
            toml::from_str(&text).map_err(|e| err(e.to_string()))?
        };
        if plan.is_empty() {
            return Err(err("no fault in the plan (a fault file must name at least one `[[fault]]`)".into()));
        }
        plan.validate().map_err(err)?;
        Ok(plan)
    }

    /// Check the plan against the device it is armed on: every vector must be one of its
    /// MSI-X table entries, every IVAR entry one of its IVAR entries, and a completion or
    /// consumer-index fault needs a device that has them. A fault that cannot apply is
    /// refused, never silently ignored.
    pub fn validate_for(&self, target: FaultTarget) -> Result<(), String> {
        self.validate()?;
        for f in &self.faults {
            match f.kind {
                FaultKind::LoseVector { vector } | FaultKind::DropIrq { vector, .. }
                    if vector >= target.msix_vectors =>
                {
                    return Err(format!(
                        "vector {vector} does not exist on this device (MSI-X vectors 0..={})",
                        target.msix_vectors.saturating_sub(1)
                    ));
                }
                FaultKind::CorruptIvar { entry } if entry >= target.ivar_entries => {
                    return Err(if target.ivar_entries == 0 {
                        "this device has no IVAR: corrupt-ivar cannot apply".to_string()
                    } else {
                        format!(
                            "IVAR entry {entry} does not exist on this device (entries 0..={})",
                            target.ivar_entries - 1
                        )
                    });
                }
                FaultKind::HostileCompletion { .. } if !target.completions => {
                    return Err("this device writes no completion entries: hostile-completion cannot apply".into());
                }
                FaultKind::StallConsumer { queue } if queue >= target.consumer_queues => {
                    return Err(if target.consumer_queues == 0 {
                        "this device reports no consumer index: stall-consumer cannot apply".to_string()
                    } else {
                        format!(
                            "queue {queue} does not exist on this device (queues 0..={})",
                            target.consumer_queues - 1
                        )
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Check values a file could get wrong.
    pub fn validate(&self) -> Result<(), String> {
        for f in &self.faults {
            match f.kind {
                FaultKind::CorruptIvar { entry } if entry > 4 => {
                    return Err(format!("corrupt-ivar entry {entry} out of range 0..=4"));
                }
                FaultKind::DropIrq { probability, .. } if !(0.0..=1.0).contains(&probability) => {
                    return Err(format!("drop-irq probability {probability} outside 0..=1"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// A plan as TOML text (what `--faults FILE` accepts).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

/// Parse a duration into ns, in the one syntax every nicqual time and duration uses
/// (`humantime`: `1500ns`, `20us`, `5ms`, `2s`, `1m 30s`; a unit is required). `None` for
/// anything else, including a duration past u64 nanoseconds (584 years).
pub fn parse_time_ns(s: &str) -> Option<u64> {
    let d = humantime::parse_duration(s.trim()).ok()?;
    u64::try_from(d.as_nanos()).ok()
}

fn parse_ivar_entry(s: &str) -> Option<u8> {
    match s.to_ascii_lowercase().as_str() {
        "rxq0" => Some(0),
        "rxq1" => Some(1),
        "txq0" => Some(2),
        "txq1" => Some(3),
        "other" => Some(4),
        n => n.parse::<u8>().ok().filter(|&e| e <= 4),
    }
}

impl std::str::FromStr for FaultPlan {
    type Err = FaultParseError;

    /// The command-line shorthand: `lose-vector:N`, `corrupt-ivar:K` (K = 0..4 or
    /// RxQ0/RxQ1/TxQ0/TxQ1/Other), `drop-irq:N:P`, `surprise-removal`,
    /// `hostile-completion:N` (alias `hostile-cqe:N`), `stall-consumer:Q`, each optionally
    /// followed by `@T` (virtual time after arming, with a unit: `5ms`, `20us`, `1500ns`).
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| FaultParseError::Spec { spec: spec.to_string(), why: why.to_string() };
        let (body, at_ns) = match spec.split_once('@') {
            Some((b, t)) => (b, parse_time_ns(t).ok_or_else(|| bad("bad time after '@' (try 5ms, 20us, 1500ns)"))?),
            None => (spec, 0),
        };
        let parts: Vec<&str> = body.split(':').collect();
        let num = |i: usize, what: &str| -> Result<u16, FaultParseError> {
            parts.get(i).and_then(|p| p.parse::<u16>().ok()).ok_or_else(|| bad(&format!("expected {what}")))
        };
        let kind = match parts[0] {
            "lose-vector" if parts.len() == 2 => FaultKind::LoseVector { vector: num(1, "a vector number")? },
            "corrupt-ivar" if parts.len() == 2 => FaultKind::CorruptIvar {
                entry: parse_ivar_entry(parts[1])
                    .ok_or_else(|| bad("expected an IVAR entry 0..4 or RxQ0/RxQ1/TxQ0/TxQ1/Other"))?,
            },
            "drop-irq" if parts.len() == 3 => FaultKind::DropIrq {
                vector: num(1, "a vector number")?,
                probability: parts[2]
                    .parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=1.0).contains(p))
                    .ok_or_else(|| bad("expected a probability in 0..=1"))?,
            },
            "surprise-removal" if parts.len() == 1 => FaultKind::SurpriseRemoval,
            "hostile-completion" | "hostile-cqe" if parts.len() == 2 => FaultKind::HostileCompletion {
                nth: parts[1].parse::<u32>().map_err(|_| bad("expected a completion number (0-based)"))?,
            },
            "stall-consumer" if parts.len() == 2 => FaultKind::StallConsumer { queue: num(1, "a queue number")? },
            _ => {
                return Err(bad(
                    "unknown fault; expected lose-vector:N, corrupt-ivar:K, drop-irq:N:P, surprise-removal, hostile-completion:N or stall-consumer:Q, optionally @T",
                ));
            }
        };
        Ok(FaultPlan::new(0).with(kind, at_ns))
    }
}

/// A plan armed on one device: the device asks it, at each decision point, what breaks.
#[derive(Debug, Clone)]
pub struct FaultState {
    plan: FaultPlan,
    rng: ChaCha8Rng,
    armed_at: Option<u64>,
    /// Counters of what the plan did, for reports.
    pub lost_messages: u64,
    pub dropped_messages: u64,
    pub corrupted_ivar_writes: u64,
    /// Completion entries written back so far since arming (for `hostile-completion`).
    pub completions_written: u64,
    pub hostile_completions: u64,
}

impl Default for FaultState {
    fn default() -> Self {
        Self::new(FaultPlan::default())
    }
}

impl FaultState {
    pub fn new(plan: FaultPlan) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(plan.seed);
        FaultState {
            plan,
            rng,
            armed_at: None,
            lost_messages: 0,
            dropped_messages: 0,
            corrupted_ivar_writes: 0,
            completions_written: 0,
            hostile_completions: 0,
        }
    }

    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// Start the plan's clock at virtual time `now`.
    pub fn arm(&mut self, now: u64) {
        self.armed_at = Some(now);
    }

    pub fn is_armed(&self) -> bool {
        self.armed_at.is_some()
    }

    fn active(&self, now: u64) -> impl Iterator<Item = &FaultKind> {
        let since = self.armed_at.map(|a| now.saturating_sub(a));
        self.plan.faults.iter().filter(move |f| since.is_some_and(|s| s >= f.at_ns)).map(|f| &f.kind)
    }

    pub fn removed(&self, now: u64) -> bool {
        self.active(now).any(|k| matches!(k, FaultKind::SurpriseRemoval))
    }

    pub fn vector_lost(&self, vector: u16, now: u64) -> bool {
        self.active(now).any(|k| matches!(k, FaultKind::LoseVector { vector: v } if *v == vector))
    }

    /// Decide the fate of one message on `vector`: true = it vanishes.
    pub fn swallow_message(&mut self, vector: u16, now: u64) -> bool {
        if self.vector_lost(vector, now) {
            self.lost_messages += 1;
            return true;
        }
        let p: f64 = self
            .active(now)
            .filter_map(|k| match k {
                FaultKind::DropIrq { vector: v, probability } if *v == vector => Some(*probability),
                _ => None,
            })
            .fold(0.0, f64::max);
        if p > 0.0 && self.rng.random_bool(p.min(1.0)) {
            self.dropped_messages += 1;
            return true;
        }
        false
    }

    /// Called by a device for each completion entry it is about to write: `Some(pick)` if
    /// this one must be hostile, with a seeded number the device uses to choose which field
    /// to corrupt and how; `None` for an honest entry. Completions before arming are not
    /// counted.
    pub fn next_completion(&mut self, now: u64) -> Option<u32> {
        if !self.is_armed() {
            return None;
        }
        let n = self.completions_written;
        self.completions_written = n.saturating_add(1);
        let hit = self.active(now).any(|k| matches!(k, FaultKind::HostileCompletion { nth } if u64::from(*nth) == n));
        if hit {
            self.hostile_completions += 1;
            Some(self.rng.random())
        } else {
            None
        }
    }

    /// Whether the consumer index the device reports for `queue` is frozen.
    pub fn consumer_stalled(&self, queue: u16, now: u64) -> bool {
        self.active(now).any(|k| matches!(k, FaultKind::StallConsumer { queue: q } if *q == queue))
    }

    /// What IVAR stores when the driver writes `value`.
    pub fn filter_ivar_write(&mut self, value: u32, now: u64) -> u32 {
        let entries: Vec<u8> = self
            .active(now)
            .filter_map(|k| match k {
                FaultKind::CorruptIvar { entry } => Some(*entry),
                _ => None,
            })
            .collect();
        let mut v = value;
        for e in entries {
            let flip: u32 = self.rng.random_range(1..=15);
            v ^= flip << (4 * e as u32);
            self.corrupted_ivar_writes += 1;
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Completion and consumer faults parse, are refused by a device that lacks what they
    /// name, and fire on exactly the entry they name.
    #[test]
    fn completion_and_consumer_faults_apply_only_where_they_can() {
        let p: FaultPlan = "hostile-cqe:3".parse().unwrap();
        assert_eq!(p.faults[0].kind, FaultKind::HostileCompletion { nth: 3 });
        let q: FaultPlan = "stall-consumer:1@2ms".parse().unwrap();
        assert_eq!(q.faults[0].kind, FaultKind::StallConsumer { queue: 1 });
        assert_eq!(q.faults[0].at_ns, 2_000_000);
        assert!("hostile-completion:-1".parse::<FaultPlan>().is_err());
        let nic = FaultTarget { msix_vectors: 5, ivar_entries: 5, completions: false, consumer_queues: 0 };
        assert!(p.validate_for(nic).unwrap_err().contains("hostile-completion"));
        assert!(q.validate_for(nic).unwrap_err().contains("stall-consumer"));
        let ring_nic = FaultTarget { msix_vectors: 3, ivar_entries: 0, completions: true, consumer_queues: 1 };
        p.validate_for(ring_nic).unwrap();
        assert!(q.validate_for(ring_nic).unwrap_err().contains("queue 1"));
        assert!("corrupt-ivar:0".parse::<FaultPlan>().unwrap().validate_for(ring_nic).unwrap_err().contains("no IVAR"));
        let mut st = FaultState::new(p);
        assert_eq!(st.next_completion(0), None, "not armed: nothing counted");
        st.arm(0);
        let hits: Vec<bool> = (0..6).map(|_| st.next_completion(10).is_some()).collect();
        assert_eq!(hits, [false, false, false, true, false, false]);
        assert_eq!(st.hostile_completions, 1);
        let mut stq = FaultState::new(q);
        stq.arm(100);
        assert!(!stq.consumer_stalled(1, 100 + 1_999_999));
        assert!(stq.consumer_stalled(1, 100 + 2_000_000));
        assert!(!stq.consumer_stalled(0, 100 + 2_000_000));
    }

    /// A fault file with a misspelt key is an error naming the key, never a plan that
    /// silently breaks nothing (or breaks it at t=0).
    #[test]
    fn fault_files_refuse_unknown_keys_and_empty_plans() {
        let dir = std::env::temp_dir().join(format!("nicqual-faults-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let load = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            super::FaultPlan::load(&p).map_err(|e| e.to_string())
        };
        let e = load("a.toml", "seed = 1\nfaults = [{ kind = \"lose-vector\", vector = 1 }]\n").unwrap_err();
        assert!(e.contains("faults"), "{e}");
        let e = load("b.toml", "seed = 1\n[[fault]]\nkind = \"lose-vector\"\nvector = 1\nat-ns = 5\n").unwrap_err();
        assert!(e.contains("at-ns"), "{e}");
        let e = load("c.toml", "sed = 3\n[[fault]]\nkind = \"surprise-removal\"\n").unwrap_err();
        assert!(e.contains("sed"), "{e}");
        let e = load("d.json", r#"{"seed":1,"fault":[{"kind":"drop-irq","vectr":1,"probability":0.5}]}"#).unwrap_err();
        assert!(e.contains("vectr"), "{e}");
        let e = load("e.toml", "seed = 4\n").unwrap_err();
        assert!(e.contains("no fault"), "{e}");
        let ok = load("f.toml", "seed = 1\n[[fault]]\nkind = \"lose-vector\"\nvector = 1\nat_ns = 5\n").unwrap();
        assert_eq!(ok.faults[0].at_ns, 5);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn t(msix_vectors: u16, ivar_entries: u8) -> FaultTarget {
        FaultTarget { msix_vectors, ivar_entries, completions: false, consumer_queues: 0 }
    }

    #[test]
    fn faults_outside_the_device_are_refused() {
        let plan: super::FaultPlan = "lose-vector:99".parse().unwrap();
        assert!(plan.validate_for(t(5, 5)).unwrap_err().contains("vector 99 does not exist"));
        let plan: super::FaultPlan = "drop-irq:5:0.5".parse().unwrap();
        assert!(plan.validate_for(t(5, 5)).is_err());
        assert!(plan.validate_for(t(6, 5)).is_ok());
        let plan = super::FaultPlan::new(0).corrupt_ivar(4);
        assert!(plan.validate_for(t(5, 4)).unwrap_err().contains("IVAR entry 4"));
    }

    #[test]
    fn shorthand_parses_every_kind() {
        let p: FaultPlan = "drop-irq:2:0.25@5ms".parse().unwrap();
        assert_eq!(p.faults[0], Fault { kind: FaultKind::DropIrq { vector: 2, probability: 0.25 }, at_ns: 5_000_000 });
        let p: FaultPlan = "corrupt-ivar:TxQ0".parse().unwrap();
        assert_eq!(p.faults[0].kind, FaultKind::CorruptIvar { entry: 2 });
        let p: FaultPlan = "surprise-removal".parse().unwrap();
        assert_eq!(p.faults[0].kind, FaultKind::SurpriseRemoval);
        assert!("lose-vector".parse::<FaultPlan>().is_err());
        assert!("drop-irq:1:1.5".parse::<FaultPlan>().is_err());
        assert!("corrupt-ivar:9".parse::<FaultPlan>().is_err());
    }

    #[test]
    fn toml_and_json_round_trip() {
        let plan = FaultPlan::new(42).lose_vector(1).corrupt_ivar(4).surprise_removal_at(1000);
        let t = plan.to_toml();
        assert_eq!(toml::from_str::<FaultPlan>(&t).unwrap(), plan);
        let j = serde_json::to_string(&plan).unwrap();
        assert_eq!(serde_json::from_str::<FaultPlan>(&j).unwrap(), plan);
        let hand = "seed = 3\n[[fault]]\nkind = \"lose-vector\"\nvector = 1\n";
        assert_eq!(toml::from_str::<FaultPlan>(hand).unwrap(), FaultPlan::new(3).lose_vector(1));
    }

    #[test]
    fn faults_hold_only_after_arming_and_their_time() {
        let mut s = FaultState::new(FaultPlan::new(1).surprise_removal_at(100));
        assert!(!s.removed(1_000));
        s.arm(1_000);
        assert!(!s.removed(1_050));
        assert!(s.removed(1_100));
    }

    #[test]
    fn drops_are_seeded() {
        let run = |seed| {
            let mut s = FaultState::new(FaultPlan::new(seed).drop_irq(0, 0.5));
            s.arm(0);
            (0..64).map(|_| s.swallow_message(0, 0)).collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
        let dropped = run(9).iter().filter(|d| **d).count();
        assert!((10..54).contains(&dropped), "p=0.5 over 64 messages dropped {dropped}");
    }

    #[test]
    fn corrupted_ivar_differs_in_exactly_that_entry() {
        let mut s = FaultState::new(FaultPlan::new(5).corrupt_ivar(2));
        s.arm(0);
        let w = 0x800A_0908;
        let r = s.filter_ivar_write(w, 0);
        assert_ne!(r, w);
        assert_eq!((r ^ w) & !0xF00, 0);
    }
}
