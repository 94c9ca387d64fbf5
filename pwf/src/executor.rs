//! A single-threaded futures executor, driven by the host.
//!
//! The host calls into the VM; the VM never waits. Tasks are polled only from
//! host callbacks: a task is polled once when it is spawned, and again only
//! after something it waits on woke it, which happens when
//! `on_http_call_response` (or a tick) delivers what it was waiting for, or
//! when plugin code wakes it (a channel send in a phase). After every callback
//! that runs plugin code the executor runs the tasks that are ready ("run
//! until stalled", as in `futures-executor`'s `LocalPool`), within a budget.
//!
//! - Wakers only enqueue; they never poll (a task woken from inside a poll is
//!   polled after that poll returns).
//! - A reentrancy guard makes a nested run a no-op: the outer run picks up
//!   whatever became ready.
//! - No `RefCell` borrow is held across a poll or a host call: a task is
//!   taken out of its slot to be polled and put back afterwards.
//! - A task is polled with its own context effective, whichever callback
//!   woke it.
//! - One run polls at most [`budget`] times. A task that wakes itself at
//!   every poll cannot hold a worker: what is still ready when the budget is
//!   spent stays queued, and the next callback of any context in the VM (a
//!   request, a call response, a tick) runs it.
//! - A waker carries its task's slot index and generation in its data word,
//!   so waking allocates nothing; a task costs one allocation, its box.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, RawWaker, RawWakerVTable, Waker};

use crate::context;
use crate::hooks;
use crate::log::{self, LogLevel};
use crate::slot::fill;

type BoxFuture = Pin<Box<dyn Future<Output = ()>>>;

struct Slot {
    generation: u16,
    /// The context the task belongs to; it is polled with that context effective.
    context_id: u32,
    task: Option<BoxFuture>,
    /// Whether the slot holds a live task (it may be out for polling).
    live: bool,
    queued: bool,
}

struct Executor {
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<u16>>,
    /// The tasks ready to be polled, first in first out; each at most once
    /// (`Slot::queued`), so never longer than the number of live tasks.
    ready: RefCell<VecDeque<TaskRef>>,
    running: Cell<bool>,
    /// How many slots hold a live task: lets the common case (no task at all)
    /// skip every scan.
    live: Cell<usize>,
    /// Whether a run has spent its budget yet in this VM (reported once).
    budget_spent: Cell<bool>,
}

thread_local! {
    static EXECUTOR: Executor = const {
        Executor {
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            ready: RefCell::new(VecDeque::new()),
            running: Cell::new(false),
            live: Cell::new(0),
            budget_spent: Cell::new(false),
        }
    };
}

/// A slot index and its generation, packed into a waker's data word.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct TaskRef {
    index: u16,
    generation: u16,
}

impl TaskRef {
    fn pack(self) -> usize {
        ((self.generation as usize) << 16) | self.index as usize
    }

    fn unpack(word: usize) -> TaskRef {
        TaskRef {
            index: (word & 0xffff) as u16,
            generation: ((word >> 16) & 0xffff) as u16,
        }
    }
}

/// The executor is full: every one of its 65,536 task slots is in use.
#[derive(Debug)]
pub(crate) struct Full;

impl std::fmt::Display for Full {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("too many tasks in this VM (65536)")
    }
}

impl std::error::Error for Full {}

const VTABLE: RawWakerVTable = RawWakerVTable::new(clone_raw, wake_raw, wake_raw, drop_raw);

fn clone_raw(data: *const ()) -> RawWaker {
    RawWaker::new(data, &VTABLE)
}

fn wake_raw(data: *const ()) {
    schedule(TaskRef::unpack(data as usize));
}

fn drop_raw(_: *const ()) {}

fn waker_for(task: TaskRef) -> Waker {
    // SAFETY: the vtable functions treat the data word as a plain integer;
    // nothing is dereferenced and nothing is owned, so every contract of
    // `RawWaker` holds. A waker used on another thread would enqueue on that
    // thread's executor, where its generation check makes it a no-op.
    unsafe { Waker::from_raw(RawWaker::new(task.pack() as *const (), &VTABLE)) }
}

fn schedule(task: TaskRef) {
    // `try_with`: a waker dropped or woken during thread teardown does nothing.
    let _ = EXECUTOR.try_with(|executor| {
        let mut slots = match executor.slots.try_borrow_mut() {
            Ok(slots) => slots,
            Err(_) => {
                executor.ready.borrow_mut().push_back(task);
                return;
            }
        };
        if let Some(slot) = slots.get_mut(task.index as usize) {
            if slot.live && slot.generation == task.generation && !slot.queued {
                slot.queued = true;
                drop(slots);
                executor.ready.borrow_mut().push_back(task);
            }
        }
    });
}

/// Whether a run is in progress (a task is being polled).
pub(crate) fn is_running() -> bool {
    EXECUTOR.with(|executor| executor.running.get())
}

/// Stores a task and returns its reference; it is not polled yet.
fn insert(context_id: u32, task: BoxFuture) -> Result<TaskRef, (Full, BoxFuture)> {
    EXECUTOR.with(|executor| {
        let mut slots = executor.slots.borrow_mut();
        let index = match executor.free.borrow_mut().pop() {
            Some(index) => index,
            None if slots.len() <= u16::MAX as usize => {
                slots.push(Slot {
                    generation: 0,
                    context_id,
                    task: None,
                    live: false,
                    queued: false,
                });
                (slots.len() - 1) as u16
            }
            None => return Err((Full, task)),
        };
        DRIVE.with(|drive| {
            if drive.get().is_none() {
                drive.set(Some(hooks::opaque(Drive {
                    run: run_ready,
                    cancel: cancel_tasks,
                })));
            }
        });
        let slot = &mut slots[index as usize];
        slot.context_id = context_id;
        // A free slot holds no task: each release follows a take.
        fill(Cell::from_mut(&mut slot.task), task);
        slot.live = true;
        executor.live.set(executor.live.get() + 1);
        slot.queued = false;
        Ok(TaskRef {
            index,
            generation: slot.generation,
        })
    })
}

/// Spawns a task for `context_id`. Unless a run is in progress (a task is
/// spawning another), the task is polled at once, so a task that needs no
/// outbound call finishes before `spawn` returns.
///
/// Returns whether the task is still pending.
pub(crate) fn spawn(
    context_id: u32,
    task: impl Future<Output = ()> + 'static,
) -> Result<bool, Full> {
    let task = insert(context_id, Box::pin(task)).map_err(|(full, _)| full)?;
    if is_running() {
        schedule(task);
        return Ok(true);
    }
    // Polled at once, without a trip through the ready queue; then whatever
    // that poll woke.
    run(|| poll_one(task));
    Ok(EXECUTOR.with(|executor| {
        executor
            .slots
            .borrow()
            .get(task.index as usize)
            .is_some_and(|slot| slot.live && slot.generation == task.generation)
    }))
}

/// Stores `task` for `context_id` without polling it: it is polled when
/// [`poll_now`] is given its reference (or when something wakes it), and
/// dropped when the context ends first. A group waiting for its calls waits
/// this way: its last landing polls it.
pub(crate) fn park(
    context_id: u32,
    task: impl Future<Output = ()> + 'static,
) -> Result<TaskRef, Full> {
    insert(context_id, Box::pin(task)).map_err(|(full, _)| full)
}

/// Polls `task` now, with its context effective; inside a run in progress,
/// right after the task being polled.
#[inline(never)]
pub(crate) fn poll_now(task: TaskRef) {
    if is_running() {
        schedule(task);
    } else {
        run(|| poll_one(task));
    }
}

/// What the callbacks drive, set when the first task is stored: a hook (see
/// `crate::hooks`), so that a plugin that never spawns carries no executor.
#[derive(Clone, Copy)]
struct Drive {
    run: fn(),
    cancel: fn(u32),
}

thread_local! {
    static DRIVE: Cell<Option<Drive>> = const { Cell::new(None) };
}

/// Polls ready tasks until none is left. A nested call returns at once.
pub(crate) fn run_until_stalled() {
    // Nothing ready (the common case after a phase): nothing to do, checked here so the
    // common case costs no call.
    let ready = EXECUTOR.with(|executor| {
        !executor.running.get()
            && executor
                .ready
                .try_borrow()
                .is_ok_and(|ready| !ready.is_empty())
    });
    if ready {
        if let Some(drive) = DRIVE.with(Cell::get) {
            (drive.run)();
        }
    }
}

/// Drops every task of `context_id`; their destructors run, with no borrow held.
pub(crate) fn cancel_context(context_id: u32) {
    // `try_with`: contexts dropped while the thread's locals are torn down
    // have nothing left to cancel.
    let live = EXECUTOR
        .try_with(|executor| executor.live.get())
        .unwrap_or(0);
    if live == 0 {
        return;
    }
    if let Ok(Some(drive)) = DRIVE.try_with(Cell::get) {
        (drive.cancel)(context_id);
    }
}

/// [`run_until_stalled`] once a task was stored.
fn run_ready() {
    // Nothing ready (the common case after a phase): nothing to do.
    let ready = EXECUTOR.with(|executor| !executor.ready.borrow().is_empty());
    if ready {
        run(|| {});
    }
}

/// How many polls one run may make: on average two for each live task, and
/// never fewer than 64. Enough for every task woken by one call response
/// (a call many streams wait for) to run at once, and for a chain of wakes
/// between tasks; bounded, so that a task that wakes itself at every poll
/// cannot spin a worker inside one callback.
fn budget() -> usize {
    EXECUTOR.with(|executor| executor.live.get().saturating_mul(2).max(64))
}

/// Runs `first`, then ready tasks until none is left or the [`budget`] is
/// spent, as the one run in progress (nothing, if a run is already in
/// progress).
fn run(first: impl FnOnce()) {
    let entered = EXECUTOR.with(|executor| !executor.running.replace(true));
    if !entered {
        return;
    }
    // Clears the guard even if a task panics and the host catches the unwind.
    struct Exit;
    impl Drop for Exit {
        fn drop(&mut self) {
            let _ = EXECUTOR.try_with(|executor| executor.running.set(false));
        }
    }
    let _exit = Exit;
    first();
    let mut polls_left = budget();
    while let Some(task) = EXECUTOR.with(|executor| executor.ready.borrow_mut().pop_front()) {
        poll_one(task);
        polls_left -= 1;
        if polls_left == 0 {
            report_spent_budget();
            break;
        }
    }
}

/// Says once per VM that a run stopped at its budget: some task wakes
/// itself again and again (or tasks wake each other in a loop).
#[cold]
fn report_spent_budget() {
    let first = EXECUTOR.with(|executor| !executor.budget_spent.replace(true));
    if first {
        log::log(
            LogLevel::Warn,
            "tasks still ready after a callback's polls: they run at the next callback \
             (a task that wakes itself at every poll)",
        );
    }
}

fn poll_one(task: TaskRef) {
    let taken = EXECUTOR.with(|executor| {
        let mut slots = executor.slots.borrow_mut();
        let slot = slots.get_mut(task.index as usize)?;
        if !slot.live || slot.generation != task.generation {
            return None;
        }
        slot.queued = false;
        let future = slot.task.take()?;
        Some((future, slot.context_id))
    });
    let Some((mut future, context_id)) = taken else {
        return;
    };
    let waker = waker_for(task);
    let poll = context::in_context(context_id, || {
        future.as_mut().poll(&mut Context::from_waker(&waker))
    });
    let leftover = EXECUTOR.with(|executor| {
        let mut slots = executor.slots.borrow_mut();
        let slot = &mut slots[task.index as usize];
        if slot.live && slot.generation == task.generation {
            if poll.is_ready() {
                release(executor, slot, task.index);
                Some(future)
            } else {
                // Its slot is empty while it is polled.
                fill(Cell::from_mut(&mut slot.task), future);
                None
            }
        } else {
            // Cancelled while it was being polled.
            Some(future)
        }
    });
    // Dropped with no borrow held: its destructors may call into pwf.
    drop(leftover);
}

fn release(executor: &Executor, slot: &mut Slot, index: u16) {
    executor.live.set(executor.live.get().saturating_sub(1));
    slot.live = false;
    slot.queued = false;
    slot.generation = slot.generation.wrapping_add(1);
    executor.free.borrow_mut().push(index);
}

/// [`cancel_context`] once a task was stored.
fn cancel_tasks(context_id: u32) {
    // One task at a time, taken out of its slot and dropped with no borrow
    // held: no list of them to build.
    let mut index = 0;
    loop {
        // `try_with`: contexts dropped while the thread's locals are torn
        // down (the SDK's dispatcher may outlive the executor) have nothing
        // left to cancel.
        let task = EXECUTOR.try_with(|executor| {
            let mut slots = executor.slots.borrow_mut();
            while let Some(slot) = slots.get_mut(index) {
                index += 1;
                if slot.live && slot.context_id == context_id {
                    let task = slot.task.take();
                    release(executor, slot, (index - 1) as u16);
                    return Some(task);
                }
            }
            None
        });
        match task {
            Ok(Some(task)) => drop(task),
            _ => return,
        }
    }
}

/// The number of live tasks, for tests and diagnostics.
pub(crate) fn live_tasks() -> usize {
    EXECUTOR.with(|executor| executor.slots.borrow().iter().filter(|s| s.live).count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;
    use std::task::Poll;

    /// Counts this thread's allocations, so tests on other threads do not interfere.
    struct Counting;

    thread_local! {
        static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    }

    // SAFETY: every call is forwarded to the system allocator unchanged.
    unsafe impl std::alloc::GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
            let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
            // SAFETY: the caller upholds `alloc`'s contract.
            unsafe { std::alloc::System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
            // SAFETY: the caller upholds `dealloc`'s contract.
            unsafe { std::alloc::System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;

    fn allocations() -> usize {
        ALLOCATIONS.with(Cell::get)
    }

    /// As the host does at the start of a callback of context `id`: tasks of
    /// `id` are then polled without switching contexts (these tests run
    /// without a host that knows any context).
    fn in_callback_of(id: u32) {
        context::enter(id, id, context::Sdk::Root);
    }

    /// A future that is pending `polls_left` times, waking itself through a
    /// stored waker, then ready; it allocates nothing itself.
    struct Countdown {
        polls_left: u32,
        polled: Rc<Cell<u32>>,
        waker: Rc<RefCell<Option<Waker>>>,
    }

    impl Future for Countdown {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polled.set(self.polled.get() + 1);
            if self.polls_left == 0 {
                return Poll::Ready(());
            }
            self.polls_left -= 1;
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    #[test]
    fn a_task_costs_one_allocation_and_its_polls_none() {
        let polled = Rc::new(Cell::new(0));
        let waker: Rc<RefCell<Option<Waker>>> = Rc::default();
        let countdown = |polls_left| Countdown {
            polls_left,
            polled: polled.clone(),
            waker: waker.clone(),
        };
        in_callback_of(11);
        // Warm up: the executor's slot table and ready queue reach their size.
        spawn(11, countdown(0)).unwrap();
        spawn(11, countdown(1)).unwrap();
        waker.borrow_mut().take().unwrap().wake();
        run_until_stalled();
        assert_eq!(live_tasks(), 0);

        let task = countdown(3);
        polled.set(0);
        let before = allocations();
        assert!(spawn(11, task).unwrap(), "pending after its first poll");
        assert_eq!(allocations() - before, 1, "spawning: the task's box only");
        let after_spawn = allocations();
        for _ in 0..3 {
            waker.borrow_mut().take().unwrap().wake();
            run_until_stalled();
        }
        assert_eq!(polled.get(), 4, "polled once at spawn and once per wake");
        assert_eq!(
            allocations(),
            after_spawn,
            "waking and polling allocate nothing"
        );
        assert_eq!(live_tasks(), 0);
    }

    #[test]
    fn task_ref_round_trips_through_a_waker_word() {
        let task = TaskRef {
            index: 513,
            generation: 65535,
        };
        assert_eq!(TaskRef::unpack(task.pack()), task);
    }

    #[test]
    fn spawn_runs_a_ready_task_to_completion_at_once() {
        let done = Rc::new(Cell::new(false));
        let flag = done.clone();
        in_callback_of(1);
        let pending = spawn(1, async move { flag.set(true) }).unwrap();
        assert!(!pending);
        assert!(done.get());
        assert_eq!(live_tasks(), 0);
    }

    #[test]
    fn cancel_context_drops_pending_tasks_and_runs_their_destructors() {
        struct Guard(Rc<Cell<bool>>);
        impl Drop for Guard {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let dropped = Rc::new(Cell::new(false));
        let guard = Guard(dropped.clone());
        in_callback_of(7);
        let pending = spawn(7, async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        })
        .unwrap();
        assert!(pending);
        assert!(!dropped.get());
        cancel_context(7);
        assert!(dropped.get());
        assert_eq!(live_tasks(), 0);
    }

    #[test]
    fn stale_waker_does_not_wake_a_recycled_slot() {
        let stash: Rc<RefCell<Option<Waker>>> = Rc::default();
        let keep = stash.clone();
        in_callback_of(3);
        spawn(3, async move {
            std::future::poll_fn(|cx| {
                *keep.borrow_mut() = Some(cx.waker().clone());
                Poll::<()>::Pending
            })
            .await
        })
        .unwrap();
        cancel_context(3);
        let polls = Rc::new(Cell::new(0));
        let count = polls.clone();
        in_callback_of(4);
        spawn(4, async move {
            std::future::poll_fn(|_| {
                count.set(count.get() + 1);
                Poll::<()>::Pending
            })
            .await
        })
        .unwrap();
        assert_eq!(polls.get(), 1);
        stash.borrow_mut().take().unwrap().wake();
        run_until_stalled();
        assert_eq!(polls.get(), 1, "the old waker must not poll the new task");
        cancel_context(4);
    }
}
