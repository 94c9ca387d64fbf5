//! Shared queues: hand work between contexts and VMs.
//!
//! A plugin registers a queue by name (usually when configured); any VM with
//! the same `vm_id` resolves it by `vm_id` and name and enqueues to it; the
//! registering plugin is woken through
//! [`Plugin::on_queue_ready`](crate::Plugin::on_queue_ready) and dequeues.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, HostError};
use crate::host;

/// A shared queue, by its host id.
///
/// ```no_run
/// use pwf::SharedQueue;
///
/// // In `Plugin::configure`:
/// let jobs = SharedQueue::register("jobs")?;
/// // In a stream:
/// jobs.enqueue(b"/login")?;
/// // In `Plugin::on_queue_ready`:
/// while let Some(item) = jobs.dequeue()? {
///     pwf::info!("job: {}", String::from_utf8_lossy(&item));
/// }
/// # Ok::<(), pwf::HostError>(())
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SharedQueue {
    id: u32,
}

impl SharedQueue {
    /// Registers the queue `name` in this VM (the same id each time for the
    /// same name); this plugin is told when it has items.
    ///
    /// ```no_run
    /// // Usually in `Plugin::configure`; keep the handle in the plugin.
    /// let jobs = pwf::SharedQueue::register("jobs")?;
    /// # Ok::<(), pwf::HostError>(())
    /// ```
    pub fn register(name: &str) -> Result<SharedQueue, HostError> {
        host::register_shared_queue(name).map(|id| SharedQueue { id })
    }

    /// The queue `name` registered by a VM with `vm_id`, if there is one.
    ///
    /// ```no_run
    /// // From another plugin in the VM with id `collector`.
    /// if let Some(jobs) = pwf::SharedQueue::resolve("collector", "jobs")? {
    ///     jobs.enqueue(b"/login")?;
    /// }
    /// # Ok::<(), pwf::HostError>(())
    /// ```
    pub fn resolve(vm_id: &str, name: &str) -> Result<Option<SharedQueue>, HostError> {
        Ok(host::resolve_shared_queue(vm_id, name)?.map(|id| SharedQueue { id }))
    }

    /// The queue with host id `id` (as passed to `on_queue_ready`).
    ///
    /// ```
    /// // In `Plugin::on_queue_ready(&self, queue_id)`:
    /// let queue_id = 3;
    /// let queue = pwf::SharedQueue::from_id(queue_id);
    /// assert_eq!(queue.id(), 3);
    /// ```
    pub fn from_id(id: u32) -> SharedQueue {
        SharedQueue { id }
    }

    /// The host's id for the queue.
    ///
    /// ```
    /// let queue = pwf::SharedQueue::from_id(7);
    /// assert_eq!(queue.id(), 7);
    /// ```
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Adds an item.
    ///
    /// ```no_run
    /// let jobs = pwf::SharedQueue::register("jobs")?;
    /// jobs.enqueue(b"reindex")?;
    /// # Ok::<(), pwf::HostError>(())
    /// ```
    pub fn enqueue(&self, item: &[u8]) -> Result<(), HostError> {
        host::enqueue_shared_queue(self.id, item)
    }

    /// Takes the oldest item, if any.
    ///
    /// ```no_run
    /// let jobs = pwf::SharedQueue::register("jobs")?;
    /// while let Some(item) = jobs.dequeue()? {
    ///     pwf::info!("job: {}", String::from_utf8_lossy(&item));
    /// }
    /// # Ok::<(), pwf::HostError>(())
    /// ```
    pub fn dequeue(&self) -> Result<Option<Vec<u8>>, HostError> {
        host::dequeue_shared_queue(self.id)
    }

    /// Adds an item encoded as JSON.
    ///
    /// ```no_run
    /// let events = pwf::SharedQueue::register("events")?;
    /// events.enqueue_json(&("login", 200))?;
    /// # Ok::<(), pwf::Error>(())
    /// ```
    pub fn enqueue_json<T: Serialize>(&self, item: &T) -> Result<(), Error> {
        Ok(self.enqueue(&serde_json::to_vec(item)?)?)
    }

    /// Takes the oldest item, decoded from JSON.
    ///
    /// ```no_run
    /// let events = pwf::SharedQueue::register("events")?;
    /// while let Some((path, status)) = events.dequeue_json::<(String, u16)>()? {
    ///     pwf::info!("{path}: {status}");
    /// }
    /// # Ok::<(), pwf::Error>(())
    /// ```
    pub fn dequeue_json<T: DeserializeOwned>(&self) -> Result<Option<T>, Error> {
        match self.dequeue()? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }
}
