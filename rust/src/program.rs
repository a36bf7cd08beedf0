//! Programs: the setup, one operation list per thread, and the schedule; and the total decoder
//! that turns any byte string the fuzzer produces into one.

use crate::rcuref::{MAXREF, RELEASED};
use crate::world::{MAX_OPS, MAX_SETUP_VMAS, MAX_THREADS, MIN_THREADS, PAGES};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    Mmap,
    Munmap,
    Split,
    Merge,
    Fork,
    Get,
    Put,
    Rmap,
}

impl OpKind {
    pub const ALL: [OpKind; 8] =
        [OpKind::Mmap, OpKind::Munmap, OpKind::Split, OpKind::Merge, OpKind::Fork, OpKind::Get, OpKind::Put, OpKind::Rmap];

    pub fn name(self) -> &'static str {
        match self {
            OpKind::Mmap => "mmap",
            OpKind::Munmap => "munmap",
            OpKind::Split => "split",
            OpKind::Merge => "merge",
            OpKind::Fork => "fork",
            OpKind::Get => "get",
            OpKind::Put => "put",
            OpKind::Rmap => "rmap",
        }
    }

    pub fn from_name(name: &str) -> Option<OpKind> {
        OpKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// How many variants beyond the plain op it has (`Op::b`).
    pub fn variants(self) -> u32 {
        match self {
            OpKind::Split => 1,
            OpKind::Merge => 2,
            _ => 0,
        }
    }

    /// Only these have an error path that the seed turned into `vma_put`.
    pub fn can_fail(self) -> bool {
        matches!(self, OpKind::Mmap | OpKind::Split | OpKind::Fork)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Op {
    pub kind: OpKind,
    /// Address (page) for most ops, the folio's page for `rmap`.
    pub a: u32,
    /// Length in pages for `mmap`; the variant for `split` (1: new VMA below the address) and
    /// `merge` (1: the successor absorbs, 2: absorb the next two); otherwise 0.
    pub b: u32,
    pub fail: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetupVma {
    pub start: u32,
    pub end: u32,
    /// Raw counter preset: references held by holders outside the program.
    pub counter: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    pub setup: Vec<SetupVma>,
    pub threads: Vec<Vec<Op>>,
    pub schedule: Vec<(u8, u32)>,
}

pub const MAX_SCHEDULE: usize = 256;

/// Most races need two threads and a couple of ops each, and every extra op lengthens the history
/// the oracle must check and the run of steps a schedule must line up; so small programs are
/// the common case, while every size up to the limits stays reachable.
const THREAD_COUNTS: [usize; 8] = [2, 2, 2, 2, 2, 3, 3, 4];
const OP_COUNTS: [usize; 16] = [1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 4, 6, 8, 12, 16];
/// The most ops the decoder gives a thread (the last, largest, of `OP_COUNTS`).
pub const DECODED_OPS: usize = OP_COUNTS[OP_COUNTS.len() - 1];
pub const MAX_SLICE: u32 = 10_000;

impl Program {
    pub fn validate(&self) -> Result<(), String> {
        let n = self.threads.len();
        if !(MIN_THREADS..=MAX_THREADS).contains(&n) {
            return Err(format!("a program has {MIN_THREADS} to {MAX_THREADS} threads, not {n}"));
        }
        if self.setup.len() > MAX_SETUP_VMAS {
            return Err(format!("at most {MAX_SETUP_VMAS} setup VMAs"));
        }
        let mut last_end = 0;
        for (i, v) in self.setup.iter().enumerate() {
            if v.start >= v.end || v.end > PAGES {
                return Err(format!("setup VMA {}-{} is not a range inside 0-{PAGES}", v.start, v.end));
            }
            if i > 0 && v.start < last_end {
                return Err(format!("setup VMA {}-{} overlaps or is out of order", v.start, v.end));
            }
            last_end = v.end;
            if let Some(c) = v.counter {
                if c >= RELEASED {
                    return Err(format!("counter preset {c:#010x} is in the dead zone"));
                }
            }
        }
        for (t, ops) in self.threads.iter().enumerate() {
            if ops.len() > MAX_OPS {
                return Err(format!("thread {t} has {} ops, at most {MAX_OPS}", ops.len()));
            }
            for op in ops {
                if op.fail && !op.kind.can_fail() {
                    return Err(format!("thread {t}: {} has no error path", op.kind.name()));
                }
                let needs_addr = op.kind != OpKind::Put;
                if needs_addr && op.a >= PAGES {
                    return Err(format!("thread {t}: address {} is outside 0-{}", op.a, PAGES - 1));
                }
                if op.kind == OpKind::Mmap && (op.b == 0 || op.a + op.b > PAGES) {
                    return Err(format!("thread {t}: mmap {} {} does not fit in 0-{PAGES}", op.a, op.b));
                }
                if op.kind != OpKind::Mmap && op.b > op.kind.variants() {
                    return Err(format!("thread {t}: {} has no variant {}", op.kind.name(), op.b));
                }
            }
        }
        if self.schedule.len() > MAX_SCHEDULE {
            return Err(format!("at most {MAX_SCHEDULE} schedule entries"));
        }
        for &(t, steps) in &self.schedule {
            if t as usize >= n || steps == 0 || steps > MAX_SLICE {
                return Err(format!("schedule entry {t}:{steps} is out of range"));
            }
        }
        Ok(())
    }

    /// The total decoder: every byte string is a valid program. Missing bytes read as zero, so a
    /// short input is a small program rather than an error; the shape (thread count, op count)
    /// comes first so that mutations of later bytes change details, not the whole program.
    pub fn decode(data: &[u8]) -> Program {
        let mut bytes = Bytes { data, pos: 0 };
        let threads = THREAD_COUNTS[bytes.next() as usize % THREAD_COUNTS.len()];
        let setup = decode_setup(&mut bytes);
        // On the stack: the setup's VMAs are disjoint ranges inside 0..PAGES, so they fit.
        let mut pages = [0; PAGES as usize];
        let mut count = 0;
        for page in setup.iter().flat_map(|v| v.start..v.end) {
            pages[count] = page;
            count += 1;
        }
        let mapped = &pages[..count];
        let threads = (0..threads)
            .map(|_| {
                let n = OP_COUNTS[bytes.next() as usize % OP_COUNTS.len()];
                (0..n).map(|_| decode_op(&mut bytes, mapped)).collect()
            })
            .collect::<Vec<_>>();
        let n = threads.len() as u8;
        // The rest, two bytes a slice (a missing last byte reads as zero).
        let rest = data.get(bytes.pos..).unwrap_or_default();
        let schedule = rest
            .chunks(2)
            .take(MAX_SCHEDULE)
            .map(|pair| (pair[0] % n, 1 + (pair.get(1).copied().unwrap_or(0) % 32) as u32))
            .collect();
        Program { setup, threads, schedule }
    }
}

struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
}

/// Ops race only where they meet, so three address bytes in four name a page the setup mapped
/// (the others reach every page, mapped later or never).
fn decode_page(byte: u8, mapped: &[u32]) -> u32 {
    if byte < 192 && !mapped.is_empty() {
        mapped[byte as usize % mapped.len()]
    } else {
        byte as u32 % PAGES
    }
}

fn decode_setup(bytes: &mut Bytes) -> Vec<SetupVma> {
    let count = 1 + bytes.next() as usize % MAX_SETUP_VMAS;
    let mut setup = Vec::with_capacity(count);
    let mut cursor = 0;
    for _ in 0..count {
        let b = bytes.next();
        let start = cursor + ((b >> 2) & 1) as u32;
        let end = start + 1 + (b & 3) as u32;
        if end > PAGES {
            break;
        }
        let counter = match b >> 3 {
            0x1F => Some(MAXREF),
            0x1E => Some(crate::rcuref::SATURATED),
            _ => None,
        };
        setup.push(SetupVma { start, end, counter });
        cursor = end;
    }
    setup
}

fn decode_op(bytes: &mut Bytes, mapped: &[u32]) -> Op {
    let code = bytes.next() % 16;
    let a = decode_page(bytes.next(), mapped);
    let (kind, fail) = match code {
        0 | 1 | 12 | 13 => (OpKind::Rmap, false),
        2 | 14 => (OpKind::Munmap, false),
        3 => (OpKind::Mmap, false),
        4 => (OpKind::Mmap, true),
        5 => (OpKind::Split, false),
        6 => (OpKind::Split, true),
        7 => (OpKind::Merge, false),
        8 => (OpKind::Fork, false),
        9 => (OpKind::Fork, true),
        10 | 15 => (OpKind::Get, false),
        _ => (OpKind::Put, false),
    };
    match kind {
        OpKind::Mmap => {
            let len = 1 + (bytes.next() as u32) % 4;
            Op { kind, a: a.min(PAGES - len), b: len, fail }
        }
        OpKind::Put => Op { kind, a: 0, b: 0, fail },
        OpKind::Split | OpKind::Merge => Op { kind, a, b: bytes.next() as u32 % (kind.variants() + 1), fail },
        _ => Op { kind, a, b: 0, fail },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_string_decodes_to_a_valid_program() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in 0..400 {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let p = Program::decode(&data);
            assert_eq!(p.validate(), Ok(()), "{data:?}");
        }
        assert_eq!(Program::decode(&[]).validate(), Ok(()));
        assert_eq!(Program::decode(&[0xff; 4096]).validate(), Ok(()));
    }

    #[test]
    fn most_address_bytes_name_a_page_the_setup_mapped() {
        // Two threads; two setup VMAs, each one page after the last (1-3, 4-6); one op each.
        let program = Program::decode(&[0, 1, 0b101, 0b101, 1, 2, 7, 1, 0, 190]);
        let mapped: Vec<u32> = program.setup.iter().flat_map(|v| v.start..v.end).collect();
        assert_eq!(mapped, [1, 2, 4, 5]);
        assert_eq!(program.threads[0][0].a, mapped[7 % 4]);
        assert_eq!(program.threads[1][0].a, mapped[190 % 4]);
        let unbiased = Program::decode(&[0, 0, 0b101, 1, 2, 200]);
        assert_eq!(unbiased.threads[0][0].a, 200 % PAGES);
    }

    #[test]
    fn decoding_is_a_function_of_the_bytes() {
        let data = b"pyfuzz decodes the same bytes the same way";
        assert_eq!(Program::decode(data), Program::decode(data));
    }
}
