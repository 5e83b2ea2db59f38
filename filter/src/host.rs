//! The filter's own host calls (wasm32 only): thin imports of exactly the proxy-wasm ABI 0.2.1
//! functions the filter uses, each returning `Result` for every status instead of panicking as
//! `proxy_wasm::hostcalls` 0.2.5 does on any status it did not expect (and reading the status
//! into an enum, which is undefined behaviour for an unlisted value). Also the `log` backend,
//! replacing the SDK's, which `unwrap`s the log call. Byte parsing lives in `abi` (pure, tested
//! natively); what is left here is only `unsafe` plumbing.
//!
//! Memory the host returns was allocated through the SDK's `proxy_on_memory_allocate` (a boxed
//! `[u8]` of exactly `size` bytes, alignment 1), so it is owned here with
//! `Vec::from_raw_parts(ptr, size, size)` — the same layout, freed when the `Vec` drops — exactly
//! as the SDK does it. A null pointer means the host returned no data.
//!
//! The one SDK host call left is `dispatch_http_call` (see [`dispatch_http_call`]).

use crate::abi;
pub use crate::abi::{HostError, Status};
use std::ptr::{null, null_mut};
use std::time::Duration;

/// `proxy_map_type_t` values the filter reads: the request's, the response's and a callout
/// answer's headers.
#[derive(Clone, Copy, Debug)]
#[repr(u32)]
pub enum HeaderMap {
    Request = 0,
    Response = 2,
    CallResponse = 6,
}

/// `proxy_buffer_type_t` values the filter reads.
#[derive(Clone, Copy, Debug)]
#[repr(u32)]
pub enum BufferType {
    HttpCallResponseBody = 4,
    PluginConfiguration = 7,
}

/// `proxy_stream_type_t` values the filter resumes.
#[derive(Clone, Copy, Debug)]
#[repr(u32)]
pub enum StreamType {
    HttpRequest = 0,
    HttpResponse = 1,
}

/// `proxy_log_level_t`.
#[derive(Clone, Copy, Debug)]
#[repr(u32)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

/// `proxy_metric_type_t`.
const METRIC_COUNTER: u32 = 0;
const METRIC_GAUGE: u32 = 1;
const METRIC_HISTOGRAM: u32 = 2;

/// What kind of metric [`define_metric`] defines.
#[derive(Clone, Copy, Debug)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

// Every import returns the raw `u32` status (see `abi::Status` for why not an enum). The
// signatures are the ABI's; the SDK declares the same imports, which is fine for wasm-ld as
// long as the wasm types agree (all `i32` but the `i64` offset and the `u64` time pointer).
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
}

fn ok(raw: u32) -> Result<(), Status> {
    Status::check(raw)
}

/// Takes ownership of bytes the host allocated in this VM. `None` for a null pointer (no
/// data); the size is then meaningless and ignored.
///
/// # Safety
/// `data`/`size` must come from a host call that returned Ok, so that a non-null `data` is a
/// fresh `proxy_on_memory_allocate(size)` block nobody else owns.
unsafe fn owned(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        None
    } else {
        // SAFETY: see the function's contract; the SDK allocator gives a boxed slice of `size`
        // bytes with alignment 1, the layout a `Vec<u8>` of capacity `size` frees.
        Some(unsafe { Vec::from_raw_parts(data, size, size) })
    }
}

/// Removes every value of header `name` from `map`.
pub fn remove_header(map: HeaderMap, name: &str) -> Result<(), Status> {
    // SAFETY: `name` is alive for the call.
    ok(unsafe { proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()) })
}

/// Asks for `on_tick` on the root context every `period` (0 stops it).
pub fn set_tick_period(period: Duration) -> Result<(), Status> {
    let millis = u32::try_from(period.as_millis()).unwrap_or(u32::MAX);
    // SAFETY: no pointers.
    ok(unsafe { proxy_set_tick_period_milliseconds(millis) })
}

/// Makes the following host calls act on the stream of `context_id` (from the root context's
/// tick: resuming a request whose callout has stalled).
pub fn set_effective_context(context_id: u32) -> Result<(), Status> {
    // SAFETY: no pointers.
    ok(unsafe { proxy_set_effective_context(context_id) })
}

/// Writes one log line. Errors are returned, not raised; the logger below ignores them.
pub fn log(level: LogLevel, message: &str) -> Result<(), Status> {
    // SAFETY: the pointer and length describe `message`, alive for the call.
    ok(unsafe { proxy_log(level as u32, message.as_ptr(), message.len()) })
}

/// The host clock, as time since the epoch.
pub fn current_time() -> Result<Duration, Status> {
    let mut nanos: u64 = 0;
    // SAFETY: the host writes one u64 to a valid local.
    ok(unsafe { proxy_get_current_time_nanoseconds(&mut nanos) })?;
    Ok(Duration::from_nanos(nanos))
}

/// Up to `max_size` bytes of a buffer from its start. `Ok(None)` when the buffer does not
/// exist (NotFound) or is empty.
pub fn buffer(buffer_type: BufferType, max_size: usize) -> Result<Option<Vec<u8>>, Status> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: out-pointers to valid locals; the returned memory is owned by `owned`.
    let raw =
        unsafe { proxy_get_buffer_bytes(buffer_type as u32, 0, max_size, &mut data, &mut size) };
    match Status(raw) {
        // SAFETY: the call returned Ok.
        Status::OK => Ok(unsafe { owned(data, size) }),
        Status::NOT_FOUND => Ok(None),
        status => Err(status),
    }
}

/// All pairs of a header map, parsed with bounds checks. Names are text (Envoy's codecs only
/// let token characters through); values are bytes.
pub fn header_map(map: HeaderMap) -> Result<abi::Headers, HostError> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: out-pointers to valid locals; the returned memory is owned by `owned`.
    ok(unsafe { proxy_get_header_map_pairs(map as u32, &mut data, &mut size) })?;
    // SAFETY: the call returned Ok.
    match unsafe { owned(data, size) } {
        Some(bytes) => Ok(abi::parse_pairs(&bytes)?),
        None => Ok(Vec::new()),
    }
}

// Unused until the filter reads single request headers instead of whole maps (next issue).
#[allow(dead_code)]
/// One header's value, `Ok(None)` if absent. Envoy returns the first value of a header that
/// appears more than once.
pub fn header_value(map: HeaderMap, name: &str) -> Result<Option<Vec<u8>>, Status> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: `name` is alive for the call; out-pointers to valid locals.
    let raw = unsafe {
        proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), &mut data, &mut size)
    };
    match Status(raw) {
        // An empty value comes back as no memory at all: present, but empty.
        // SAFETY: the call returned Ok.
        Status::OK => Ok(Some(unsafe { owned(data, size) }.unwrap_or_default())),
        Status::NOT_FOUND => Ok(None),
        status => Err(status),
    }
}

/// One request header's value (see [`header_value`]).
#[allow(dead_code)]
pub fn request_header(name: &str) -> Result<Option<Vec<u8>>, Status> {
    header_value(HeaderMap::Request, name)
}

/// Sends a local reply; the host sends it once the current callback returns.
pub fn send_local_response(
    status_code: u32,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(), HostError> {
    let headers = abi::serialize_pairs(headers)?;
    // SAFETY: every pointer/length pair describes a live local slice; the details are empty.
    ok(unsafe {
        proxy_send_local_response(
            status_code,
            null(),
            0,
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            // Not a gRPC reply.
            -1,
        )
    })?;
    Ok(())
}

/// Resumes a paused request or response.
pub fn continue_stream(stream_type: StreamType) -> Result<(), Status> {
    // SAFETY: no pointers.
    ok(unsafe { proxy_continue_stream(stream_type as u32) })
}

/// Defines a counter and returns its id.
pub fn define_counter(name: &str) -> Result<u32, Status> {
    define_metric(MetricKind::Counter, name)
}

pub fn define_metric(kind: MetricKind, name: &str) -> Result<u32, Status> {
    let kind = match kind {
        MetricKind::Counter => METRIC_COUNTER,
        MetricKind::Gauge => METRIC_GAUGE,
        MetricKind::Histogram => METRIC_HISTOGRAM,
    };
    let mut id: u32 = 0;
    // SAFETY: `name` is alive for the call; the host writes one u32 to a valid local.
    ok(unsafe { proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// Sets a gauge, or records one value in a histogram.
pub fn record_metric(id: u32, value: u64) -> Result<(), Status> {
    // SAFETY: no pointers.
    ok(unsafe { proxy_record_metric(id, value) })
}

/// A shared-data value (shared by every VM of this `vm_id` in the Envoy) and its CAS token;
/// `None` when the key was never set.
pub fn shared_data(key: &str) -> Result<(Option<Vec<u8>>, u32), Status> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    let mut cas: u32 = 0;
    // SAFETY: `key` is alive for the call; the host writes to valid locals.
    let raw =
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    if Status(raw) == Status::NOT_FOUND {
        return Ok((None, 0));
    }
    ok(raw)?;
    // SAFETY: the call returned Ok.
    Ok((unsafe { owned(data, size) }, cas))
}

/// Sets a shared-data value; `cas` 0 sets unconditionally, otherwise only if the value is
/// still the one that token was read with (`Err(Status::CAS_MISMATCH)` if not).
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<(), Status> {
    // SAFETY: `key` and `value` are alive for the call.
    ok(unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) })
}

/// Adds `offset` to a counter.
pub fn increment_metric(id: u32, offset: i64) -> Result<(), Status> {
    // SAFETY: no pointers.
    ok(unsafe { proxy_increment_metric(id, offset) })
}

/// Sends an HTTP callout; the answer arrives in `on_http_call_response` with the token.
///
/// This is the one call still made through `proxy_wasm::hostcalls`: the SDK's dispatcher
/// `expect`s every token it hands to `on_http_call_response` to have been registered, and only
/// its own `dispatch_http_call` registers one (`register_callout` is crate-private). A call of
/// our own would make every callout answer trap the VM. The SDK's version panics on any status
/// but Ok, BadArgument and InternalFailure; Envoy's `proxy_http_call` (proxy-wasm-cpp-host
/// `exports.cc` `http_call` → Envoy `Context::httpCall`) returns only those three plus
/// InvalidMemoryAccess, which needs a pointer outside the VM's memory and the SDK passes its
/// own live buffers. So its panic arm is unreachable with Envoy. The arguments are checked
/// here first anyway, so what Envoy would refuse as BadArgument never reaches it.
pub fn dispatch_http_call(
    cluster: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<u32, Status> {
    let has = |name: &str| headers.iter().any(|(n, v)| *n == name && !v.is_empty());
    // Envoy's own preconditions (BadArgument): a cluster, :method, :path and :authority.
    // Timeout 0 would mean "none" to Envoy, and the SDK truncates milliseconds to u32.
    let millis = u32::try_from(timeout.as_millis()).unwrap_or(0);
    if cluster.is_empty() || millis == 0 || !(has(":method") && has(":path") && has(":authority")) {
        return Err(Status::BAD_ARGUMENT);
    }
    proxy_wasm::hostcalls::dispatch_http_call(cluster, headers.to_vec(), None, vec![], timeout)
        .map_err(|status| Status(status as u32))
}

/// The `log` crate's backend: every record goes to `proxy_log`, and a host error is dropped
/// (there is nowhere to report it) instead of trapping the VM as the SDK's logger would.
struct HostLogger;

static LOGGER: HostLogger = HostLogger;

impl log::Log for HostLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Trace => LogLevel::Trace,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Info => LogLevel::Info,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Error => LogLevel::Error,
        };
        let _ = match record.args().as_str() {
            Some(message) => log(level, message),
            None => log(level, &record.args().to_string()),
        };
    }

    fn flush(&self) {}
}

/// Installs the logger (once per VM; later calls only change the level) and a panic hook
/// that logs the panic at critical before the VM traps, as the SDK's hook did. The SDK's
/// `proxy_wasm::set_log_level` must not be called as well: its first call `unwrap`s
/// `log::set_logger`, which fails once this logger is installed.
pub fn set_log_level(level: log::LevelFilter) {
    if log::set_logger(&LOGGER).is_ok() {
        std::panic::set_hook(Box::new(|info| {
            let _ = log(LogLevel::Critical, &info.to_string());
        }));
    }
    log::set_max_level(level);
}
