//! The mutant catalog: realistic mistakes in the code the seed patch touches.
//!
//! A mutant is a switch tested at one point of the real code path (grep for its variant name to
//! find the place); no algorithm has a mutant-only copy. Each entry names the kernel code it
//! corrupts and the failure class the oracle should report.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mutant {
    None,
    PutReread,
    PutNoPreempt,
    PutNoCmpxchg,
    PutRelaxed,
    PutNoAcquire,
    GetIgnoresDead,
    NoSaturation,
    DupNoReinit,
    ErrorDirectFree,
    RemoveDoublePut,
    RmapNoRecheck,
    SplitNoPgoff,
    RmapLeaksRcu,
    PutLeaksPreempt,
    RmapLocksMm,
    MergePutAttached,
    GetDeadStoresNoref,
    PutCasFailFreesDead,
    GpIgnoresPreempt,
    RmapUnlockBeforeGet,
    RmapRecheckMappingOnly,
    GetUnlockedLookup,
    MergePutBeforeRepoint,
    MergeSkipsRemove2Folios,
    PutCmpxchgLoop,
    PutPreemptFastOnly,
    MunmapZapAfterRelease,
    MergePutRcusafe,
    RmapPutAfterUnlock,
    HolderPutRcusafe,
    MergeRemove2PutRcusafe,
    MergeRepointRemove2AfterPut,
    PutAcquireBeforeCmpxchg,
    RmapSleepStaysOutOfRcu,
    GetRecentreCmpxchgRevives,
}

pub struct Entry {
    pub mutant: Mutant,
    pub name: &'static str,
    pub kernel: &'static str,
    pub expect: &'static str,
}

pub const CATALOG: &[Entry] = &[
    Entry {
        mutant: Mutant::None,
        name: "none",
        kernel: "the code as the seed patch and lib/rcuref.c have it",
        expect: "whatever the configuration itself allows",
    },
    Entry {
        mutant: Mutant::PutReread,
        name: "put_reread",
        kernel: "rcuref_put_slowpath() before 'rcuref: Plug slowpath race in rcuref_put()': \
                 the slow path re-reads the counter instead of using the fetch-sub result",
        expect: "unexpected-warning / not-linearizable (false 'imbalanced put()' after a racing get+put)",
    },
    Entry {
        mutant: Mutant::PutNoPreempt,
        name: "put_no_preempt",
        kernel: "rcuref_put() without preempt_disable(): nothing holds the grace period off \
                 between the fetch-sub and the cmpxchg",
        expect: "use-after-free (cmpxchg on a VMA freed by a racing get+put)",
    },
    Entry {
        mutant: Mutant::PutNoCmpxchg,
        name: "put_no_cmpxchg",
        kernel: "rcuref_put_slowpath(): NOREF is marked DEAD with a plain store instead of \
                 cmpxchg(NOREF, DEAD)",
        expect: "not-linearizable / double-free (two puts both see NOREF and both free)",
    },
    Entry {
        mutant: Mutant::PutRelaxed,
        name: "put_relaxed",
        kernel: "__rcuref_put(): atomic_sub_return_relaxed instead of _release",
        expect: "data-race (a holder's access is not ordered before another thread's free)",
    },
    Entry {
        mutant: Mutant::PutNoAcquire,
        name: "put_no_acquire",
        kernel: "rcuref_put_slowpath(): smp_acquire__after_ctrl_dep() dropped after the cmpxchg",
        expect: "data-race (the free is not ordered after other holders' accesses)",
    },
    Entry {
        mutant: Mutant::GetIgnoresDead,
        name: "get_ignores_dead",
        kernel: "rcuref_get_slowpath(): the dead-zone check is missing, a get on a released \
                 VMA succeeds",
        expect: "not-linearizable / use-after-free (a reference on a freed VMA)",
    },
    Entry {
        mutant: Mutant::NoSaturation,
        name: "no_saturation",
        kernel: "rcuref_get_slowpath(): no saturation handling (no WARN, no SATURATED store)",
        expect: "not-linearizable (missing 'saturated' warning, counter leaves the zone)",
    },
    Entry {
        mutant: Mutant::DupNoReinit,
        name: "dup_no_reinit",
        kernel: "vm_area_dup() without vma_rcuref_init(new): the copy keeps the counter the \
                 slot had in its previous life",
        expect: "not-linearizable / leak (DEAD counter on a live VMA, imbalanced put)",
    },
    Entry {
        mutant: Mutant::ErrorDirectFree,
        name: "error_direct_free",
        kernel: "an error path (mmap, split, fork) keeps vm_area_free(new) instead of vma_put(new)",
        expect: "free-while-held (a reader's reference on the recycled slot is ignored)",
    },
    Entry {
        mutant: Mutant::RemoveDoublePut,
        name: "remove_double_put",
        kernel: "remove_vma() drops the reference twice",
        expect: "not-linearizable / free-while-held (imbalanced put, or a reader's reference is stolen)",
    },
    Entry {
        mutant: Mutant::RmapNoRecheck,
        name: "rmap_no_recheck",
        kernel: "the reverse-map reader trusts the VMA after vma_get() without re-checking \
                 that it still maps the folio",
        expect: "bad-use (rmap_one on a VMA that does not map the folio)",
    },
    Entry {
        mutant: Mutant::SplitNoPgoff,
        name: "split_no_pgoff",
        kernel: "__split_vma(): the new VMA's vm_pgoff is not advanced with vm_start",
        expect: "vma-invariant (vm_start - vm_pgoff * PAGE_SIZE changes across the split)",
    },
    Entry {
        mutant: Mutant::RmapLeaksRcu,
        name: "rmap_leaks_rcu",
        kernel: "the reverse-map walk returns early on a stale VMA without rcu_read_unlock()",
        expect: "unbalanced-rcu with lockdep=on (the walk's op ends inside its read-side section)",
    },
    Entry {
        mutant: Mutant::PutLeaksPreempt,
        name: "put_leaks_preempt",
        kernel: "rcuref_put() returns from its fast path without preempt_enable()",
        expect: "unbalanced-rcu with lockdep=on (the op ends with preemption disabled)",
    },
    Entry {
        mutant: Mutant::RmapLocksMm,
        name: "rmap_locks_mm",
        kernel: "the reverse-map walk takes mmap_read_lock() inside its RCU read-side section \
                 to look the VMA up again",
        expect: "might-sleep with lockdep=on (a sleeping lock inside an RCU read-side section)",
    },
    Entry {
        mutant: Mutant::MergePutAttached,
        name: "merge_put_attached",
        kernel: "vma_complete() drops the removed VMA with vma_put() before detaching it from \
                 the tree",
        expect: "vma-not-detached (vm_area_free of a VMA still in the tree)",
    },
    // The hard tier: each needs three threads or two well-placed preemptions (BENCHMARKS.md).
    Entry {
        mutant: Mutant::GetDeadStoresNoref,
        name: "get_dead_stores_noref",
        kernel: "rcuref_get_slowpath(): a get that finds the counter dead re-centres it at \
                 RCUREF_NOREF instead of RCUREF_DEAD (the two ends of the dead zone confused); \
                 the next get then lands on ONEREF and succeeds",
        expect: "not-linearizable / double-free (a second reader revives a freed VMA; needs two \
                 readers parked between folio_mapped() and vma_get() across a munmap)",
    },
    Entry {
        mutant: Mutant::PutCasFailFreesDead,
        name: "put_cas_fail_frees_dead",
        kernel: "rcuref_put_slowpath(): a failed try_cmpxchg(NOREF, DEAD) whose updated value is \
                 already DEAD is taken as 'released' (as if marking dead were idempotent)",
        expect: "not-linearizable / double-free (a reader revives the VMA, drops it and frees it \
                 inside the window between the last put's fetch-sub and its cmpxchg; both puts \
                 then report the release)",
    },
    Entry {
        mutant: Mutant::GpIgnoresPreempt,
        name: "gp_ignores_preempt",
        kernel: "call_rcu() whose grace period waits only for rcu_read_lock() readers, not for \
                 preempt-disabled regions (PREEMPT_RCU before the flavours were consolidated in \
                 4.20): rcuref_put()'s preempt_disable() no longer holds the free off",
        expect: "bad-reclaim (the grace period of a racing get+put's free ends while the last \
                 put, preemption disabled, is between its fetch-sub and its cmpxchg)",
    },
    Entry {
        mutant: Mutant::RmapUnlockBeforeGet,
        name: "rmap_unlock_before_get",
        kernel: "the reverse-map reader ends its RCU read-side section after checking \
                 folio_mapped() and before vma_get() (re-entering it afterwards), so nothing keeps \
                 the VMA's memory from being reclaimed in between",
        expect: "use-after-free (vma_get on a reclaimed slot)",
    },
    Entry {
        mutant: Mutant::RmapRecheckMappingOnly,
        name: "rmap_recheck_mapping_only",
        kernel: "the reverse-map reader's re-check after vma_get() only compares folio->mapping \
                 again, trusting that a VMA the folio still records covers it; a split that has \
                 shrunk the VMA but not yet re-pointed the folio breaks that",
        expect: "bad-use with rmap_lock=none (rmap_one on a VMA that no longer covers the folio, \
                 inside a split; the rmap lock keeps the walker out of that window, so the mistake \
                 is the lockless walker's)",
    },
    Entry {
        mutant: Mutant::GetUnlockedLookup,
        name: "get_unlocked_lookup",
        kernel: "a vma_get() caller that looks the VMA up without mmap_lock and outside any RCU \
                 read-side section (a careless lockless conversion of find_vma + vma_get)",
        expect: "use-after-free (vma_get on a VMA a racing munmap freed and RCU reclaimed)",
    },
    // The hard tier's second round. A hazard at a site that random programs rarely reach (the
    // merge's release of the VMAs it removed, a reader that drops the last reference) needs
    // the site and a window together; BENCHMARKS.md ("The hard tier, second round") counts how
    // rare each is for the blind walk: only merge_put_rcusafe and rmap_put_after_unlock need more
    // than 100,000 runs.
    Entry {
        mutant: Mutant::MergePutBeforeRepoint,
        name: "merge_put_before_repoint",
        kernel: "vma_complete(): each VMA the merge removed is dropped with vma_put() before its \
                 folios are re-pointed at the survivor, so for a moment they name freed memory",
        expect: "use-after-free (a reader that entered its RCU section after the free reads the \
                 old mapping, finds the folio mapped, and takes a reference on the reclaimed slot)",
    },
    Entry {
        mutant: Mutant::MergeSkipsRemove2Folios,
        name: "merge_skips_remove2_folios",
        kernel: "vma_complete(): a merge that removes two VMAs (remove and remove2) re-points \
                 only the first one's folios at the survivor; remove2's keep naming a freed VMA",
        expect: "use-after-free (a later reader follows a mapped folio to remove2's reclaimed \
                 slot; needs a three-way merge)",
    },
    Entry {
        mutant: Mutant::PutCmpxchgLoop,
        name: "put_cmpxchg_loop",
        kernel: "rcuref_put_slowpath(): try_cmpxchg(NOREF, DEAD) written as a retry loop \
                 (do {} while (!atomic_try_cmpxchg_release(..., &cnt, RCUREF_DEAD))), so a put \
                 whose counter a racing get revived marks it dead anyway",
        expect: "not-linearizable / free-while-held (the reviving reader's reference is killed)",
    },
    Entry {
        mutant: Mutant::PutPreemptFastOnly,
        name: "put_preempt_fast_only",
        kernel: "rcuref_put(): preempt_enable() right after the fetch-sub, before the slow path \
                 (the preempt-disabled region narrowed to the fast path)",
        expect: "use-after-free (the cmpxchg on a VMA that a racing get+put freed and RCU \
                 reclaimed)",
    },
    Entry {
        mutant: Mutant::MunmapZapAfterRelease,
        name: "munmap_zap_after_release",
        kernel: "munmap: the page tables are zapped (unmap_region) after remove_vma() dropped the \
                 tree's reference, not before, so folio_mapped() no longer proves the VMA alive",
        expect: "use-after-free (a reader that entered its RCU section after the free finds the \
                 folio still mapped and takes a reference on the reclaimed slot)",
    },
    Entry {
        mutant: Mutant::MergePutRcusafe,
        name: "merge_put_rcusafe",
        kernel: "vma_complete() drops the VMAs the merge removed with rcuref_put_rcusafe(), which \
                 is only correct inside an RCU read-side section or with preemption disabled, \
                 under mmap_lock alone (a sleeping lock, which holds no grace period off)",
        expect: "use-after-free (the merge's cmpxchg on a VMA a racing reader's get+put freed and \
                 RCU reclaimed; needs a merge and a reader on the removed VMA)",
    },
    Entry {
        mutant: Mutant::RmapPutAfterUnlock,
        name: "rmap_put_after_unlock",
        kernel: "the reverse-map reader drops its reference after rcu_read_unlock(), still with \
                 the rcuref_put_rcusafe() that was correct inside the section",
        expect: "use-after-free / bad-reclaim (the reader's get revives the VMA inside the \
                 munmap's put window, between its fetch-sub to NOREF and its cmpxchg; the \
                 reader's put after its section reaches NOREF again, the munmap frees the VMA \
                 and RCU reclaims it before the reader's cmpxchg: \
                 corpus/rmap-put-after-rcu-unlock.txt)",
    },
    // The hard tier's fourth round: a rare site and a narrow window again, each with a mistake of
    // its own kind (BENCHMARKS.md, "The hard tier, fourth round", counts them blind).
    Entry {
        mutant: Mutant::HolderPutRcusafe,
        name: "holder_put_rcusafe",
        kernel: "a vma_get() holder outside the reverse map (it looked the VMA up under \
                 mmap_read_lock() and keeps the reference after mmap_read_unlock(), as migration \
                 keeps the anon_vma that folio_get_anon_vma() pinned) drops it with \
                 rcuref_put_rcusafe(), the variant the walker it was copied from may use inside its \
                 read-side section; the holder is in none. Unlike merge_put_rcusafe, the put is the \
                 program's own and is the last one only after a munmap took the tree's reference",
        expect: "use-after-free (the holder's put takes the counter to NOREF after a munmap; a \
                 walker that passed folio_mapped() before the zap revives the VMA in that window, \
                 drops and frees it inside its section, and RCU reclaims it once the walker leaves, \
                 before the holder's cmpxchg; needs a get, a munmap of that VMA, the put and a \
                 walker parked across the munmap: \
                 corpus/holder-put-rcusafe-after-munmap.txt)",
    },
    Entry {
        mutant: Mutant::MergeRemove2PutRcusafe,
        name: "merge_remove2_put_rcusafe",
        kernel: "vma_complete(): the second pass of its loop, for the VMA a three-way merge \
                 removes second (remove2, mprotect's case 6), drops it with rcuref_put_rcusafe() \
                 (a release of remove2 written apart from the goto loop, under mmap_lock alone); \
                 merge_put_rcusafe's mistake confined to the case that removes two VMAs",
        expect: "use-after-free (the merge's cmpxchg on remove2 after a walker that found it through \
                 a folio revived it in the put window, freed it and left its section; needs a \
                 three-way merge and a walker on the third VMA's folios: \
                 corpus/merge-remove2-put-rcusafe.txt)",
    },
    Entry {
        mutant: Mutant::MergeRepointRemove2AfterPut,
        name: "merge_repoint_remove2_after_put",
        kernel: "vma_complete(): remove2's folios are re-pointed at the survivor only after remove2 \
                 has been dropped (merge_skips_remove2_folios' fix, added after the goto loop \
                 instead of inside it), while remove's are re-pointed before its put; an ordering \
                 mistake, not a wrong helper: every put is vma_put()",
        expect: "use-after-free (a walker that entered its section after remove2's free and reclaim \
                 reads the old mapping, finds the folio mapped and takes a reference on the \
                 reclaimed slot; needs a three-way merge and the walker's whole look-up inside the \
                 one step between the free and the re-point: \
                 corpus/merge-repoint-remove2-after-put.txt)",
    },
    // The hard tier's fifth round: a mistake of another kind than a wrong put helper, in rcuref's
    // memory ordering (BENCHMARKS.md, "The hard tier, fifth round", counts it blind).
    Entry {
        mutant: Mutant::PutAcquireBeforeCmpxchg,
        name: "put_acquire_before_cmpxchg",
        kernel: "rcuref_put_slowpath(): smp_acquire__after_ctrl_dep() placed right after the test \
                 cnt == RCUREF_NOREF, before the try_cmpxchg(NOREF, DEAD), instead of after the \
                 branch on the cmpxchg's result (a misreading of which control dependency the fence \
                 follows). The fence then orders only the releases the fetch-sub observed; a get+put \
                 that revived the object and dropped it again inside the window, whose release the \
                 cmpxchg reads, is no longer ordered before the free. Unlike put_no_acquire, every \
                 free without such a revival stays ordered",
        expect: "data-race (a walker that passed folio_mapped() before the munmap's zap revives the \
                 VMA from NOREF inside the munmap's put window, reads its range in its re-check, and \
                 drops it to NOREF; the munmap's cmpxchg, run between the walker's fetch-sub and its \
                 cmpxchg, wins and frees the VMA without acquiring the walker's release; three \
                 preemptions)",
    },
    // The hard tier's sixth round (BENCHMARKS.md, "The hard tier, sixth round"): the walker's sleep
    // path under the root policy, a rare path, with a one-step window on it.
    Entry {
        mutant: Mutant::RmapSleepStaysOutOfRcu,
        name: "rmap_sleep_stays_out_of_rcu",
        kernel: "the walker's sleep path (the rmap rwsem's trylock failed) does not re-enter its RCU \
                 read-side section after taking the rwsem, as folio_lock_anon_vma_read() hands back \
                 its anon_vma locked and outside RCU (there the rwsem protects the anon_vma's own \
                 tree that the walk goes on to). The pin and the rwsem keep the folio's VMA, but the \
                 walk from a root looks the covering VMA up in the mm's tree, which only RCU keeps \
                 from being freed under the look-up",
        expect: "use-after-free with mapping=root (vma_get on the slot of a VMA that a munmap freed, \
                 and RCU reclaimed, between the walker's tree look-up and its get; needs the sleep \
                 path, a split or merge holding the root's rwsem at the walker's trylock, and that \
                 munmap inside a one-step window)",
    },
    // The hard tier's seventh round (BENCHMARKS.md, "The hard tier, seventh round"): a compare-exchange
    // failure misread, on a path only a second reader's increment inside a one-step window reaches.
    Entry {
        mutant: Mutant::GetRecentreCmpxchgRevives,
        name: "get_recentre_cmpxchg_revives",
        kernel: "rcuref_get_slowpath(): the re-centring of a dead counter (lib/rcuref.c's \
                 atomic_set(&ref->refcnt, RCUREF_DEAD)) written as a compare-exchange from the value \
                 the slow path re-read, so as never to overwrite a counter someone else changed (the \
                 concern of file_ref's 'don't accidently mark recycled files dead'), and its failure \
                 read the way rcuref_put_slowpath()'s comment reads its own, as a concurrent get that \
                 elevated the count again: the get returns true. On a dead counter the only other \
                 writers are gets that fail, whose increments stay in the dead zone",
        expect: "not-linearizable (two readers parked in vma_get() across a munmap both increment the \
                 released counter; the second one's increment and re-centring land in the one step \
                 between the first one's re-read and its compare-exchange, which fails, and the first \
                 get returns true on a dead VMA: corpus/get-recentre-cmpxchg-revives.txt)",
    },
];

impl Mutant {
    pub fn from_name(name: &str) -> Option<Mutant> {
        CATALOG.iter().find(|e| e.name == name).map(|e| e.mutant)
    }
    pub fn name(self) -> &'static str {
        CATALOG.iter().find(|e| e.mutant == self).map(|e| e.name).unwrap_or("none")
    }
}
