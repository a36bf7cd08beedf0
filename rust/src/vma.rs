//! VMA objects and the mm paths the seed patch touches: `vm_area_alloc`/`vm_area_dup` with
//! `vma_rcuref_init`, `vma_get`/`vma_put`, `remove_vma`, `__split_vma`, the merge's
//! `vma_complete`, `dup_mmap`, the error paths that now end in `vma_put`, and the lazy anon
//! reverse-map reader that is the reason VMAs need a reference count at all.

use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crate::env::{twice, Env};
use crate::event::{Event, Field, LockMode, Order};
use crate::mutant::Mutant;
use crate::program::{Op, OpKind};
use crate::rcu;
use crate::rcuref;
use crate::world::{MappingPolicy, RmapLock, TreeEntry, World, PAGES, SLOTS, WRITER};

type Ready = fn(&World) -> bool;

pub const PARENT_MM: u8 = 0;
pub const CHILD_MM: u8 = 1;

fn field_cell<E: Env>(env: &E, slot: u8, field: Field) -> &AtomicU32 {
    let s = &env.world().slots[slot as usize];
    match field {
        Field::Start => &s.start,
        Field::End => &s.end,
        Field::Pgoff => &s.pgoff,
        Field::File => &s.file,
        Field::Policy => &s.policy,
        Field::Root => &s.root,
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
    if root_policy(env) {
        write_field(env, slot, Field::Root, 0).await;
    }
    vma_rcuref_init(env, slot).await;
    Some(slot)
}

fn root_policy<E: Env>(env: &E) -> bool {
    env.config().mapping == MappingPolicy::Root
}

/// `mapping=root`: the root VMA of `slot` (itself, or the VMA it was cut from).
async fn root_of<E: Env>(env: &E, slot: u8) -> u8 {
    match read_field(env, slot, Field::Root).await {
        0 => slot,
        r => (r - 1) as u8,
    }
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
    if root_policy(env) {
        // A copy starts as its own root; a split then makes it share the original's.
        write_field(env, new, Field::Root, 0).await;
    }
    if env.mutant() != Mutant::DupNoReinit {
        vma_rcuref_init(env, new).await;
    }
    Some((new, r))
}

/// `vm_area_free`. With `mapping=root` a VMA cut from a root drops the reference that kept the
/// root alive for the folios they share (as an anon_vma drops its root's reference in
/// `__put_anon_vma`); the last one frees a root that is no longer in any tree.
pub async fn vm_area_free<E: Env>(env: &E, slot: u8) {
    if root_policy(env) && env.config().vma_ref {
        let root = root_of(env, slot).await;
        if root != slot && rcuref::put(env, root, env.config().put_preempt).await {
            env.world().slab.free(env, root).await;
        }
    }
    env.world().slab.free(env, slot).await;
}

// vma_get/vma_put, expanded for both runners (env.rs); freeing is too cold to expand twice.
twice! {
    [
        use crate::rcuref as rcuref;
        cold fn vm_area_free(env: &E, slot: u8);
    ]

    /// `vma_get`. With `CONFIG_VMA_REF=n` taking a reference is not allowed: warn (debug builds)
    /// and return NULL.
    pub fn vma_get(env: &E, slot: u8) -> bool {
        if !env.config().vma_ref {
            if env.config().debug_vm {
                env.emit(Event::Warn { t: env.tid(), slot, what: crate::event::Warning::VmaGetDisabled });
            }
            return false;
        }
        aw!(rcuref::get(env, slot))
    }

    /// `vma_put`: frees the VMA when this was the last reference (at once with `CONFIG_VMA_REF=n`).
    pub fn vma_put(env: &E, slot: u8) -> bool {
        aw!(vma_put_as(env, slot, env.config().put_preempt))
    }

    /// `vma_put` through `rcuref_put` (`preempt`) or `rcuref_put_rcusafe`.
    #[inline(always)]
    fn vma_put_as(env: &E, slot: u8, preempt: bool) -> bool {
        let release = !env.config().vma_ref || aw!(rcuref::put(env, slot, preempt));
        if release {
            aw!(vm_area_free(env, slot));
        }
        release
    }
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

fn lock_free_for_writer(w: &World) -> bool {
    w.mmap_lock.load(Relaxed) == 0
}

fn lock_free_for_reader(w: &World) -> bool {
    w.mmap_lock.load(Relaxed) & WRITER == 0
}

/// One attempt at an rwsem (`WRITER` bit or a count of readers): `down_write_trylock` or
/// `down_read_trylock`.
fn rwsem_try(lock: &AtomicU32, mode: LockMode) -> bool {
    match mode {
        LockMode::Write => lock.compare_exchange(0, WRITER, Acquire, Relaxed).is_ok(),
        LockMode::Read => {
            let v = lock.load(Relaxed);
            v & WRITER == 0 && lock.compare_exchange(v, v + 1, Acquire, Relaxed).is_ok()
        }
    }
}

/// `down_write`/`down_read`: attempts until one succeeds, sleeping (`wait`) until `ready` says
/// the lock could be had. Returns right after the successful attempt, so the caller records
/// the acquisition in the same step.
async fn rwsem_down<E: Env>(env: &E, lock: &AtomicU32, mode: LockMode, ready: Ready) {
    while !rwsem_try(lock, mode) {
        env.wait(ready).await;
    }
}

fn rwsem_up(lock: &AtomicU32, mode: LockMode) {
    match mode {
        LockMode::Write => lock.store(0, Release),
        LockMode::Read => {
            lock.fetch_sub(1, Release);
        }
    }
}

async fn mmap_lock<E: Env>(env: &E, mode: LockMode) {
    let ready = match mode {
        LockMode::Write => lock_free_for_writer,
        LockMode::Read => lock_free_for_reader,
    };
    env.step().await;
    rwsem_down(env, &env.world().mmap_lock, mode, ready).await;
    env.emit(Event::Lock { t: env.tid(), mode });
}

async fn mmap_unlock<E: Env>(env: &E, mode: LockMode) {
    env.step().await;
    rwsem_up(&env.world().mmap_lock, mode);
    env.emit(Event::Unlock { t: env.tid(), mode });
}

// ---- rmap_lock=rwsem: the root VMA's rmap rwsem ----

/// `wait` takes a plain function, so each slot's lock has its own pair of them.
fn rmap_free_for_writer<const S: usize>(w: &World) -> bool {
    w.slots[S].rmap_lock.load(Relaxed) == 0
}

fn rmap_free_for_reader<const S: usize>(w: &World) -> bool {
    w.slots[S].rmap_lock.load(Relaxed) & WRITER == 0
}

macro_rules! per_slot {
    ($f:ident) => {
        [$f::<0>, $f::<1>, $f::<2>, $f::<3>, $f::<4>, $f::<5>, $f::<6>, $f::<7>]
    };
}
const RMAP_WRITER_READY: [Ready; SLOTS] = per_slot!(rmap_free_for_writer);
const RMAP_READER_READY: [Ready; SLOTS] = per_slot!(rmap_free_for_reader);

fn rmap_locking<E: Env>(env: &E) -> bool {
    env.config().rmap_lock == RmapLock::Rwsem
}

async fn rmap_lock<E: Env>(env: &E, root: u8, mode: LockMode) {
    let ready = match mode {
        LockMode::Write => RMAP_WRITER_READY[root as usize],
        LockMode::Read => RMAP_READER_READY[root as usize],
    };
    env.step().await;
    rwsem_down(env, &env.world().slots[root as usize].rmap_lock, mode, ready).await;
    env.emit(Event::RmapLock { t: env.tid(), slot: root, mode });
}

/// `down_read_trylock` of the root's rmap rwsem: a failed attempt changes nothing.
async fn rmap_trylock_read<E: Env>(env: &E, root: u8) -> bool {
    env.step().await;
    let taken = rwsem_try(&env.world().slots[root as usize].rmap_lock, LockMode::Read);
    if taken {
        env.emit(Event::RmapLock { t: env.tid(), slot: root, mode: LockMode::Read });
    }
    taken
}

async fn rmap_unlock<E: Env>(env: &E, root: u8, mode: LockMode) {
    env.step().await;
    rwsem_up(&env.world().slots[root as usize].rmap_lock, mode);
    env.emit(Event::RmapUnlock { t: env.tid(), slot: root, mode });
}

/// `vma_prepare`'s lock for a change to a published VMA's range: the root's rmap rwsem for
/// write (nothing under `rmap_lock=none`). Returns the lock to pass to `rmap_complete`.
async fn rmap_prepare<E: Env>(env: &E, root: u8) -> Option<u8> {
    if !rmap_locking(env) {
        return None;
    }
    rmap_lock(env, root, LockMode::Write).await;
    Some(root)
}

/// `vma_complete`'s unlock.
async fn rmap_complete<E: Env>(env: &E, held: Option<u8>) {
    if let Some(root) = held {
        rmap_unlock(env, root, LockMode::Write).await;
    }
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
    let zap_late = env.mutant() == Mutant::MunmapZapAfterRelease;
    if !zap_late {
        zap_range(env, v).await;
    }
    remove_vma(env, v.slot).await;
    if zap_late {
        zap_range(env, v).await;
    }
    "ok"
}

/// `__split_vma`: the new VMA takes the part above `addr`, or with `new_below` the part below
/// it, and then the original's `vm_start` and `vm_pgoff` move up under anyone holding it.
async fn split<E: Env>(env: &E, addr: u32, new_below: bool, fail: bool) -> &'static str {
    let Some(v) = lookup(env, PARENT_MM, addr).await else { return "noop" };
    if addr == v.start {
        return "noop";
    }
    let Some((new, r)) = vm_area_dup(env, v.slot).await else { return "enomem" };
    let root = if fail { None } else { pin_root(env, v.slot).await };
    if fail || root == Some(None) {
        error_path_release(env, new).await;
        return "enomem";
    }
    let root = root.flatten();
    let moved_pgoff = if env.mutant() == Mutant::SplitNoPgoff { r.pgoff } else { r.pgoff + (addr - r.start) };
    // The new VMA's own range is set before `vma_prepare` (nobody can reach it yet); the
    // original's, which walkers can reach, changes only under the lock.
    if new_below {
        write_field(env, new, Field::End, addr).await;
        let held = rmap_prepare(env, root.unwrap_or(v.slot)).await;
        write_field(env, v.slot, Field::Start, addr).await;
        write_field(env, v.slot, Field::Pgoff, moved_pgoff).await;
        tree_update(env, PARENT_MM, v.slot, Range { start: addr, end: r.end, pgoff: moved_pgoff }).await;
        tree_insert(env, PARENT_MM, new, Range { end: addr, ..r }).await;
        share_folios(env, r.start..addr, v.slot, new, root).await;
        rmap_complete(env, held).await;
        return "ok";
    }
    let upper = Range { start: addr, end: r.end, pgoff: moved_pgoff };
    write_field(env, new, Field::Start, addr).await;
    write_field(env, new, Field::Pgoff, moved_pgoff).await;
    let held = rmap_prepare(env, root.unwrap_or(v.slot)).await;
    write_field(env, v.slot, Field::End, addr).await;
    tree_update(env, PARENT_MM, v.slot, Range { end: addr, ..r }).await;
    tree_insert(env, PARENT_MM, new, upper).await;
    share_folios(env, addr..r.end, v.slot, new, root).await;
    rmap_complete(env, held).await;
    "ok"
}

/// `mapping=root`: the split piece's reference on the root of `orig` (the original pins it
/// already, or is it, so under the write lock it is alive). `None`: no root policy; `Some(None)`:
/// the root cannot take another reference (an inc-not-zero get at its limit), so the split fails
/// like an allocation would. Without CONFIG_VMA_REF nothing can pin the root: it is recorded all
/// the same, and the oracle's VMA invariant sees it freed under the pieces.
async fn pin_root<E: Env>(env: &E, orig: u8) -> Option<Option<u8>> {
    if !root_policy(env) {
        return None;
    }
    let root = root_of(env, orig).await;
    if env.config().vma_ref && !vma_get(env, root).await {
        return Some(None);
    }
    Some(Some(root))
}

/// After a split, `new` covers folios that `orig` covered. `mapping=repoint` points them at
/// `new`; `mapping=root` leaves them naming the root, which `new` now pins: the reader's way
/// from a folio to its VMA then goes through the root, which must outlive every VMA covering
/// its folios.
async fn share_folios<E: Env>(env: &E, pages: std::ops::Range<u32>, orig: u8, new: u8, root: Option<u8>) {
    match root {
        None => repoint_folios(env, pages, orig, new).await,
        Some(root) => write_field(env, new, Field::Root, root as u32 + 1).await,
    }
}

/// How a merge joins the VMA at its address with what follows it (`vma_merge_existing_range`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum MergeKind {
    /// It expands over its successor, which is removed.
    AbsorbNext,
    /// Its successor expands down over it (the successor's `vm_start` and `vm_pgoff` move),
    /// and it is removed.
    IntoNext,
    /// It expands over the next two, and `vma_complete` removes both (`remove`, `remove2`).
    AbsorbBoth,
}

/// Join the VMA at `addr` with its adjacent successor(s), then `vma_complete` drops each VMA
/// that the merge removed.
async fn merge<E: Env>(env: &E, addr: u32, kind: MergeKind) -> &'static str {
    let Some(v) = lookup(env, PARENT_MM, addr).await else { return "noop" };
    let mut chain = vec![v];
    let len = if kind == MergeKind::AbsorbBoth { 3 } else { 2 };
    while chain.len() < len {
        let last = chain[chain.len() - 1];
        let Some(next) = env.world().next_vma(PARENT_MM, last.slot) else { return "noop" };
        if next.start != last.end {
            return "noop";
        }
        let Some(next) = lookup(env, PARENT_MM, next.start).await else { return "noop" };
        chain.push(next);
    }
    let mut pgoffs = Vec::with_capacity(len);
    for w in &chain {
        pgoffs.push(read_field(env, w.slot, Field::Pgoff).await);
    }
    if (1..len).any(|i| pgoffs[i] != pgoffs[i - 1] + (chain[i - 1].end - chain[i - 1].start)) {
        return "noop";
    }
    // As merging needs compatible anon_vmas, under `mapping=root` it needs the same root:
    // one VMA cannot stand for folios that name two roots.
    let mut root = None;
    if root_policy(env) {
        let mut roots = Vec::with_capacity(len);
        for w in &chain {
            roots.push(root_of(env, w.slot).await);
        }
        if roots.iter().any(|&r| r != roots[0]) {
            return "noop";
        }
        root = Some(roots[0]);
    }
    let whole = Range { start: chain[0].start, end: chain[len - 1].end, pgoff: pgoffs[0] };
    let (survivor, removed) = match kind {
        MergeKind::IntoNext => (chain[1], vec![chain[0]]),
        _ => (chain[0], chain[1..].to_vec()),
    };
    let held = rmap_prepare(env, root.unwrap_or(survivor.slot)).await;
    if kind == MergeKind::IntoNext {
        write_field(env, survivor.slot, Field::Start, whole.start).await;
        write_field(env, survivor.slot, Field::Pgoff, whole.pgoff).await;
    } else {
        write_field(env, survivor.slot, Field::End, whole.end).await;
    }
    tree_update(env, PARENT_MM, survivor.slot, whole).await;
    let repoint_late = env.mutant() == Mutant::MergePutBeforeRepoint;
    let repoint_remove2_late = env.mutant() == Mutant::MergeRepointRemove2AfterPut;
    if !root_policy(env) && !repoint_late {
        let skip_remove2 = matches!(env.mutant(), Mutant::MergeSkipsRemove2Folios | Mutant::MergeRepointRemove2AfterPut);
        let repointed = if skip_remove2 { 1 } else { removed.len() };
        for gone in &removed[..repointed] {
            repoint_folios(env, gone.start..gone.end, gone.slot, survivor.slot).await;
        }
    }
    if env.mutant() == Mutant::MergePutAttached {
        for gone in &removed {
            vma_put(env, gone.slot).await;
            tree_remove(env, PARENT_MM, gone.slot).await;
        }
        rmap_complete(env, held).await;
        return "ok";
    }
    for gone in &removed {
        tree_remove(env, PARENT_MM, gone.slot).await;
    }
    rmap_complete(env, held).await;
    let preempt = env.config().put_preempt && env.mutant() != Mutant::MergePutRcusafe;
    for (i, gone) in removed.iter().enumerate() {
        // The second pass of vma_complete's loop, for remove2 (a three-way merge only).
        let remove2 = i == 1;
        read_field(env, gone.slot, Field::Policy).await;
        let rcusafe = remove2 && env.mutant() == Mutant::MergeRemove2PutRcusafe;
        vma_put_as(env, gone.slot, preempt && !rcusafe).await;
        let late = repoint_late || remove2 && repoint_remove2_late;
        if late && !root_policy(env) {
            repoint_folios(env, gone.start..gone.end, gone.slot, survivor.slot).await;
        }
    }
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
/// `pending` receives the reference the mutant `rmap_put_after_unlock` drops after the section.
/// `in_rcu` says whether the walk ends inside its read-side section (the mutant
/// `rmap_sleep_stays_out_of_rcu` leaves it for good on the sleep path).
async fn rmap<E: Env>(env: &E, page: u32, pending: &mut Option<u8>, in_rcu: &mut bool) -> &'static str {
    let Some(slot) = mapping_load(env, page).await else { return "unmapped" };
    if !folio_mapped(env, page).await {
        return "unmapped";
    }
    let unlocked = env.mutant() == Mutant::RmapUnlockBeforeGet;
    if unlocked {
        rcu::read_unlock(env).await;
    }
    let got = vma_get(env, slot).await;
    if unlocked {
        rcu::read_lock(env).await;
    }
    if !got {
        return if env.config().vma_ref { "dead" } else { "noref" };
    }
    if env.mutant() == Mutant::RmapLocksMm {
        mmap_lock(env, LockMode::Read).await;
        mmap_unlock(env, LockMode::Read).await;
    }
    // `rmap_lock=rwsem`: the folio names a root (under `mapping=repoint` every VMA is its own),
    // whose rwsem orders this walk against every split and merge of the VMAs cut from it.
    let locked = rmap_locking(env);
    if locked {
        *in_rcu = rmap_lock_pinned(env, slot).await;
    }
    let outcome = validate_and_use(env, page, slot).await;
    if locked {
        rmap_unlock(env, slot, LockMode::Read).await;
    }
    drop_reader_ref(env, slot, pending).await;
    outcome
}

/// The reader's reference on the VMA it walked: dropped inside the RCU read-side section, or
/// with the mutant left for `run_op` to drop after it.
async fn drop_reader_ref<E: Env>(env: &E, slot: u8, pending: &mut Option<u8>) {
    if env.mutant() == Mutant::RmapPutAfterUnlock {
        *pending = Some(slot);
    } else {
        vma_put(env, slot).await;
    }
}

/// With `slot` pinned (and, under `rmap_lock=rwsem`, its rwsem held): make sure it is still the
/// VMA mapping the folio, then act on the folio through it.
async fn validate_and_use<E: Env>(env: &E, page: u32, slot: u8) -> &'static str {
    if env.mutant() == Mutant::RmapRecheckMappingOnly {
        if mapping_load(env, page).await != Some(slot) {
            return "stale";
        }
    } else if env.mutant() != Mutant::RmapNoRecheck {
        // The same three facts as before the get, now with the VMA pinned: still recorded, still
        // mapped (else the slot may hold a recycled VMA that merely looks right), and covering
        // the folio's index (a root need not cover it: the VMA that does is looked up below).
        let again = mapping_load(env, page).await;
        let still_mapped = folio_mapped(env, page).await;
        let in_range = root_policy(env) || covers(env, slot, page).await;
        if !(again == Some(slot) && still_mapped && in_range) {
            return "stale";
        }
    }
    if root_policy(env) {
        return walk_from_root(env, page, slot).await;
    }
    use_folio(env, slot, page).await;
    "walked"
}

/// Take the pinned VMA's rmap rwsem for read the way `folio_lock_anon_vma_read` takes an
/// anon_vma's: a trylock inside the RCU section; failing that, the reference keeps the VMA, so
/// the walker leaves the section to sleep on the lock (no sleeping under RCU) and re-enters it
/// afterwards, as the rest of the walk (the tree walk of `mapping=root`) needs RCU.
/// Returns whether the walker is inside its RCU read-side section again.
async fn rmap_lock_pinned<E: Env>(env: &E, slot: u8) -> bool {
    if rmap_trylock_read(env, slot).await {
        return true;
    }
    rcu::read_unlock(env).await;
    rmap_lock(env, slot, LockMode::Read).await;
    if env.mutant() == Mutant::RmapSleepStaysOutOfRcu {
        return false;
    }
    rcu::read_lock(env).await;
    true
}

/// Whether `slot`'s range covers the folio at `page` (read field by field, as a racing writer
/// may be changing them).
async fn covers<E: Env>(env: &E, slot: u8, page: u32) -> bool {
    let start = read_field(env, slot, Field::Start).await;
    let end = read_field(env, slot, Field::End).await;
    let pgoff = read_field(env, slot, Field::Pgoff).await;
    pgoff <= page && page - pgoff < end.saturating_sub(start)
}

async fn use_folio<E: Env>(env: &E, slot: u8, page: u32) {
    env.step().await;
    env.emit(Event::Use { t: env.tid(), slot, page: page as u8 });
}

/// `mapping=root`, with the root pinned: find the VMA that covers the folio now. This is an
/// inference about patch 09 (not recovered): the folio's address follows from its index since
/// `vm_start - vm_pgoff * PAGE_SIZE` is fixed across split and merge, and the root's mm is
/// walked under RCU as `lock_vma_under_rcu` walks the maple tree. The VMA found is only
/// type-stable, so it is pinned and then checked to share the root and cover the folio.
async fn walk_from_root<E: Env>(env: &E, page: u32, root: u8) -> &'static str {
    let Some(v) = lookup(env, PARENT_MM, page).await else { return "stale" };
    if v.slot == root {
        if !covers(env, root, page).await {
            return "stale";
        }
        use_folio(env, root, page).await;
        return "walked";
    }
    if !vma_get(env, v.slot).await {
        return "stale";
    }
    let same_root = root_of(env, v.slot).await == root;
    // The held rwsem is the root's: it keeps the range still only for a VMA cut from that root,
    // so under the lock the range is read once the root is known to be the same.
    let valid = if rmap_locking(env) {
        same_root && covers(env, v.slot, page).await
    } else {
        covers(env, v.slot, page).await && same_root
    };
    if valid {
        use_folio(env, v.slot, page).await;
    }
    vma_put(env, v.slot).await;
    if valid {
        "walked"
    } else {
        "stale"
    }
}

/// One operation of a program thread. `held` is the stack of references the thread owns.
pub async fn run_op<E: Env>(env: &E, op: &Op, held: &mut Vec<u8>) -> &'static str {
    match op.kind {
        OpKind::Put => match held.pop() {
            Some(slot) => {
                let preempt = env.config().put_preempt && env.mutant() != Mutant::HolderPutRcusafe;
                vma_put_as(env, slot, preempt).await;
                "ok"
            }
            None => "noop",
        },
        OpKind::Rmap => {
            if op.a >= PAGES {
                return "noop";
            }
            rcu::read_lock(env).await;
            let mut pending = None;
            let mut in_rcu = true;
            let outcome = rmap(env, op.a, &mut pending, &mut in_rcu).await;
            if in_rcu && !(outcome == "stale" && env.mutant() == Mutant::RmapLeaksRcu) {
                rcu::read_unlock(env).await;
            }
            if let Some(slot) = pending {
                vma_put_as(env, slot, false).await;
            }
            outcome
        }
        OpKind::Get if env.mutant() == Mutant::GetUnlockedLookup => get_ref(env, op.a, held).await,
        kind => {
            let mode = if kind == OpKind::Get { LockMode::Read } else { LockMode::Write };
            mmap_lock(env, mode).await;
            let outcome = match kind {
                OpKind::Mmap => mmap(env, op.a, op.b, op.fail).await,
                OpKind::Munmap => munmap(env, op.a).await,
                OpKind::Split => split(env, op.a, op.b == 1, op.fail).await,
                OpKind::Merge => {
                    let kind = [MergeKind::AbsorbNext, MergeKind::IntoNext, MergeKind::AbsorbBoth][op.b as usize];
                    merge(env, op.a, kind).await
                }
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
