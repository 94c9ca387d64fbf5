//! The proxy-wasm ABI's numbers and its header-map encoding.

/// A log level, as the ABI numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// 0.
    Trace,
    /// 1.
    Debug,
    /// 2.
    Info,
    /// 3.
    Warn,
    /// 4.
    Error,
    /// 5.
    Critical,
}

impl LogLevel {
    pub(crate) fn from_abi(level: i32) -> Option<LogLevel> {
        Some(match level {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }

    pub(crate) fn to_abi(self) -> i32 {
        self as i32
    }
}

/// `proxy_status_t`.
pub(crate) mod status {
    pub(crate) const OK: i32 = 0;
    pub(crate) const NOT_FOUND: i32 = 1;
    pub(crate) const BAD_ARGUMENT: i32 = 2;
    pub(crate) const CAS_MISMATCH: i32 = 8;
}

/// `proxy_map_type_t`.
pub(crate) mod map {
    pub(crate) const REQUEST_HEADERS: i32 = 0;
    pub(crate) const REQUEST_TRAILERS: i32 = 1;
    pub(crate) const RESPONSE_HEADERS: i32 = 2;
    pub(crate) const RESPONSE_TRAILERS: i32 = 3;
    pub(crate) const CALL_RESPONSE_HEADERS: i32 = 6;
    pub(crate) const CALL_RESPONSE_TRAILERS: i32 = 7;
}

/// `proxy_buffer_type_t`.
pub(crate) mod buffer {
    pub(crate) const REQUEST_BODY: i32 = 0;
    pub(crate) const RESPONSE_BODY: i32 = 1;
    pub(crate) const CALL_RESPONSE_BODY: i32 = 4;
    pub(crate) const VM_CONFIGURATION: i32 = 6;
    pub(crate) const PLUGIN_CONFIGURATION: i32 = 7;
}

/// `proxy_stream_type_t`.
pub(crate) mod stream {
    pub(crate) const REQUEST: i32 = 0;
    pub(crate) const RESPONSE: i32 = 1;
}

/// Encodes header pairs the way the ABI passes them: a count, then each
/// key and value length, then each key and value, each followed by a NUL.
pub(crate) fn encode_map(pairs: &[(String, String)]) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (key, value) in pairs {
        bytes.extend_from_slice(&(key.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&(value.len() as u32).to_le_bytes());
    }
    for (key, value) in pairs {
        bytes.extend_from_slice(key.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0);
    }
    bytes
}

/// Decodes [`encode_map`]'s format; `None` when it is malformed.
pub(crate) fn decode_map(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let word = |at: usize| -> Option<usize> {
        let slice = bytes.get(at..at + 4)?;
        Some(u32::from_le_bytes(slice.try_into().ok()?) as usize)
    };
    let count = word(0)?;
    let mut data = 4 + count.checked_mul(8)?;
    let mut pairs = Vec::with_capacity(count.min(1024));
    for n in 0..count {
        let key_len = word(4 + n * 8)?;
        let value_len = word(8 + n * 8)?;
        let key = bytes.get(data..data + key_len)?;
        data += key_len + 1;
        let value = bytes.get(data..data + value_len)?;
        data += value_len + 1;
        pairs.push((
            String::from_utf8_lossy(key).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        ));
    }
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_map_reads_what_encode_map_writes() {
        let pairs = vec![
            (":status".to_owned(), "200".to_owned()),
            ("x".to_owned(), String::new()),
        ];
        assert_eq!(decode_map(&encode_map(&pairs)), Some(pairs));
    }

    #[test]
    fn decode_map_rejects_truncated_input() {
        let bytes = encode_map(&[("key".to_owned(), "value".to_owned())]);
        assert_eq!(decode_map(&bytes[..bytes.len() - 3]), None);
    }
}
