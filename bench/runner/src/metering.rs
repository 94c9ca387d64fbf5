//! Guest instructions per request, counted by pwf-test's wasm backend (fuel).

use pwf_bench_meter::{
    CallResponse, Exchange, Fuel, FunctionProfile, LogLevel, Outcome, Phase, Profile, Vm, VmOptions,
};

use crate::{Example, Result};

/// The fuel of one plugin over many requests.
#[derive(Clone, Debug)]
pub(crate) struct Metered {
    /// The average fuel per request, phase by phase.
    pub(crate) per_phase: [f64; 5],
    /// The average fuel per request.
    pub(crate) per_request: f64,
    /// Linear memory after instantiation and `_initialize`, in pages.
    pub(crate) pages_at_instantiation: u64,
    /// Linear memory after every request, in pages.
    pub(crate) pages_after: u64,
    /// The fuel of start-up (`_initialize`, vm start, configure).
    pub(crate) startup: u64,
    /// What the plugin did with each request.
    pub(crate) outcomes: Vec<Outcome>,
    /// Where the fuel of the metered requests went, and the host calls.
    pub(crate) profile: Profile,
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The request headers Envoy hands a filter for a `wrk` request.
fn request_headers() -> Vec<(String, String)> {
    pairs(&[
        (":authority", "127.0.0.1:10000"),
        (":path", "/"),
        (":method", "GET"),
        (":scheme", "http"),
        ("user-agent", "wrk"),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "4b3c5f1e-8f2a-4d7e-9b1c-2a6e0f9d8c7b"),
    ])
}

/// An upstream's response headers.
fn response_headers() -> Vec<(String, String)> {
    pairs(&[
        (":status", "200"),
        ("content-type", "application/json"),
        ("content-length", "53"),
        ("date", "Thu, 01 Jan 2026 00:00:00 GMT"),
        ("server", "envoy"),
        ("x-envoy-upstream-service-time", "0"),
    ])
}

/// The parity of 64-bit FNV-1a, as the auth examples compute it.
pub(crate) fn fnv1a_even(body: &[u8]) -> bool {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in body {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash.is_multiple_of(2)
}

/// A 53-byte `{"uuid": ...}` body whose FNV-1a hash has the given parity.
pub(crate) fn uuid_body(even: bool) -> Vec<u8> {
    (0u32..)
        .map(|n| {
            format!("{{\"uuid\": \"7f1c2a3b-4d5e-4f60-8a71-92b3c4d5{n:04x}\"}}\n").into_bytes()
        })
        .find(|body| fnv1a_even(body) == even)
        .unwrap_or_default()
}

fn call_response(body: Vec<u8>) -> CallResponse {
    CallResponse {
        headers: pairs(&[
            (":status", "200"),
            ("content-type", "application/json"),
            ("content-length", &body.len().to_string()),
            ("x-envoy-upstream-service-time", "1"),
        ]),
        body,
        trailers: Vec::new(),
    }
}

/// The exchanges the meter cycles through for `example`: for the auth
/// example, one granted and one forbidden, so both paths count.
pub(crate) fn exchanges(example: Example) -> Vec<Exchange> {
    let exchange = |responses: Vec<CallResponse>| Exchange {
        request_headers: request_headers(),
        response_headers: response_headers(),
        call_responses: responses,
    };
    match example {
        Example::SharedData => vec![exchange(Vec::new())],
        Example::MultipleDispatches => vec![exchange(vec![call_response(uuid_body(true))])],
        Example::HttpAuthRandom => vec![
            exchange(vec![call_response(uuid_body(true))]),
            exchange(vec![call_response(uuid_body(false))]),
        ],
    }
}

/// The configuration both rate limiters are metered with: a limit no key
/// reaches, so every request takes the same (allowed) path in both.
pub(crate) const RATE_LIMIT_CONFIG: &str = r#"{"limit": {"requests": 1000000, "per": "1h"}}"#;

/// How many distinct API keys the rate limiters are metered with, in turn.
pub(crate) const RATE_LIMIT_KEYS: usize = 256;

/// Guest instructions per request of a rate limiter plugin configured with
/// [`RATE_LIMIT_CONFIG`], its requests carrying [`RATE_LIMIT_KEYS`] API keys
/// in turn, at level warning; averaged over `requests` after `warmup` (by
/// which every key exists).
pub(crate) fn meter_rate_limit(wasm: &[u8], warmup: usize, requests: usize) -> Result<f64> {
    let options = VmOptions {
        configuration: RATE_LIMIT_CONFIG.as_bytes().to_vec(),
        log_level: LogLevel::Warn,
        ..VmOptions::default()
    };
    let mut vm = Vm::load(wasm, options)?;
    let exchanges: Vec<Exchange> = (0..RATE_LIMIT_KEYS)
        .map(|key| {
            let mut headers = request_headers();
            headers.push(("x-api-key".to_owned(), format!("client-{key:04}")));
            Exchange {
                request_headers: headers,
                response_headers: response_headers(),
                call_responses: Vec::new(),
            }
        })
        .collect();
    let mut total = Fuel::default();
    for n in 0..warmup.max(RATE_LIMIT_KEYS) + requests {
        let (fuel, outcome) = vm.request(&exchanges[n % exchanges.len()])?;
        if let Some(response) = &outcome.local_response {
            return Err(format!("request {n} was answered {response:?}, not let through").into());
        }
        if n >= warmup.max(RATE_LIMIT_KEYS) {
            total.accumulate(&fuel);
        }
    }
    Ok(total.total() as f64 / requests.max(1) as f64)
}

/// Loads `wasm` and drives `warmup + requests` streams through it; averages
/// the last `requests`.
pub(crate) fn meter(
    wasm: &[u8],
    example: Example,
    log_level: LogLevel,
    warmup: usize,
    requests: usize,
) -> Result<Metered> {
    let options = VmOptions {
        configuration: Vec::new(),
        log_level,
        ..VmOptions::default()
    };
    let mut vm = Vm::load(wasm, options)?;
    let pages_at_instantiation = vm.pages_at_instantiation();
    let startup = vm.startup_fuel();
    let exchanges = exchanges(example);
    let mut total = Fuel::default();
    let mut outcomes = Vec::with_capacity(requests);
    for n in 0..warmup + requests {
        if n == warmup {
            vm.take_profile();
        }
        let (fuel, outcome) = vm.request(&exchanges[n % exchanges.len()])?;
        if n >= warmup {
            total.accumulate(&fuel);
            outcomes.push(outcome);
        }
    }
    let count = requests.max(1) as f64;
    let mut per_phase = [0.0; 5];
    for (slot, phase) in per_phase.iter_mut().zip(Phase::ALL) {
        *slot = total.phase(phase) as f64 / count;
    }
    Ok(Metered {
        per_phase,
        per_request: total.total() as f64 / count,
        pages_at_instantiation,
        pages_after: vm.memory_pages(),
        startup,
        outcomes,
        profile: vm.take_profile(),
    })
}

/// Where the fuel of `requests` requests (after a warm-up) goes, function
/// by function and between host calls, at level info.
pub(crate) fn profile_functions(
    wasm: &[u8],
    example: Example,
    requests: usize,
) -> Result<(FunctionProfile, Profile)> {
    let options = VmOptions {
        function_profile: true,
        ..VmOptions::default()
    };
    let mut vm = Vm::load(wasm, options)?;
    let exchanges = exchanges(example);
    for n in 0..10 + requests {
        if n == 10 {
            vm.take_function_profile();
            vm.take_profile();
        }
        vm.request(&exchanges[n % exchanges.len()])?;
    }
    Ok((vm.take_function_profile(), vm.take_profile()))
}

/// The first request where two plugins behaved differently, described.
pub(crate) fn first_difference(a: &[Outcome], b: &[Outcome]) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!("{} requests against {}", a.len(), b.len()));
    }
    a.iter()
        .zip(b)
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .map(|(n, (a, b))| format!("request {n}: {a:?}\n  against {b:?}"))
}

/// Whether a plugin refuses, without trapping, a configuration nested
/// `depth` levels deep: a stack too small for its JSON parser traps instead.
pub(crate) fn survives_deep_config(wasm: &[u8], depth: usize) -> Result<bool> {
    let configuration = format!("{{\"nested\": {}{}}}", "[".repeat(depth), "]".repeat(depth));
    let options = VmOptions {
        configuration: configuration.into_bytes(),
        ..VmOptions::default()
    };
    match Vm::load(wasm, options) {
        Ok(_) => Ok(true),
        Err(error) if error.is_refusal() => Ok(true),
        Err(error) => {
            eprintln!("nested configuration: {error}");
            Ok(false)
        }
    }
}
