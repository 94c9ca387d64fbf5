//! Metrics: counters, gauges and histograms in Envoy's stats.
//!
//! Define each metric once, when the plugin is configured, and keep the
//! handle: it is a `Copy` id, so using it from any stream costs one host call
//! and no lookup. Envoy lists the metrics under `wasmcustom.` in its admin
//! `/stats`.
//!
//! Tags are folded into the name as `.key.value` pairs (a counter
//! `requests` with tag `method=GET` is `requests.method.GET`), the dotted form
//! Envoy's stats use, which its `stats_config.stats_tags` regexes can extract.

use proxy_wasm::types::MetricType;

use crate::error::HostError;
use crate::host;

fn full_name(name: &str, tags: &[(&str, &str)]) -> String {
    let mut full = String::with_capacity(
        name.len()
            + tags
                .iter()
                .map(|(k, v)| k.len() + v.len() + 2)
                .sum::<usize>(),
    );
    full.push_str(name);
    for (key, value) in tags {
        full.push('.');
        full.push_str(key);
        full.push('.');
        full.push_str(value);
    }
    full
}

macro_rules! metric {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Copy, Clone, Debug, PartialEq, Eq)]
        pub struct $name {
            id: u32,
        }

        impl $name {
            /// Defines the metric `name` (Envoy returns the same metric for the
            /// same name).
            ///
            /// ```no_run
            #[doc = concat!("let metric = pwf::metrics::", stringify!($name), "::define(\"requests\")?;")]
            #[doc = concat!("let again = pwf::metrics::", stringify!($name), "::define(\"requests\")?;")]
            /// assert_eq!(metric, again); // the same metric
            /// # Ok::<(), pwf::HostError>(())
            /// ```
            pub fn define(name: &str) -> Result<$name, HostError> {
                Self::define_tagged(name, &[])
            }

            /// Defines the metric `name` with `tags` folded into its name.
            ///
            /// ```no_run
            /// // Envoy names it `requests.method.GET.code.200`.
            #[doc = concat!("let metric = pwf::metrics::", stringify!($name), "::define_tagged(")]
            ///     "requests",
            ///     &[("method", "GET"), ("code", "200")],
            /// )?;
            /// # let _ = metric;
            /// # Ok::<(), pwf::HostError>(())
            /// ```
            pub fn define_tagged(name: &str, tags: &[(&str, &str)]) -> Result<$name, HostError> {
                let id = host::define_metric($kind, &full_name(name, tags))?;
                Ok($name { id })
            }

        }
    };
}

/// `get` for the metrics Envoy can read back: counters and gauges. Envoy 1.40
/// refuses `proxy_get_metric` on a histogram (BadArgument), so a histogram
/// has no `get`.
macro_rules! readable {
    ($name:ident) => {
        impl $name {
            /// The current value.
            ///
            /// ```no_run
            #[doc = concat!("let metric = pwf::metrics::", stringify!($name), "::define(\"requests\")?;")]
            /// pwf::debug!("requests: {}", metric.get()?);
            /// # Ok::<(), pwf::HostError>(())
            /// ```
            pub fn get(&self) -> Result<u64, HostError> {
                host::get_metric(self.id)
            }
        }
    };
}

metric!(
    /// A counter: it only goes up.
    ///
    /// ```no_run
    /// let requests = pwf::metrics::Counter::define_tagged("requests", &[("plugin", "demo")])?;
    /// requests.increment(1)?;
    /// # Ok::<(), pwf::HostError>(())
    /// ```
    Counter,
    MetricType::Counter
);
metric!(
    /// A gauge: a value that goes up and down.
    ///
    /// ```no_run
    /// let in_flight = pwf::metrics::Gauge::define("in_flight")?;
    /// in_flight.add(1)?; // a stream started
    /// in_flight.add(-1)?; // and ended
    /// # Ok::<(), pwf::HostError>(())
    /// ```
    Gauge,
    MetricType::Gauge
);
metric!(
    /// A histogram: a distribution of recorded values.
    ///
    /// ```no_run
    /// let body_sizes = pwf::metrics::Histogram::define("request_body_bytes")?;
    /// body_sizes.record(1024)?;
    /// # Ok::<(), pwf::HostError>(())
    /// ```
    ///
    /// Envoy does not read a histogram back (`proxy_get_metric` answers
    /// BadArgument), so it has no `get`:
    ///
    /// ```compile_fail
    /// # use pwf_test as _; // links the native host's imports
    /// let body_sizes = pwf::metrics::Histogram::define("request_body_bytes")?;
    /// let _ = body_sizes.get()?;
    /// # Ok::<(), pwf::HostError>(())
    /// ```
    Histogram,
    MetricType::Histogram
);
readable!(Counter);
readable!(Gauge);

impl Counter {
    /// Adds `n`. Adding 0 does nothing (Envoy refuses a zero increment).
    ///
    /// ```no_run
    /// let bytes = pwf::metrics::Counter::define("request_bytes")?;
    /// bytes.increment(512)?;
    /// # Ok::<(), pwf::HostError>(())
    /// ```
    pub fn increment(&self, n: u64) -> Result<(), HostError> {
        if n == 0 {
            return Ok(());
        }
        host::increment_metric(self.id, i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl Gauge {
    /// Sets the value.
    ///
    /// ```no_run
    /// let pool = pwf::metrics::Gauge::define_tagged("pool_size", &[("pool", "auth")])?;
    /// pool.set(8)?;
    /// # Ok::<(), pwf::HostError>(())
    /// ```
    pub fn set(&self, value: u64) -> Result<(), HostError> {
        host::record_metric(self.id, value)
    }

    /// Adds `delta` (negative to subtract). Adding 0 does nothing.
    ///
    /// ```no_run
    /// let queued = pwf::metrics::Gauge::define("queued")?;
    /// queued.add(3)?;
    /// queued.add(-1)?;
    /// # Ok::<(), pwf::HostError>(())
    /// ```
    pub fn add(&self, delta: i64) -> Result<(), HostError> {
        if delta == 0 {
            return Ok(());
        }
        host::increment_metric(self.id, delta)
    }
}

impl Histogram {
    /// Records one value.
    ///
    /// ```no_run
    /// let latency = pwf::metrics::Histogram::define("auth_latency_ms")?;
    /// latency.record(42)?;
    /// # Ok::<(), pwf::HostError>(())
    /// ```
    pub fn record(&self, value: u64) -> Result<(), HostError> {
        host::record_metric(self.id, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_name_folds_tags_as_dotted_pairs() {
        assert_eq!(full_name("requests", &[]), "requests");
        assert_eq!(
            full_name("requests", &[("method", "GET"), ("code", "200")]),
            "requests.method.GET.code.200"
        );
    }
}
