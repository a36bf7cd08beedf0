//! VMA objects and the mm paths the seed patch touches: `vm_area_alloc`/`vm_area_dup` with
//! `vma_rcuref_init`, `vma_get`/`vma_put`, `remove_vma`, `__split_vma`, the merge's
//! `vma_complete`, `dup_mmap`, the error paths that now end in `vma_put`, and the lazy anon
//! reverse-map reader that is the reason VMAs need a reference count at all.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crate::env::Env;
use crate::event::{Event, Field, LockMode, Order};
use crate::mutant::Mutant;
use crate::program::{Op, OpKind};
use crate::rcuref;
use crate::world::{TreeEntry, PAGES, WRITER};

pub const PARENT_MM: u8 = 0;
pub const CHILD_MM: u8 = 1;

fn field_cell<E: Env>(env: &E, slot: u8, field: Field) -> &std::sync::atomic::AtomicU32 {
    let s = &env.world().slots[slot as usize];
    match field {
        Field::Start => &s.start,
        Field::End => &s.end,
        Field::Pgoff => &s.pgoff,
        Field::File => &s.file,
        Field::Policy => &s.policy,
    }
}

pub async fn read_field<E: Env>(env: &E, slot: u8, field: Field) -> u32 {
    env.step().await;
    let value = field_cell(env, slot, field).load(Relaxed);
    env.emit(Event::Read { t: env.tid(), slot, field, value });
    value
}

pub async fn write_field<E: Env>(env: &E, slot: u8, field: Field, value: u32) {
    env.step().await;
    field_cell(env, slot, field).store(value, Relaxed);
    env.emit(Event::Write { t: env.tid(), slot, field, value });
}

/// The fields a VMA's place in the address space is made of.
#[derive(Clone, Copy, Debug)]
pub struct Range {
    pub start: u32,
    pub end: u32,
    pub pgoff: u32,
}

async fn set_range<E: Env>(env: &E, slot: u8, r: Range) {
    write_field(env, slot, Field::Start, r.start).await;
    write_field(env, slot, Field::End, r.end).await;
    write_field(env, slot, Field::Pgoff, r.pgoff).await;
}

async fn vma_rcuref_init<E: Env>(env: &E, slot: u8) {
    if env.config().vma_ref {
        rcuref::init(env, slot, 1).await;
    }
}

/// `vm_area_alloc`: `vma_init` zeroes the whole object (the counter included, unless
/// `init=keep_counter` leaves it out of the zeroing) and, with the seed, ends with
/// `vma_rcuref_init`. Zeroing the counter is a plain store of ONEREF: for a moment the recycled
/// object looks alive with one reference to any stale reader.
pub async fn vm_area_alloc<E: Env>(env: &E) -> Option<u8> {
    let slot = env.world().slab.alloc(env).await?;
    if env.config().vma_ref && !env.config().init_keeps_counter {
        rcuref::counter_store(env, slot, 0, Order::Plain).await;
    }
    vma_rcuref_init(env, slot).await;
    Some(slot)
}

/// `vm_area_dup`: no memset; the fields are copied and the rcuref re-initialised (the seed's
/// addition), otherwise the copy would inherit whatever counter the slot's last object left.
async fn vm_area_dup<E: Env>(env: &E, orig: u8) -> Option<(u8, Range)> {
    let new = env.world().slab.alloc(env).await?;
    let r = Range {
        start: read_field(env, orig, Field::Start).await,
        end: read_field(env, orig, Field::End).await,
        pgoff: read_field(env, orig, Field::Pgoff).await,
    };
    set_range(env, new, r).await;
    if env.mutant() != Mutant::DupNoReinit {
        vma_rcuref_init(env, new).await;
    }
    Some((new, r))
}

pub async fn vm_area_free<E: Env>(env: &E, slot: u8) {
    env.world().slab.free(env, slot).await;
}

/// `vma_get`. With `CONFIG_VMA_REF=n` taking a reference is not allowed: warn (debug builds)
/// and return NULL.
pub async fn vma_get<E: Env>(env: &E, slot: u8) -> bool {
    if !env.config().vma_ref {
        if env.config().debug_vm {
            env.emit(Event::Warn { t: env.tid(), slot, what: crate::event::Warning::VmaGetDisabled });
        }
        return false;
    }
    rcuref::get(env, slot).await
}

/// `vma_put`: frees the VMA when this was the last reference (at once with `CONFIG_VMA_REF=n`).
pub async fn vma_put<E: Env>(env: &E, slot: u8) -> bool {
    let release = !env.config().vma_ref || rcuref::put(env, slot, env.config().put_preempt).await;
    if release {
        vm_area_free(env, slot).await;
    }
    release
}

/// The release at the end of an error path: the seed turned each `vm_area_free` into `vma_put`.
async fn error_path_release<E: Env>(env: &E, slot: u8) {
    if env.mutant() == Mutant::ErrorDirectFree {
        vm_area_free(env, slot).await;
    } else {
        vma_put(env, slot).await;
    }
}

/// `remove_vma`: drop the file and the policy, then the tree's reference.
async fn remove_vma<E: Env>(env: &E, slot: u8) {
    read_field(env, slot, Field::File).await;
    read_field(env, slot, Field::Policy).await;
    vma_put(env, slot).await;
    if env.mutant() == Mutant::RemoveDoublePut {
        vma_put(env, slot).await;
    }
}

// ---- the mm: mmap_lock, the VMA tree, folio mappings ----

fn lock_free_for_writer(w: &crate::world::World) -> bool {
    w.mmap_lock.load(Relaxed) == 0
}

fn lock_free_for_reader(w: &crate::world::World) -> bool {
    w.mmap_lock.load(Relaxed) & WRITER == 0
}

async fn mmap_lock<E: Env>(env: &E, mode: LockMode) {
    let lock = &env.world().mmap_lock;
    env.step().await;
    loop {
        let taken = match mode {
            LockMode::Write => lock.compare_exchange(0, WRITER, Acquire, Relaxed).is_ok(),
            LockMode::Read => {
                let v = lock.load(Relaxed);
                v & WRITER == 0 && lock.compare_exchange(v, v + 1, Acquire, Relaxed).is_ok()
            }
        };
        if taken {
            env.emit(Event::Lock { t: env.tid(), mode });
            return;
        }
        let ready = match mode {
            LockMode::Write => lock_free_for_writer,
            LockMode::Read => lock_free_for_reader,
        };
        env.wait(ready).await;
    }
}

async fn mmap_unlock<E: Env>(env: &E, mode: LockMode) {
    env.step().await;
    let lock = &env.world().mmap_lock;
    match mode {
        LockMode::Write => lock.store(0, Release),
        LockMode::Read => {
            lock.fetch_sub(1, Release);
        }
    }
    env.emit(Event::Unlock { t: env.tid(), mode });
}

async fn lookup<E: Env>(env: &E, mm: u8, addr: u32) -> Option<TreeEntry> {
    env.step().await;
    let found = env.world().find_vma(mm, addr)?;
    env.emit(Event::Lookup { t: env.tid(), mm, slot: found.slot });
    Some(found)
}

async fn tree_insert<E: Env>(env: &E, mm: u8, slot: u8, r: Range) {
    env.step().await;
    {
        let mut trees = env.world().trees.lock().unwrap();
        let tree = &mut trees[mm as usize];
        let at = tree.iter().position(|v| v.start > r.start).unwrap_or(tree.len());
        tree.insert(at, TreeEntry { slot, start: r.start, end: r.end });
    }
    env.emit(Event::TreeInsert { t: env.tid(), mm, slot, start: r.start, end: r.end, pgoff: r.pgoff });
}

async fn tree_update<E: Env>(env: &E, mm: u8, slot: u8, r: Range) {
    env.step().await;
    {
        let mut trees = env.world().trees.lock().unwrap();
        if let Some(v) = trees[mm as usize].iter_mut().find(|v| v.slot == slot) {
            v.start = r.start;
            v.end = r.end;
        }
    }
    env.emit(Event::TreeUpdate { t: env.tid(), mm, slot, start: r.start, end: r.end, pgoff: r.pgoff });
}

async fn tree_remove<E: Env>(env: &E, mm: u8, slot: u8) {
    env.step().await;
    env.world().trees.lock().unwrap()[mm as usize].retain(|v| v.slot != slot);
    env.emit(Event::TreeRemove { t: env.tid(), mm, slot });
}

fn mapping_of<E: Env>(env: &E, page: u32) -> Option<u8> {
    match env.world().folio_mapping[page as usize].load(Acquire) {
        0 => None,
        s => Some((s - 1) as u8),
    }
}

async fn mapping_load<E: Env>(env: &E, page: u32) -> Option<u8> {
    env.step().await;
    let slot = mapping_of(env, page);
    env.emit(Event::MappingLoad { t: env.tid(), page: page as u8, slot });
    slot
}

pub async fn mapping_store<E: Env>(env: &E, page: u32, slot: u8) {
    env.step().await;
    env.world().folio_mapping[page as usize].store(slot as u32 + 1, Release);
    env.emit(Event::MappingStore { t: env.tid(), page: page as u8, slot });
}

/// Map (setup) or zap the page-table mapping of the folio at `page`.
pub async fn folio_set_mapped<E: Env>(env: &E, page: u32, mapped: bool) {
    env.step().await;
    env.world().folio_mapped[page as usize].store(mapped as u32, Release);
    env.emit(Event::FolioMap { t: env.tid(), page: page as u8, mapped });
}

async fn folio_mapped<E: Env>(env: &E, page: u32) -> bool {
    env.step().await;
    let mapped = env.world().folio_mapped[page as usize].load(Acquire) != 0;
    env.emit(Event::MappedLoad { t: env.tid(), page: page as u8, mapped });
    mapped
}

/// `unmap_region`: zap the page tables of a detached VMA's range before the VMA is released.
async fn zap_range<E: Env>(env: &E, v: TreeEntry) {
    for page in v.start..v.end {
        if env.world().folio_mapped[page as usize].load(Relaxed) != 0 {
            folio_set_mapped(env, page, false).await;
        }
    }
}

/// Point the folios of `pages` that record `from` at `to` (the VMA now covering them).
async fn repoint_folios<E: Env>(env: &E, pages: std::ops::Range<u32>, from: u8, to: u8) {
    for page in pages {
        if mapping_of(env, page) == Some(from) {
            mapping_store(env, page, to).await;
        }
    }
}

// ---- the operations a program's threads perform ----

/// A freshly mapped anonymous VMA, as `__mmap_new_vma` builds it; `None` when the slab is empty.
pub async fn map_new<E: Env>(env: &E, mm: u8, r: Range) -> Option<u8> {
    let slot = vm_area_alloc(env).await?;
    set_range(env, slot, r).await;
    tree_insert(env, mm, slot, r).await;
    Some(slot)
}

async fn mmap<E: Env>(env: &E, addr: u32, len: u32, fail: bool) -> &'static str {
    let end = addr + len;
    if !env.world().range_is_free(PARENT_MM, addr, end) {
        return "noop";
    }
    if !fail {
        return match map_new(env, PARENT_MM, Range { start: addr, end, pgoff: addr }).await {
            Some(_) => "ok",
            None => "enomem",
        };
    }
    let Some(slot) = vm_area_alloc(env).await else { return "enomem" };
    set_range(env, slot, Range { start: addr, end, pgoff: addr }).await;
    error_path_release(env, slot).await;
    "enomem"
}

async fn munmap<E: Env>(env: &E, addr: u32) -> &'static str {
    let Some(v) = lookup(env, PARENT_MM, addr).await else { return "noop" };
    tree_remove(env, PARENT_MM, v.slot).await;
    zap_range(env, v).await;
    remove_vma(env, v.slot).await;
    "ok"
}

/// `__split_vma` with the new VMA above `addr`.
async fn split<E: Env>(env: &E, addr: u32, fail: bool) -> &'static str {
    let Some(v) = lookup(env, PARENT_MM, addr).await else { return "noop" };
    if addr == v.start {
        return "noop";
    }
    let Some((new, r)) = vm_area_dup(env, v.slot).await else { return "enomem" };
    if fail {
        error_path_release(env, new).await;
        return "enomem";
    }
    let moved_pgoff = if env.mutant() == Mutant::SplitNoPgoff { r.pgoff } else { r.pgoff + (addr - r.start) };
    let upper = Range { start: addr, end: r.end, pgoff: moved_pgoff };
    write_field(env, new, Field::Start, addr).await;
    write_field(env, new, Field::Pgoff, moved_pgoff).await;
    write_field(env, v.slot, Field::End, addr).await;
    tree_update(env, PARENT_MM, v.slot, Range { end: addr, ..r }).await;
    tree_insert(env, PARENT_MM, new, upper).await;
    repoint_folios(env, addr..r.end, v.slot, new).await;
    "ok"
}

/// Expand the VMA at `addr` over its adjacent successor, then `vma_complete` drops the successor.
async fn merge<E: Env>(env: &E, addr: u32) -> &'static str {
    let Some(v) = lookup(env, PARENT_MM, addr).await else { return "noop" };
    let Some(next) = env.world().next_vma(PARENT_MM, v.slot) else { return "noop" };
    if next.start != v.end {
        return "noop";
    }
    let Some(next) = lookup(env, PARENT_MM, next.start).await else { return "noop" };
    let pgoff = read_field(env, v.slot, Field::Pgoff).await;
    let next_pgoff = read_field(env, next.slot, Field::Pgoff).await;
    if next_pgoff != pgoff + (v.end - v.start) {
        return "noop";
    }
    write_field(env, v.slot, Field::End, next.end).await;
    tree_update(env, PARENT_MM, v.slot, Range { start: v.start, end: next.end, pgoff }).await;
    repoint_folios(env, next.start..next.end, next.slot, v.slot).await;
    if env.mutant() == Mutant::MergePutAttached {
        vma_put(env, next.slot).await;
        tree_remove(env, PARENT_MM, next.slot).await;
        return "ok";
    }
    tree_remove(env, PARENT_MM, next.slot).await;
    read_field(env, next.slot, Field::Policy).await;
    vma_put(env, next.slot).await;
    "ok"
}

/// `dup_mmap` for one VMA: the copy goes into the child mm.
async fn fork<E: Env>(env: &E, addr: u32, fail: bool) -> &'static str {
    let Some(v) = lookup(env, PARENT_MM, addr).await else { return "noop" };
    if !env.world().range_is_free(CHILD_MM, v.start, v.end) {
        return "noop";
    }
    let Some((tmp, r)) = vm_area_dup(env, v.slot).await else { return "enomem" };
    if fail {
        error_path_release(env, tmp).await;
        return "enomem";
    }
    tree_insert(env, CHILD_MM, tmp, r).await;
    "ok"
}

async fn get_ref<E: Env>(env: &E, addr: u32, held: &mut Vec<u8>) -> &'static str {
    let Some(v) = lookup(env, PARENT_MM, addr).await else { return "noop" };
    if vma_get(env, v.slot).await {
        held.push(v.slot);
        "held"
    } else {
        "missed"
    }
}

/// The lazy anon reverse-map walk: the folio records the VMA itself, so the walker must pin that
/// VMA with `vma_get` under RCU and then make sure it is still the VMA mapping the folio.
/// As `folio_get_anon_vma` does for an anon_vma, it trusts the recorded pointer only if the folio
/// is still mapped after reading it: the VMA is released only after its pages are zapped, so it
/// was alive at that check, and the RCU read-side section keeps its memory a VMA from then on.
async fn rmap<E: Env>(env: &E, page: u32) -> &'static str {
    let Some(slot) = mapping_load(env, page).await else { return "unmapped" };
    if !folio_mapped(env, page).await {
        return "unmapped";
    }
    if !vma_get(env, slot).await {
        return if env.config().vma_ref { "dead" } else { "noref" };
    }
    if env.mutant() == Mutant::RmapLocksMm {
        mmap_lock(env, LockMode::Read).await;
        mmap_unlock(env, LockMode::Read).await;
    }
    if env.mutant() != Mutant::RmapNoRecheck {
        // The same three facts as before the get, now with the VMA pinned: still recorded, still
        // mapped (else the slot may hold a recycled VMA that merely looks right), and covering
        // the folio's index.
        let again = mapping_load(env, page).await;
        let still_mapped = folio_mapped(env, page).await;
        let start = read_field(env, slot, Field::Start).await;
        let end = read_field(env, slot, Field::End).await;
        let pgoff = read_field(env, slot, Field::Pgoff).await;
        let maps = again == Some(slot)
            && still_mapped
            && pgoff <= page
            && page - pgoff < end.saturating_sub(start);
        if !maps {
            vma_put(env, slot).await;
            return "stale";
        }
    }
    env.step().await;
    env.emit(Event::Use { t: env.tid(), slot, page: page as u8 });
    vma_put(env, slot).await;
    "walked"
}

/// One operation of a program thread. `held` is the stack of references the thread owns.
pub async fn run_op<E: Env>(env: &E, op: &Op, held: &mut Vec<u8>) -> &'static str {
    match op.kind {
        OpKind::Put => match held.pop() {
            Some(slot) => {
                vma_put(env, slot).await;
                "ok"
            }
            None => "noop",
        },
        OpKind::Rmap => {
            if op.a >= PAGES {
                return "noop";
            }
            env.world().rcu.read_lock(env).await;
            let outcome = rmap(env, op.a).await;
            if !(outcome == "stale" && env.mutant() == Mutant::RmapLeaksRcu) {
                env.world().rcu.read_unlock(env).await;
            }
            outcome
        }
        kind => {
            let mode = if kind == OpKind::Get { LockMode::Read } else { LockMode::Write };
            mmap_lock(env, mode).await;
            let outcome = match kind {
                OpKind::Mmap => mmap(env, op.a, op.b, op.fail).await,
                OpKind::Munmap => munmap(env, op.a).await,
                OpKind::Split => split(env, op.a, op.fail).await,
                OpKind::Merge => merge(env, op.a).await,
                OpKind::Fork => fork(env, op.a, op.fail).await,
                OpKind::Get => get_ref(env, op.a, held).await,
                OpKind::Put | OpKind::Rmap => unreachable!("handled above"),
            };
            mmap_unlock(env, mode).await;
            outcome
        }
    }
}

/// A program thread: its operations in order, each bracketed by events.
pub async fn run_thread<E: Env>(env: &E, ops: &[Op]) {
    let mut held = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        env.emit(Event::OpBegin { t: env.tid(), op: i as u8 });
        let outcome = run_op(env, op, &mut held).await;
        env.emit(Event::OpEnd { t: env.tid(), op: i as u8, outcome });
    }
}
