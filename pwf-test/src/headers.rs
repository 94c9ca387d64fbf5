//! Header maps as Envoy keeps them, and the proxy-wasm pair serialization.

use std::fmt;

/// An ordered header (or trailer) map, as Envoy keeps it.
///
/// Keys are lowercased on the way in, as Envoy's `LowerCaseString` does; a key may
/// appear several times; values are bytes and need not be UTF-8. Pseudo-headers
/// (`:status`, `:path`, ...) stay in front of regular headers.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Headers {
    entries: Vec<(String, Vec<u8>)>,
}

impl Headers {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The first value of `name` (any case), if present and valid UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_bytes(name)
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    /// The first value of `name` (any case), as bytes.
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        let name = name.to_ascii_lowercase();
        self.entries
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_slice())
    }

    /// Every value of `name` (any case), in order; values that are not UTF-8 show as
    /// U+FFFD.
    pub fn get_all(&self, name: &str) -> Vec<String> {
        let name = name.to_ascii_lowercase();
        self.entries
            .iter()
            .filter(|(key, _)| *key == name)
            .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
            .collect()
    }

    /// Whether `name` (any case) is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get_bytes(name).is_some()
    }

    /// Number of entries (a key with two values counts twice).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in order, with values as bytes.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_slice()))
    }

    /// The entries in order as `(key, value)` strings, handy in `assert_eq!`; values
    /// that are not UTF-8 show as U+FFFD.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .map(|(key, value)| (key.clone(), String::from_utf8_lossy(value).into_owned()))
            .collect()
    }

    /// Appends a value, keeping existing values of the same key (Envoy's `addCopy`).
    pub fn append(&mut self, name: &str, value: impl AsRef<[u8]>) {
        let name = name.to_ascii_lowercase();
        let value = value.as_ref().to_vec();
        if name.starts_with(':') {
            let at = self
                .entries
                .iter()
                .position(|(key, _)| !key.starts_with(':'))
                .unwrap_or(self.entries.len());
            self.entries.insert(at, (name, value));
        } else {
            self.entries.push((name, value));
        }
    }

    /// Replaces every value of `name` with one value (Envoy's `setCopy`: remove, then add).
    pub fn set(&mut self, name: &str, value: impl AsRef<[u8]>) {
        self.remove(name);
        self.append(name, value);
    }

    /// Removes every value of `name` (any case).
    pub fn remove(&mut self, name: &str) {
        let name = name.to_ascii_lowercase();
        self.entries.retain(|(key, _)| *key != name);
    }

    pub(crate) fn serialize(&self) -> Vec<u8> {
        let pairs: Vec<(&[u8], &[u8])> = self
            .entries
            .iter()
            .map(|(key, value)| (key.as_bytes(), value.as_slice()))
            .collect();
        serialize_pairs(&pairs)
    }

    /// Parses the proxy-wasm serialized form; `None` if it is malformed.
    pub(crate) fn deserialize(bytes: &[u8]) -> Option<Self> {
        let mut headers = Headers::new();
        for (key, value) in deserialize_pairs(bytes)? {
            headers.append(&String::from_utf8_lossy(&key), value);
        }
        Some(headers)
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.entries
                    .iter()
                    .map(|(key, value)| (key, String::from_utf8_lossy(value))),
            )
            .finish()
    }
}

/// Anything a test can pass as headers: arrays, slices and vectors of `(name, value)`
/// pairs where the value is a `&str`, `String` or bytes, or a [`Headers`].
pub trait IntoHeaders {
    /// Builds the map; keys are lowercased.
    fn into_headers(self) -> Headers;
}

impl IntoHeaders for Headers {
    fn into_headers(self) -> Headers {
        self
    }
}

impl IntoHeaders for &Headers {
    fn into_headers(self) -> Headers {
        self.clone()
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> IntoHeaders for &[(K, V)] {
    fn into_headers(self) -> Headers {
        let mut headers = Headers::new();
        for (key, value) in self {
            headers.append(key.as_ref(), value);
        }
        headers
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>, const N: usize> IntoHeaders for [(K, V); N] {
    fn into_headers(self) -> Headers {
        self.as_slice().into_headers()
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>, const N: usize> IntoHeaders for &[(K, V); N] {
    fn into_headers(self) -> Headers {
        self.as_slice().into_headers()
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> IntoHeaders for Vec<(K, V)> {
    fn into_headers(self) -> Headers {
        self.as_slice().into_headers()
    }
}

pub(crate) fn serialize_pairs(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (key, value) in pairs {
        bytes.extend_from_slice(&(key.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&(value.len() as u32).to_le_bytes());
    }
    for (key, value) in pairs {
        bytes.extend_from_slice(key);
        bytes.push(0);
        bytes.extend_from_slice(value);
        bytes.push(0);
    }
    bytes
}

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

pub(crate) fn deserialize_pairs(bytes: &[u8]) -> Option<Pairs> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let read_u32 = |at: usize| -> Option<usize> {
        let raw = bytes.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize)
    };
    let count = read_u32(0)?;
    let mut pairs = Vec::with_capacity(count.min(1024));
    let mut data = count.checked_mul(8)?.checked_add(4)?;
    for n in 0..count {
        let sizes = 4 + n * 8;
        let key_len = read_u32(sizes)?;
        let value_len = read_u32(sizes + 4)?;
        let key = bytes.get(data..data.checked_add(key_len)?)?.to_vec();
        data = data.checked_add(key_len + 1)?;
        let value = bytes.get(data..data.checked_add(value_len)?)?.to_vec();
        data = data.checked_add(value_len + 1)?;
        pairs.push((key, value));
    }
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_keeps_pseudo_headers_first() {
        let mut headers = [("x-a", "1")].into_headers();
        headers.append(":path", "/");
        assert_eq!(
            headers.pairs(),
            [
                (":path".to_string(), "/".to_string()),
                ("x-a".into(), "1".into())
            ]
        );
    }

    #[test]
    fn serialization_round_trips_bytes() {
        let headers = [("K", &b"\xff\x00v"[..]), ("k", b"")].into_headers();
        let back = Headers::deserialize(&headers.serialize()).unwrap();
        assert_eq!(back, headers);
        assert_eq!(back.get_bytes("k"), Some(&b"\xff\x00v"[..]));
        assert_eq!(back.get_all("K").len(), 2);
    }

    #[test]
    fn deserialize_rejects_truncated_input() {
        let bytes = [("a", "b")].into_headers().serialize();
        assert!(Headers::deserialize(&bytes[..bytes.len() - 3]).is_none());
    }
}
