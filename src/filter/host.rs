//! Host calls that return every status to the caller.
//!
//! The SDK's `hostcalls` wrappers `panic!` on any status they don't expect (a panic traps
//! the VM: every later request on that worker fails until Envoy reloads it). The handful of
//! calls the filter makes per request are declared here again, against the same proxy-wasm
//! ABI 0.2.1 imports the SDK uses, and return `Result<_, Status>` instead.
//! This is the only module with `unsafe` code: raw pointers across the ABI boundary.
#![allow(unsafe_code)]
// The SDK declares these imports with its `Status` enum as the return type; we read the raw
// `u32` so that a status value unknown to the SDK can't be undefined behaviour.
#![allow(clashing_extern_declarations)]

use proxy_wasm::types::{BufferType, MapType, MetricType};
use std::ptr::null_mut;

/// A proxy-wasm status other than Ok (the raw value, for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u32);

pub const NOT_FOUND: u32 = 1;
pub const CAS_MISMATCH: u32 = 8;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_set_buffer_bytes(
        buffer_type: u32,
        start: usize,
        size: usize,
        buffer_data: *const u8,
        buffer_size: usize,
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
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
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
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
}

fn check(status: u32) -> Result<(), Status> {
    if status == 0 {
        Ok(())
    } else {
        Err(Status(status))
    }
}

/// Takes ownership of a buffer the host allocated through the SDK's
/// `proxy_on_memory_allocate` (a boxed slice of exactly `size` bytes).
///
/// Safety: `data` must be null or come from the host with `size` as returned.
unsafe fn host_bytes(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        None
    } else {
        Some(Vec::from_raw_parts(data, size, size))
    }
}

/// One header's value (`Ok(None)` when absent): for a filter that needs one or two headers,
/// cheaper than the whole map.
pub fn header(map: MapType, name: &str) -> Result<Option<Vec<u8>>, Status> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    let status = unsafe {
        proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), &mut data, &mut size)
    };
    match status {
        0 => Ok(unsafe { host_bytes(data, size) }),
        NOT_FOUND => Ok(None),
        s => Err(Status(s)),
    }
}

/// The whole header map, serialized (parse it with [`crate::header_map::HeaderMap`]): one
/// host call, where reading headers one by one costs one each.
pub fn header_pairs(map: MapType) -> Result<Vec<u8>, Status> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    let status = unsafe { proxy_get_header_map_pairs(map as u32, &mut data, &mut size) };
    match status {
        0 => Ok(unsafe { host_bytes(data, size) }.unwrap_or_default()),
        NOT_FOUND => Ok(Vec::new()),
        s => Err(Status(s)),
    }
}

/// Sets a header, replacing every existing value.
pub fn set_header(map: MapType, name: &str, value: &[u8]) -> Result<(), Status> {
    check(unsafe {
        proxy_replace_header_map_value(
            map as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// Removes a header (absent is fine).
pub fn remove_header(map: MapType, name: &str) -> Result<(), Status> {
    match unsafe { proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()) } {
        0 | NOT_FOUND => Ok(()),
        s => Err(Status(s)),
    }
}

pub fn buffer(kind: BufferType, start: usize, max_size: usize) -> Result<Option<Vec<u8>>, Status> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    let status =
        unsafe { proxy_get_buffer_bytes(kind as u32, start, max_size, &mut data, &mut size) };
    match status {
        0 => Ok(unsafe { host_bytes(data, size) }),
        NOT_FOUND => Ok(None),
        s => Err(Status(s)),
    }
}

/// Replaces `size` bytes at `start` (Envoy supports only start 0 = replace, or start ≥ len
/// = append; docs/design.md, "Routing from the body").
pub fn set_buffer(kind: BufferType, start: usize, size: usize, value: &[u8]) -> Result<(), Status> {
    check(unsafe { proxy_set_buffer_bytes(kind as u32, start, size, value.as_ptr(), value.len()) })
}

/// Answers the request locally. `details` shows in Envoy's access log (%RESPONSE_CODE_DETAILS%).
pub fn send_response(
    status: u32,
    details: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> Result<(), Status> {
    let headers = crate::header_map::serialize(headers);
    check(unsafe {
        proxy_send_local_response(
            status,
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

/// Milliseconds since the Unix epoch, from the host clock (0 if the host can't tell).
pub fn now_ms() -> u64 {
    let mut ns: u64 = 0;
    match unsafe { proxy_get_current_time_nanoseconds(&mut ns) } {
        0 => ns / 1_000_000,
        _ => 0,
    }
}

/// A host property (e.g. `["response", "flags"]`); `Ok(None)` when absent or empty.
pub fn property(path: &[&str]) -> Result<Option<Vec<u8>>, Status> {
    Ok(match property_presence(path)? {
        Presence::Value(v) => Some(v),
        Presence::Absent | Presence::Empty => None,
    })
}

/// Whether a property is there, and whether it holds anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    Absent,
    Empty,
    Value(Vec<u8>),
}

/// A host property, telling an absent one from an empty one. Absent and empty values return
/// no data, so the host makes no allocation in the VM for them: the cheap way to test a mark.
pub fn property_presence(path: &[&str]) -> Result<Presence, Status> {
    // Path segments joined by NUL, as the SDK sends them.
    let mut serialized = Vec::with_capacity(path.iter().map(|p| p.len() + 1).sum());
    for (i, p) in path.iter().enumerate() {
        if i > 0 {
            serialized.push(0);
        }
        serialized.extend_from_slice(p.as_bytes());
    }
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    let status =
        unsafe { proxy_get_property(serialized.as_ptr(), serialized.len(), &mut data, &mut size) };
    match status {
        0 => Ok(match unsafe { host_bytes(data, size) } {
            Some(v) if !v.is_empty() => Presence::Value(v),
            _ => Presence::Empty,
        }),
        NOT_FOUND => Ok(Presence::Absent),
        s => Err(Status(s)),
    }
}

/// Sets a request-scoped property: Envoy keeps it in the stream's filter state as
/// `wasm.<name>` (readable by later filters, later attempts' upstream filters and the access
/// log's `%FILTER_STATE(wasm.<name>:PLAIN)%`).
pub fn set_property(name: &str, value: &[u8]) -> Result<(), Status> {
    // One segment: no separator (Envoy takes the whole path as the filter-state key).
    check(unsafe { proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) })
}

/// Shared data across the VMs of a vm_id: `(value, cas)`; `(None, 0)` when absent.
pub fn shared_data(key: &str) -> Result<(Option<Vec<u8>>, u32), Status> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    let mut cas: u32 = 0;
    let status =
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    match status {
        0 => Ok((unsafe { host_bytes(data, size) }, cas)),
        NOT_FOUND => Ok((None, 0)),
        s => Err(Status(s)),
    }
}

/// Writes shared data if its cas still matches (`0` = unconditionally).
/// `Err(Status(CAS_MISMATCH))` when another worker wrote in between.
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<(), Status> {
    check(unsafe {
        proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    })
}

pub fn define_metric(kind: MetricType, name: &str) -> Result<u32, Status> {
    let mut id: u32 = 0;
    check(unsafe { proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

pub fn increment_metric(id: u32, offset: i64) -> Result<(), Status> {
    check(unsafe { proxy_increment_metric(id, offset) })
}

pub fn record_metric(id: u32, value: u64) -> Result<(), Status> {
    check(unsafe { proxy_record_metric(id, value) })
}
