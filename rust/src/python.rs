//! The `pyfuzz._core` module: conversion between Python's plain tuples and the engine's types.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::intern;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::engine::{self, Outcome};
use crate::event::{AtomicOp, Event, Field, LockMode, Order, RefFn, Warning};
use crate::mutant::{Mutant, CATALOG};
use crate::program::{Op, OpKind, Program, SetupVma};
use crate::event::Event as CoreEvent;
use crate::sched::{DelayBounded, ListSchedule, Pct, Pos, RandomWalk, Scheduler, SplitMix, Walk, WeightedWalk};
use crate::world::{self, Config};

fn bad(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

fn make_config(config: Option<&Bound<'_, PyDict>>, mutant: &str) -> PyResult<Config> {
    let mut c = Config::SEED;
    if let Some(d) = config {
        for (k, v) in d.iter() {
            let (k, v): (String, String) = (k.extract()?, v.extract()?);
            c.set(&k, &v).map_err(bad)?;
        }
    }
    c.mutant = Mutant::from_name(mutant).ok_or_else(|| bad(format!("unknown mutant {mutant:?} (see `pyfuzz mutants`)")))?;
    Ok(c)
}

type OpTuple = (String, u32, u32, bool);
type ProgramTuple = (Vec<(u32, u32, Option<u32>)>, Vec<Vec<OpTuple>>, Vec<(u8, u32)>);

fn program_from_tuple(t: ProgramTuple) -> PyResult<Program> {
    let (setup, threads, schedule) = t;
    let setup = setup.into_iter().map(|(start, end, counter)| SetupVma { start, end, counter }).collect();
    let threads = threads
        .into_iter()
        .map(|ops| {
            ops.into_iter()
                .map(|(name, a, b, fail)| {
                    let kind = OpKind::from_name(&name).ok_or_else(|| bad(format!("unknown operation {name:?}")))?;
                    Ok(Op { kind, a, b, fail })
                })
                .collect::<PyResult<Vec<_>>>()
        })
        .collect::<PyResult<Vec<_>>>()?;
    let program = Program { setup, threads, schedule };
    program.validate().map_err(bad)?;
    Ok(program)
}

fn program_to_tuple(p: &Program) -> ProgramTuple {
    (
        p.setup.iter().map(|v| (v.start, v.end, v.counter)).collect(),
        p.threads
            .iter()
            .map(|ops| ops.iter().map(|o| (o.kind.name().to_string(), o.a, o.b, o.fail)).collect())
            .collect(),
        p.schedule.clone(),
    )
}

fn name_of_fn<'py>(py: Python<'py>, f: RefFn) -> &'py Bound<'py, PyString> {
    match f {
        RefFn::Get => intern!(py, "get"),
        RefFn::Put => intern!(py, "put"),
        RefFn::Init => intern!(py, "init"),
    }
}

fn name_of_op<'py>(py: Python<'py>, op: AtomicOp) -> &'py Bound<'py, PyString> {
    match op {
        AtomicOp::Add => intern!(py, "add"),
        AtomicOp::Sub => intern!(py, "sub"),
        AtomicOp::Load => intern!(py, "load"),
        AtomicOp::Store => intern!(py, "store"),
        AtomicOp::CasOk => intern!(py, "cas_ok"),
        AtomicOp::CasFail => intern!(py, "cas_fail"),
    }
}

fn name_of_order<'py>(py: Python<'py>, o: Order) -> &'py Bound<'py, PyString> {
    match o {
        Order::Relaxed => intern!(py, "relaxed"),
        Order::Release => intern!(py, "release"),
        Order::Acquire => intern!(py, "acquire"),
        Order::SeqCst => intern!(py, "seq_cst"),
        Order::Plain => intern!(py, "plain"),
    }
}

fn name_of_warning<'py>(py: Python<'py>, w: Warning) -> &'py Bound<'py, PyString> {
    match w {
        Warning::Saturated => intern!(py, "saturated"),
        Warning::ImbalancedPut => intern!(py, "imbalanced_put"),
        Warning::VmaGetDisabled => intern!(py, "vma_get_disabled"),
    }
}

fn name_of_field<'py>(py: Python<'py>, f: Field) -> &'py Bound<'py, PyString> {
    match f {
        Field::Start => intern!(py, "vm_start"),
        Field::End => intern!(py, "vm_end"),
        Field::Pgoff => intern!(py, "vm_pgoff"),
        Field::File => intern!(py, "vm_file"),
        Field::Policy => intern!(py, "vm_policy"),
        Field::Root => intern!(py, "vm_root"),
    }
}

fn name_of_mode<'py>(py: Python<'py>, m: LockMode) -> &'py Bound<'py, PyString> {
    match m {
        LockMode::Read => intern!(py, "read"),
        LockMode::Write => intern!(py, "write"),
    }
}

fn event_to_py<'py>(py: Python<'py>, e: &Event) -> PyResult<Bound<'py, PyTuple>> {
    use Event::*;
    let any = match e {
        OpBegin { t, op } => (intern!(py, "op_begin"), t, op).into_pyobject(py)?,
        OpEnd { t, op, outcome } => (intern!(py, "op_end"), t, op, outcome).into_pyobject(py)?,
        Lookup { t, mm, slot } => (intern!(py, "lookup"), t, mm, slot).into_pyobject(py)?,
        RefCall { t, slot, f } => (intern!(py, "ref_call"), t, slot, name_of_fn(py, *f)).into_pyobject(py)?,
        RefRet { t, slot, f, result } => (intern!(py, "ref_ret"), t, slot, name_of_fn(py, *f), result).into_pyobject(py)?,
        Atomic { t, slot, op, order, old, new } => {
            (intern!(py, "atomic"), t, slot, name_of_op(py, *op), name_of_order(py, *order), old, new).into_pyobject(py)?
        }
        Fence { t } => (intern!(py, "fence"), t, intern!(py, "acquire")).into_pyobject(py)?,
        Warn { t, slot, what } => (intern!(py, "warn"), t, slot, name_of_warning(py, *what)).into_pyobject(py)?,
        Alloc { t, slot, gen } => (intern!(py, "alloc"), t, slot, gen).into_pyobject(py)?,
        Free { t, slot, gen } => (intern!(py, "free"), t, slot, gen).into_pyobject(py)?,
        Reclaim { slot, gen } => (intern!(py, "reclaim"), crate::event::RCU_CALLBACK, slot, gen).into_pyobject(py)?,
        Read { t, slot, field, value } => (intern!(py, "read"), t, slot, name_of_field(py, *field), value).into_pyobject(py)?,
        Write { t, slot, field, value } => (intern!(py, "write"), t, slot, name_of_field(py, *field), value).into_pyobject(py)?,
        Use { t, slot, page } => (intern!(py, "use"), t, slot, page).into_pyobject(py)?,
        RcuLock { t } => (intern!(py, "rcu_lock"), t).into_pyobject(py)?,
        RcuUnlock { t } => (intern!(py, "rcu_unlock"), t).into_pyobject(py)?,
        PreemptOff { t } => (intern!(py, "preempt_off"), t).into_pyobject(py)?,
        PreemptOn { t } => (intern!(py, "preempt_on"), t).into_pyobject(py)?,
        Lock { t, mode } => (intern!(py, "lock"), t, name_of_mode(py, *mode)).into_pyobject(py)?,
        Unlock { t, mode } => (intern!(py, "unlock"), t, name_of_mode(py, *mode)).into_pyobject(py)?,
        TreeInsert { t, mm, slot, start, end, pgoff } => {
            (intern!(py, "tree_insert"), t, mm, slot, start, end, pgoff).into_pyobject(py)?
        }
        TreeUpdate { t, mm, slot, start, end, pgoff } => {
            (intern!(py, "tree_update"), t, mm, slot, start, end, pgoff).into_pyobject(py)?
        }
        TreeRemove { t, mm, slot } => (intern!(py, "tree_remove"), t, mm, slot).into_pyobject(py)?,
        MappingLoad { t, page, slot } => {
            (intern!(py, "mapping_load"), t, page, slot.map(|s| s as i32).unwrap_or(-1)).into_pyobject(py)?
        }
        MappingStore { t, page, slot } => (intern!(py, "mapping_store"), t, page, slot).into_pyobject(py)?,
        FolioMap { t, page, mapped } => (intern!(py, "folio_map"), t, page, mapped).into_pyobject(py)?,
        MappedLoad { t, page, mapped } => (intern!(py, "mapped_load"), t, page, mapped).into_pyobject(py)?,
        Panic { t, message } => (intern!(py, "panic"), t, message).into_pyobject(py)?,
        RmapLock { t, slot, mode } => (intern!(py, "rmap_lock"), t, slot, name_of_mode(py, *mode)).into_pyobject(py)?,
        RmapUnlock { t, slot, mode } => (intern!(py, "rmap_unlock"), t, slot, name_of_mode(py, *mode)).into_pyobject(py)?,
    };
    Ok(any)
}

/// Python tuples are immutable, so one tuple can stand for every occurrence of an event: most of
/// a history's events recur across the runs of a campaign (the same thread taking the same lock,
/// the same atomic on the same counter value), and looking a tuple up costs a fraction of
/// building it. Bounded (2^16 tuples, under 10 MiB): the table starts afresh when full.
/// Not in the coverage build: the table's hashing and probing would be code libFuzzer follows,
/// so what it counts would depend on earlier runs, and a
/// campaign would no longer replay from its seed.
#[cfg(not(feature = "sancov"))]
const EVENT_TUPLES_MAX: usize = 1 << 16;

#[cfg(feature = "sancov")]
fn events_to_py<'py>(py: Python<'py>, events: &[Event], _setup: Option<(&SetupTuples, usize)>) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, events.iter().map(|e| event_to_py(py, e)).collect::<PyResult<Vec<_>>>()?)
}

/// The tuples of an input's setup events, shared by the outcomes of all its runs: every run of
/// a program starts with the same setup events (a fifth of a campaign history's events, a tenth
/// of the events a program's walks export), so they are looked up in the table once per input
/// and then copied, a reference count each. Empty until the first export of one of its runs.
type SetupTuples = std::sync::Arc<std::sync::OnceLock<Vec<Py<PyTuple>>>>;

// Keyed by `Event::key` and hashed with FxHash: two words instead of the event's fields, each
// hashed and compared on its own (SipHash over the fields was about half of the export, the
// fields' FxHash and comparison a third of what was left; callgrind). No key is chosen by an
// adversary.
#[cfg(not(feature = "sancov"))]
thread_local! {
    static EVENT_TUPLES: std::cell::RefCell<rustc_hash::FxHashMap<(u64, u64), Py<PyTuple>>> =
        std::cell::RefCell::new(rustc_hash::FxHashMap::default());
}

/// A history's events, the table taken once for all of them, each tuple put straight into the
/// list; with `setup` (its input's shared tuples and how many setup events the history starts
/// with) the first ones copied from there.
#[cfg(not(feature = "sancov"))]
fn events_to_py<'py>(py: Python<'py>, events: &[Event], setup: Option<(&SetupTuples, usize)>) -> PyResult<Bound<'py, PyList>> {
    let len = pyo3::ffi::Py_ssize_t::try_from(events.len()).map_err(|_| bad("history too long"))?;
    // SAFETY: PyList_New returns a new reference or null with the error set; until every slot
    // is set the list holds nulls, which its deallocation skips if an event fails to convert.
    let list = unsafe { Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyList_New(len))?.cast_into_unchecked::<PyList>() };
    let ptr = list.as_ptr();
    // SAFETY: `i` is below the list's length, and the slot is empty: the list takes over the
    // reference.
    let set = |i: usize, tuple: Py<PyTuple>| unsafe { pyo3::ffi::PyList_SET_ITEM(ptr, i as pyo3::ffi::Py_ssize_t, tuple.into_ptr()) };
    let (shared, n) = match setup {
        Some((shared, n)) => (Some(shared), n),
        None => (None, 0),
    };
    let prefix = shared.and_then(|shared| shared.get());
    if let Some(prefix) = prefix {
        assert_eq!(prefix.len(), n, "every run of a program starts with its setup's events");
        for (i, tuple) in prefix.iter().enumerate() {
            set(i, tuple.clone_ref(py));
        }
    }
    let done = if prefix.is_some() { n } else { 0 };
    EVENT_TUPLES.with(|cell| {
        let mut table = cell.borrow_mut();
        for (i, e) in events.iter().enumerate().skip(done) {
            let tuple = match e.key() {
                Some(key) => match table.get(&key) {
                    Some(t) => t.clone_ref(py),
                    None => {
                        let t = event_to_py(py, e)?.unbind();
                        if table.len() >= EVENT_TUPLES_MAX {
                            table.clear();
                        }
                        table.insert(key, t.clone_ref(py));
                        t
                    }
                },
                None => event_to_py(py, e)?.unbind(),
            };
            set(i, tuple);
        }
        PyResult::Ok(())
    })?;
    if let (Some(shared), None) = (shared, prefix) {
        // The input's first export: its setup's tuples are the list's first.
        let _ = shared.set((0..n).map(|i| list.get_item(i).map(|t| t.cast_into::<PyTuple>().expect("an event tuple").unbind())).collect::<PyResult<_>>()?);
    }
    Ok(list)
}

/// The result of one execution. `events` is built on first access: the fuzz loop only asks for it
/// when `digest` is new.
#[pyclass(name = "Outcome", module = "pyfuzz._core", frozen)]
struct PyOutcome {
    inner: Outcome,
    events: std::sync::OnceLock<Py<PyAny>>,
    /// Its input's setup tuples, when it comes from an engine's run of fuzzer bytes.
    setup: Option<SetupTuples>,
}

#[pymethods]
impl PyOutcome {
    #[getter]
    fn digest(&self) -> u64 {
        self.inner.digest
    }
    #[getter]
    fn steps(&self) -> u32 {
        self.inner.steps
    }
    /// (thread, op index) of every scheduling step, in the order taken.
    #[getter]
    fn taken(&self) -> Vec<(u8, u8)> {
        self.inner.taken.clone()
    }
    #[getter]
    fn final_counters(&self) -> Vec<u32> {
        self.inner.final_counters.clone()
    }
    /// True when the execution ended in a model panic (deadlock, livelock); always a finding.
    #[getter]
    fn panicked(&self) -> bool {
        self.inner.events.iter().any(|e| matches!(e, Event::Panic { .. }))
    }
    /// One byte per event, in order: its kind as the oracle numbers kinds (pyfuzz/oracle/kinds.py,
    /// `NO_KIND` for the kinds no rule reads), so that the oracle need not look each event's kind
    /// name up. The history's own kind field re-encoded: tests/test_oracle.py checks every code
    /// against `KIND[event[0]]`.
    #[getter]
    fn kinds<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        // written into the bytes object itself: no buffer made and copied per history
        PyBytes::new_with(py, self.inner.events.len(), |codes| {
            for (code, e) in codes.iter_mut().zip(&self.inner.events) {
                *code = kind_code(e);
            }
            Ok(())
        })
    }
    #[getter]
    fn events(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Some(e) = self.events.get() {
            return Ok(e.clone_ref(py));
        }
        let setup = self.setup.as_ref().map(|shared| (shared, self.inner.setup_events));
        let list: Py<PyAny> = events_to_py(py, &self.inner.events, setup)?.into_any().unbind();
        let _ = self.events.set(list.clone_ref(py));
        Ok(list)
    }
}

/// The code pyfuzz/oracle/kinds.py gives the event's kind (`K_*`; 27, `NO_KIND`, for op_begin,
/// folio_map and mapped_load, which no rule reads).
fn kind_code(e: &Event) -> u8 {
    use Event::*;
    match e {
        Read { .. } => 0,
        Write { .. } => 1,
        Use { .. } => 2,
        Atomic { .. } => 3,
        RefCall { .. } => 4,
        RefRet { .. } => 5,
        OpEnd { .. } => 6,
        Lock { .. } => 7,
        Unlock { .. } => 8,
        RcuLock { .. } => 9,
        PreemptOff { .. } => 10,
        RcuUnlock { .. } => 11,
        PreemptOn { .. } => 12,
        MappingStore { .. } => 13,
        MappingLoad { .. } => 14,
        Alloc { .. } => 15,
        Lookup { .. } => 16,
        TreeInsert { .. } => 17,
        TreeUpdate { .. } => 18,
        Free { .. } => 19,
        Fence { .. } => 20,
        TreeRemove { .. } => 21,
        Warn { .. } => 22,
        Reclaim { .. } => 23,
        Panic { .. } => 24,
        RmapLock { .. } => 25,
        RmapUnlock { .. } => 26,
        OpBegin { .. } | FolioMap { .. } | MappedLoad { .. } => 27,
    }
}

fn wrap(outcome: Outcome) -> PyOutcome {
    PyOutcome { inner: outcome, events: std::sync::OnceLock::new(), setup: None }
}

/// An outcome of a run of `d`'s program.
fn wrap_run(outcome: Outcome, d: &Decoded) -> PyOutcome {
    PyOutcome { setup: d.tuples.clone(), ..wrap(outcome) }
}

/// Decode fuzzer bytes into a program tuple (total: every byte string decodes).
#[pyfunction]
fn decode(data: &Bound<'_, PyBytes>) -> ProgramTuple {
    program_to_tuple(&Program::decode(data.as_bytes()))
}

/// Run a program tuple under its own schedule.
#[pyfunction]
#[pyo3(signature = (program, config=None, mutant="none"))]
fn run(py: Python<'_>, program: ProgramTuple, config: Option<&Bound<'_, PyDict>>, mutant: &str) -> PyResult<PyOutcome> {
    let config = make_config(config, mutant)?;
    let program = program_from_tuple(program)?;
    Ok(wrap(py.detach(|| engine::run_program(&program, config))))
}

/// Run a program tuple `iterations` times on real OS threads (its schedule is ignored). Each run is
/// a dict: `setup`, `threads` (one event list per thread, in program order), `reclaims`,
/// `final_counters` and `trees` (per mm, the final `(slot, start, end)` list).
#[pyfunction]
#[pyo3(signature = (program, config=None, mutant="none", iterations=100))]
fn stress(
    py: Python<'_>,
    program: ProgramTuple,
    config: Option<&Bound<'_, PyDict>>,
    mutant: &str,
    iterations: u32,
) -> PyResult<Vec<Py<PyDict>>> {
    let config = make_config(config, mutant)?;
    let program = program_from_tuple(program)?;
    let runs = py.detach(|| crate::stress::stress(&program, config, iterations));
    let events = |list: &[Event]| list.iter().map(|e| event_to_py(py, e)).collect::<PyResult<Vec<_>>>();
    runs.iter()
        .map(|run| {
            let d = PyDict::new(py);
            d.set_item("setup", events(&run.setup)?)?;
            d.set_item("threads", run.threads.iter().map(|t| events(t)).collect::<PyResult<Vec<_>>>()?)?;
            d.set_item("reclaims", events(&run.reclaims)?)?;
            d.set_item("final_counters", &run.final_counters)?;
            let trees: Vec<Vec<(u8, u32, u32)>> =
                run.trees.iter().map(|tree| tree.iter().map(|v| (v.slot, v.start, v.end)).collect()).collect();
            d.set_item("trees", trees)?;
            Ok(d.unbind())
        })
        .collect()
}

/// Get/put pairs per second on `threads` OS threads sharing one counter, by the wall clock and
/// per CPU second of the slowest thread: `"vma"` (vma_get +
/// vma_put, the protocol's code), `"vma_unrecorded"` (the same without recording events), `"fetch_add"` (bare fetch-add + fetch-sub),
/// `"fetch_add_seam"` (the same, each access behind the real-thread Env's scheduling point) or
/// `"inc_not_zero"` (a compare-exchange loop + fetch-sub).
#[pyfunction]
#[pyo3(signature = (kind, threads, pairs, config=None))]
fn refcount_pairs(py: Python<'_>, kind: &str, threads: usize, pairs: u64, config: Option<&Bound<'_, PyDict>>) -> PyResult<(f64, f64)> {
    use crate::stress::PairKind;
    let kind = match kind {
        "vma" => PairKind::VmaRef,
        "vma_unrecorded" => PairKind::VmaRefUnrecorded,
        "fetch_add" => PairKind::FetchAdd,
        "fetch_add_seam" => PairKind::FetchAddThroughSeam,
        "inc_not_zero" => PairKind::IncNotZero,
        other => return Err(bad(format!("unknown pair kind {other:?}"))),
    };
    if !(1..=world::MAX_THREADS).contains(&threads) {
        return Err(bad(format!("threads must be 1-{}", world::MAX_THREADS)));
    }
    let config = make_config(config, "none")?;
    let rate = py.detach(|| crate::stress::refcount_pairs(kind, threads, pairs, config));
    Ok((rate.wall, rate.cpu))
}

/// How the real-thread runner's RCU grace periods order the readers' section entries:
/// `"membarrier"`, or `"fences"` where the kernel refused it (said once on stderr).
#[pyfunction]
fn real_thread_rcu_barrier() -> &'static str {
    match crate::membarrier::barrier() {
        crate::membarrier::Barrier::Membarrier => "membarrier",
        crate::membarrier::Barrier::Fences => "fences",
    }
}

/// Which interleaving features the fuzz build reports to libFuzzer: `"pairs"` (the default: only
/// the access-class pairs), `"full"` (with reads-from pairs and hand-off sequences) or `"off"`.
#[pyfunction]
fn set_interleaving_feedback(mode: &str) -> PyResult<()> {
    use crate::feedback::Mode;
    crate::feedback::set_mode(match mode {
        "full" => Mode::Full,
        "pairs" => Mode::Pairs,
        "off" => Mode::Off,
        other => return Err(bad(format!("unknown interleaving feedback {other:?} (full, pairs or off)"))),
    });
    Ok(())
}

/// A configured engine for the fuzz loop's hot path.
#[pyclass(name = "Engine", module = "pyfuzz._core", frozen)]
struct PyEngine {
    config: Config,
    /// The last input, its program and, once it runs a second time, the world its setup builds:
    /// the fuzz loop runs each input under its own schedule and then under its walks, and
    /// decoding it again for each run was about 5% of a run, building the setup's world 8%
    /// (callgrind). Both are functions of the bytes (and the configuration), so each run starts
    /// as it did. An input run once (`bench engine`'s) builds its world in place.
    last: std::sync::Mutex<Option<Decoded>>,
}

struct Decoded {
    bytes: Vec<u8>,
    program: Program,
    setup: Option<engine::Setup>,
    /// The tuples its runs' setup events export to, made with `setup` (None in the coverage
    /// build, whose export has no table).
    tuples: Option<SetupTuples>,
}

#[pymethods]
impl PyEngine {
    #[new]
    #[pyo3(signature = (config=None, mutant="none"))]
    fn new(config: Option<&Bound<'_, PyDict>>, mutant: &str) -> PyResult<Self> {
        crate::feedback::register();
        Ok(PyEngine { config: make_config(config, mutant)?, last: std::sync::Mutex::new(None) })
    }

    /// Decode and run fuzzer bytes under the program's own schedule.
    fn run_bytes(&self, data: &Bound<'_, PyBytes>) -> PyOutcome {
        self.decoded(data.as_bytes(), |d| wrap_run(self.run(&d.program, d.setup.as_ref(), &mut ListSchedule::new(&d.program.schedule)), d))
    }

    /// Decode and run many inputs in one call, each under its program's own schedule, without
    /// building outcomes: `(digest, steps)` per input, in order. What `run_bytes` does for each,
    /// minus one Python call and one outcome object per run (`pyfuzz bench engine` measures both).
    fn run_many(&self, py: Python<'_>, inputs: Vec<Bound<'_, PyBytes>>) -> Vec<(u64, u32)> {
        let inputs: Vec<&[u8]> = inputs.iter().map(|data| data.as_bytes()).collect();
        py.detach(|| {
            inputs
                .iter()
                .map(|data| {
                    let outcome = engine::run_program(&Program::decode(data), self.config);
                    (outcome.digest, outcome.steps)
                })
                .collect()
        })
    }

    /// Decode `data` for the program but interleave it with another scheduler (sched.rs):
    /// `"random"` (uniform choice at each step), `"pct"` (priorities with `depth - 1` change
    /// points), `"pos"` (priorities re-drawn on racing accesses), `"surw"` (a walk weighted by
    /// each thread's remaining steps) or `"delay"` (round robin with `depth` delays); `seed`
    /// makes the choice reproducible. PCT and delay bounding spread their change points over
    /// `steps`, the length of the program's run under its own schedule: a caller that has just
    /// run it (`run_bytes(data).steps`) passes it, otherwise it is measured here (as are the
    /// per-thread counts the weighted walk needs).
    #[pyo3(signature = (data, scheduler, seed, depth=3, steps=None))]
    fn run_bytes_with(
        &self,
        data: &Bound<'_, PyBytes>,
        scheduler: &str,
        seed: u64,
        depth: u32,
        steps: Option<u32>,
    ) -> PyResult<PyOutcome> {
        self.decoded(data.as_bytes(), |d| {
            Ok(wrap_run(self.run_walk(&d.program, d.setup.as_ref(), self.walk(&d.program, scheduler, seed, depth, steps)?), d))
        })
    }

    /// Run a program tuple (`decode`'s shape) under its own schedule or, with `scheduler`, as
    /// `run_bytes_with` would: for programs the decoder cannot spell, such as threads with more
    /// ops than it draws.
    #[pyo3(signature = (program, scheduler=None, seed=0, depth=3, steps=None))]
    fn run_program(
        &self,
        program: ProgramTuple,
        scheduler: Option<&str>,
        seed: u64,
        depth: u32,
        steps: Option<u32>,
    ) -> PyResult<PyOutcome> {
        let program = program_from_tuple(program)?;
        Ok(wrap(match scheduler {
            None => engine::run_program(&program, self.config),
            Some(name) => self.run_walk(&program, None, self.walk(&program, name, seed, depth, steps)?),
        }))
    }

    /// The thread that took each step of `run_bytes_with(data, ...)`, also when the run ends in
    /// a panic: the walk's schedule, to spell out as program text so that a finding replays
    /// without its bytes.
    #[pyo3(signature = (data, scheduler, seed, depth=3, steps=None))]
    fn walk_steps(
        &self,
        data: &Bound<'_, PyBytes>,
        scheduler: &str,
        seed: u64,
        depth: u32,
        steps: Option<u32>,
    ) -> PyResult<Vec<u8>> {
        let program = Program::decode(data.as_bytes());
        let mut recorder = Recorder { inner: self.walk(&program, scheduler, seed, depth, steps)?, picks: Vec::new() };
        let run = std::panic::AssertUnwindSafe(|| engine::run(&program, self.config, &mut recorder));
        let _ = std::panic::catch_unwind(run);
        Ok(recorder.picks)
    }
}

impl PyEngine {
    /// `f` of `data` decoded, made again only when `data` is not the last input's. The cache
    /// stays locked while `f` runs, with nothing in it changed there: a run that panics leaves
    /// it as it was (poisoned, which the next run ignores). Moving it out and back in by value
    /// around each run (the setup's world is large) was 3% of a campaign run (callgrind), and
    /// boxing it cost a run of a new input two allocations more (`bench engine`).
    fn decoded<R>(&self, data: &[u8], f: impl FnOnce(&Decoded) -> R) -> R {
        // Not in the coverage build: whether a run decodes its input and builds its setup would
        // depend on the run before it, which libFuzzer would count (as with the export's table).
        if cfg!(feature = "sancov") {
            return f(&Decoded { bytes: Vec::new(), program: Program::decode(data), setup: None, tuples: None });
        }
        let mut cache = self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let decoded = match &mut *cache {
            Some(d) if d.bytes == data => {
                if d.setup.is_none() {
                    // The input's second run: from now on its runs share a setup and its tuples.
                    d.setup = Some(engine::Setup::new(&d.program, self.config));
                    d.tuples = Some(SetupTuples::default());
                }
                d
            }
            slot => slot.insert(Decoded { bytes: data.to_vec(), program: Program::decode(data), setup: None, tuples: None }),
        };
        f(decoded)
    }

    /// PCT, the harness's walk (16 of every 17 runs of the fuzz loop), runs in a copy of the
    /// runtime of its own, its choice inlined into the step boundary; the other walks share the
    /// enum's copy, whose choice is an out-of-line call (7% of a PCT walk's instructions in the
    /// fuzz loop, callgrind).
    fn run_walk(&self, program: &Program, setup: Option<&engine::Setup>, walk: Walk) -> Outcome {
        match walk {
            Walk::Pct(mut pct) => self.run(program, setup, &mut pct),
            mut other => self.run(program, setup, &mut other),
        }
    }

    /// From a copy of `setup`'s world if there is one (it must be the program's), else building it.
    fn run<S: Scheduler>(&self, program: &Program, setup: Option<&engine::Setup>, scheduler: &mut S) -> Outcome {
        match setup {
            Some(setup) => engine::run_from(setup, program, scheduler),
            None => engine::run(program, self.config, scheduler),
        }
    }

    fn walk(
        &self,
        program: &Program,
        scheduler: &str,
        seed: u64,
        depth: u32,
        steps: Option<u32>,
    ) -> PyResult<Walk> {
        // Change points must fall inside the run; how long the program runs under its own
        // schedule is a close estimate (only lock waits change the count).
        let expected = || steps.unwrap_or_else(|| engine::run_program(program, self.config).steps);
        let threads = program.threads.len();
        Ok(match scheduler {
            "random" => Walk::Random(RandomWalk(SplitMix(seed))),
            "pct" => Walk::Pct(Pct::new(threads, depth, expected(), seed)),
            "pos" => Walk::Pos(Pos::new(&self.config, threads, seed)),
            "delay" => Walk::Delay(DelayBounded::new(depth, expected(), seed)),
            "surw" => {
                let mut per_thread = vec![0; threads];
                for (t, _) in engine::run_program(program, self.config).taken {
                    per_thread[t as usize] += 1;
                }
                Walk::Weighted(WeightedWalk::new(per_thread, seed))
            }
            other => return Err(bad(format!("unknown scheduler {other:?}"))),
        })
    }
}

struct Recorder {
    inner: Walk,
    picks: Vec<u8>,
}

impl Scheduler for Recorder {
    fn next(&mut self, runnable: &[bool]) -> usize {
        let t = self.inner.next(runnable);
        self.picks.push(t as u8);
        t
    }
    fn observe(&mut self, events: &[CoreEvent]) -> bool {
        self.inner.observe(events)
    }
}

/// Systematic exploration of one program's interleavings (`explore.rs`): `mode` is `"dpor"`,
/// `"dfs"` or `"bounded"` (every schedule with at most `preemptions` preemptions, fewest first).
#[pyclass(name = "Explorer", module = "pyfuzz._core")]
struct PyExplorer {
    inner: crate::explore::Explorer,
}

#[pymethods]
impl PyExplorer {
    #[new]
    #[pyo3(signature = (program, config=None, mutant="none", mode="dpor", preemptions=None))]
    fn new(
        program: ProgramTuple,
        config: Option<&Bound<'_, PyDict>>,
        mutant: &str,
        mode: &str,
        preemptions: Option<u32>,
    ) -> PyResult<Self> {
        use crate::explore::Mode;
        let config = make_config(config, mutant)?;
        let program = program_from_tuple(program)?;
        let mode = match (mode, preemptions) {
            ("dpor", None) => Mode::Dpor,
            ("dfs", None) => Mode::Dfs,
            ("bounded", k) => Mode::Bounded(k),
            (other, _) => return Err(bad(format!("unknown exploration mode {other:?} (a bound needs mode \"bounded\")"))),
        };
        Ok(PyExplorer { inner: crate::explore::Explorer::new(program, config, mode) })
    }

    /// Up to `histories` executions whose history or class is new, each `(schedule, preemptions, class, outcome,
    /// panic)` (`class` the digest of its equivalence class;
    /// `outcome` None and `panic` the message when the model panicked); stops early after
    /// `seconds`. An empty list with `done` false only means the time ran out.
    #[pyo3(signature = (histories=64, seconds=0.25))]
    fn explore(&mut self, py: Python<'_>, histories: usize, seconds: f64) -> Vec<(Vec<u8>, u32, u64, Option<PyOutcome>, Option<String>)> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(seconds.max(0.0));
        let inner = &mut self.inner;
        let found = py.detach(|| inner.explore(histories, Some(deadline)));
        found.into_iter().map(|f| (f.schedule, f.preemptions, f.class, f.outcome.map(wrap), f.panic)).collect()
    }

    #[getter]
    fn done(&self) -> bool {
        self.inner.finished()
    }

    /// `schedules` run (`blocked` of them stopped by sleep sets), distinct `histories`,
    /// equivalence `classes`, and the preemption `level` reached (bounded mode).
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats;
        let d = PyDict::new(py);
        d.set_item("schedules", s.schedules)?;
        d.set_item("blocked", s.blocked)?;
        d.set_item("histories", s.histories)?;
        d.set_item("classes", s.classes)?;
        d.set_item("level", s.level)?;
        Ok(d)
    }
}

/// One byte per interleaving-coverage pair, nonzero once this process has met it (feedback.rs);
/// empty unless this is the fuzz build.
#[pyfunction]
fn interleavings_seen(py: Python<'_>) -> Bound<'_, PyBytes> {
    PyBytes::new(py, &crate::feedback::seen())
}

/// How many interleaving features of any family (reported to libFuzzer or not) this process has
/// met for the first time so far (feedback.rs): the harness's walk schedule reads it after each
/// run. Always 0 outside the fuzz build.
#[pyfunction]
fn novel_interleavings() -> u64 {
    crate::feedback::novel()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let mutants: Vec<(&str, &str, &str)> = CATALOG.iter().map(|e| (e.name, e.kernel, e.expect)).collect();
    m.add("MUTANTS", mutants)?;
    let config = PyDict::new(py);
    for (key, values) in Config::KEYS {
        config.set_item(key, PyTuple::new(py, values.iter())?)?;
    }
    m.add("CONFIG", config)?;
    let limits = PyDict::new(py);
    limits.set_item("threads", (world::MIN_THREADS, world::MAX_THREADS))?;
    limits.set_item("ops", world::MAX_OPS)?;
    limits.set_item("decoded_ops", crate::program::DECODED_OPS)?;
    limits.set_item("pages", world::PAGES)?;
    limits.set_item("slots", world::SLOTS)?;
    limits.set_item("setup_vmas", world::MAX_SETUP_VMAS)?;
    limits.set_item("schedule", crate::program::MAX_SCHEDULE)?;
    m.add("LIMITS", limits)?;
    m.add_function(wrap_pyfunction!(decode, m)?)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(stress, m)?)?;
    m.add_function(wrap_pyfunction!(refcount_pairs, m)?)?;
    m.add_function(wrap_pyfunction!(real_thread_rcu_barrier, m)?)?;
    m.add_function(wrap_pyfunction!(set_interleaving_feedback, m)?)?;
    m.add_function(wrap_pyfunction!(interleavings_seen, m)?)?;
    m.add_function(wrap_pyfunction!(novel_interleavings, m)?)?;
    m.add_class::<PyOutcome>()?;
    m.add_class::<PyEngine>()?;
    m.add_class::<PyExplorer>()?;
    Ok(())
}
