//! `cargo xtask oci <example>`: package a plugin's `.wasm` as an OCI image
//! that Istio's `WasmPlugin` (`url: oci://...`) can pull.
//!
//! The image is the *oci* variant of the Wasm image specification
//! (solo-io/wasm `spec/spec.md`), the one Istio's image fetcher reads with
//! custom media types:
//!
//! - the manifest's config is the runtime config, a small JSON document of
//!   media type `application/vnd.module.wasm.config.v1+json`;
//! - the manifest has two layers: that same runtime config
//!   (`runtime-config.json`) and the module itself, media type
//!   `application/vnd.module.wasm.content.layer.v1+wasm`, the raw `.wasm`
//!   bytes, uncompressed. Istio's fetcher refuses an *oci*-variant image that
//!   does not have exactly two layers, and takes the wasm from the layer of
//!   the content media type.
//!
//! It is written as an OCI image layout directory (`oci-layout`,
//! `index.json`, `blobs/sha256/...`), which `oras cp --from-oci-layout` and
//! `crane push` push to any registry. Nothing in it depends on the time or the
//! machine: the same `.wasm` and tag give the same bytes, so the manifest
//! digest identifies the build.
//!
//! # Why no OCI crate
//!
//! The documents are the serde types below ([`Descriptor`], [`Manifest`],
//! [`Index`], [`Layout`]): typed, with the spec's field names and order, and
//! annotations in a `BTreeMap`, so the bytes are reproducible. `oci-spec` was
//! tried for them and left out on two counts: its annotations are a `HashMap`,
//! whose order changes from run to run, so reproducible bytes would rest on
//! never writing two annotations on one descriptor; and its builders bring
//! `derive_builder`, `getset`, `strum` and `regex`, which took `xtask`'s build
//! (the first step of `cargo xtask test`) from 42 s to 78 s of CPU from a
//! clean target, for three fixed documents of a few fields each. No layer is
//! a tar (this image variant stores the raw `.wasm`), so no archive crate is
//! needed either.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Media type of the runtime config (the manifest's config, and its first layer).
pub(crate) const CONFIG_MEDIA_TYPE: &str = "application/vnd.module.wasm.config.v1+json";
/// Media type of the layer that holds the `.wasm`.
pub(crate) const WASM_LAYER_MEDIA_TYPE: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
/// Media type of an OCI image manifest.
pub(crate) const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an OCI image index.
pub(crate) const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The annotation naming a layer's file.
pub(crate) const TITLE: &str = "org.opencontainers.image.title";
/// The annotation naming a manifest's tag in `index.json`.
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The file name of the runtime-config layer.
pub(crate) const RUNTIME_CONFIG_NAME: &str = "runtime-config.json";
/// The image layout version written in `oci-layout`.
const LAYOUT_VERSION: &str = "1.0.0";

const WASM_MAGIC: &[u8] = b"\0asm";

/// An OCI content descriptor: the media type, digest and size of a blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// The descriptor of `bytes` as a blob of `media_type`.
    fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest: digest(bytes),
            size: bytes.len() as u64,
            annotations: BTreeMap::new(),
        }
    }

    /// With annotation `key: value`.
    fn annotated(mut self, key: &str, value: &str) -> Descriptor {
        self.annotations.insert(key.to_owned(), value.to_owned());
        self
    }

    fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }
}

/// An OCI image manifest: the config and the layers of one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Manifest {
    schema_version: u32,
    media_type: String,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

/// An OCI image index (`index.json`): the manifests of a layout, with their tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Index {
    schema_version: u32,
    media_type: String,
    manifests: Vec<Descriptor>,
}

/// The `oci-layout` file that marks a directory as an OCI image layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Layout {
    image_layout_version: String,
}

/// Why an image could not be written or does not verify.
#[derive(Debug)]
pub(crate) struct OciError(String);

impl fmt::Display for OciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OciError {}

fn error(message: impl Into<String>) -> OciError {
    OciError(message.into())
}

fn io_error(what: &str, path: &Path, err: io::Error) -> OciError {
    error(format!("{what} {}: {err}", path.display()))
}

/// An image written to a layout directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OciImage {
    /// The layout directory.
    pub(crate) layout: PathBuf,
    /// The tag, recorded in `index.json` as `org.opencontainers.image.ref.name`.
    pub(crate) tag: String,
    /// `sha256:<hex>` of the manifest: what a registry reports after a push.
    pub(crate) manifest_digest: String,
    /// `sha256:<hex>` of the `.wasm` (the content layer).
    pub(crate) wasm_digest: String,
    /// Size of the `.wasm` in bytes.
    pub(crate) wasm_size: u64,
}

/// `sha256:<hex>` of `bytes`.
pub(crate) fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in hash {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Whether `tag` is a valid OCI tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub(crate) fn is_valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    first_ok
        && tag.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The runtime config stored as the manifest's config and first layer.
fn runtime_config() -> Vec<u8> {
    // `proxy_abi_version_0_2_1` is the ABI the proxy-wasm 0.2 SDK exports.
    let config = json!({
        "type": "envoy_proxy",
        "abiVersions": ["proxy_abi_version_0_2_1"],
        "config": {},
    });
    // A `Value` built here always serializes.
    serde_json::to_vec(&config).unwrap_or_default()
}

/// `document` as compact JSON.
fn to_json(document: &impl Serialize, what: &str) -> Result<Vec<u8>, OciError> {
    serde_json::to_vec(document).map_err(|e| error(format!("cannot write {what}: {e}")))
}

/// Reads `bytes` as the JSON document `what`.
fn from_json<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, OciError> {
    serde_json::from_slice(bytes).map_err(|e| error(format!("{what} is not valid: {e}")))
}

fn read_file<T: DeserializeOwned>(layout: &Path, name: &str) -> Result<T, OciError> {
    let path = layout.join(name);
    let bytes = fs::read(&path).map_err(|e| io_error("cannot read", &path, e))?;
    from_json(&bytes, name)
}

fn write_file(layout: &Path, name: &str, bytes: &[u8]) -> Result<(), OciError> {
    let path = layout.join(name);
    fs::write(&path, bytes).map_err(|e| io_error("cannot write", &path, e))
}

fn blob_path(layout: &Path, digest: &str) -> Result<PathBuf, OciError> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| error(format!("not a sha256 digest: `{digest}`")))?;
    Ok(layout.join("blobs").join("sha256").join(hex))
}

fn write_blob(layout: &Path, bytes: &[u8]) -> Result<String, OciError> {
    let digest = digest(bytes);
    let path = blob_path(layout, &digest)?;
    fs::write(&path, bytes).map_err(|e| io_error("cannot write", &path, e))?;
    Ok(digest)
}

/// Makes `layout` ready for a new image: a missing or empty directory is
/// fine; an OCI layout (it has an `oci-layout` file) loses its blobs, so that
/// it ends up holding exactly the new image; anything else is refused.
fn prepare(layout: &Path) -> Result<(), OciError> {
    let empty = match fs::read_dir(layout) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error("cannot read", layout, e)),
        Ok(mut entries) => entries.next().is_none(),
    };
    if empty {
        return Ok(());
    }
    if !layout.join("oci-layout").is_file() {
        return Err(error(format!(
            "{} is not empty and not an OCI layout; refusing to write into it",
            layout.display()
        )));
    }
    let blobs = layout.join("blobs");
    match fs::remove_dir_all(&blobs) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error("cannot clear", &blobs, e)),
        _ => Ok(()),
    }
}

/// Writes the `.wasm` at `wasm` as an OCI image layout in `layout`, tagged
/// `tag`. The directory is created if needed; an earlier layout there is
/// replaced, so the layout holds exactly this image. A directory that is
/// neither empty nor an OCI layout is refused.
pub(crate) fn write_layout(wasm: &Path, layout: &Path, tag: &str) -> Result<OciImage, OciError> {
    if !is_valid_tag(tag) {
        return Err(error(format!(
            "`{tag}` is not a valid OCI tag (letters, digits, `_`, `.`, `-`; at most 128; not starting with `.` or `-`)"
        )));
    }
    let module = fs::read(wasm).map_err(|e| io_error("cannot read", wasm, e))?;
    if !module.starts_with(WASM_MAGIC) {
        return Err(error(format!(
            "{} is not a WebAssembly module (it does not start with `\\0asm`)",
            wasm.display()
        )));
    }
    let title = wasm
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| error(format!("{} has no UTF-8 file name", wasm.display())))?;

    prepare(layout)?;
    let blobs = layout.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(|e| io_error("cannot create", &blobs, e))?;

    let config = runtime_config();
    write_blob(layout, &config)?;
    let wasm_digest = write_blob(layout, &module)?;

    let manifest = Manifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE.to_owned(),
        config: Descriptor::of(CONFIG_MEDIA_TYPE, &config),
        layers: vec![
            Descriptor::of(CONFIG_MEDIA_TYPE, &config).annotated(TITLE, RUNTIME_CONFIG_NAME),
            Descriptor::of(WASM_LAYER_MEDIA_TYPE, &module).annotated(TITLE, title),
        ],
    };
    let manifest = to_json(&manifest, "the manifest")?;
    let manifest_digest = write_blob(layout, &manifest)?;

    let index = Index {
        schema_version: 2,
        media_type: INDEX_MEDIA_TYPE.to_owned(),
        manifests: vec![Descriptor::of(MANIFEST_MEDIA_TYPE, &manifest).annotated(REF_NAME, tag)],
    };
    write_file(layout, "index.json", &to_json(&index, "index.json")?)?;
    let marker = Layout {
        image_layout_version: LAYOUT_VERSION.to_owned(),
    };
    write_file(layout, "oci-layout", &to_json(&marker, "oci-layout")?)?;

    Ok(OciImage {
        layout: layout.to_path_buf(),
        tag: tag.to_owned(),
        manifest_digest,
        wasm_digest,
        wasm_size: module.len() as u64,
    })
}

/// Packages example (or plugin crate) `name` of the workspace at `root`: the
/// release `.wasm` at `target/wasm32-wasip1/release/<name>.wasm` (dashes
/// become underscores, as cargo names it) into `target/oci/<name>`. The wasm
/// must have been built (`cargo build --target wasm32-wasip1 --release -p <name>`).
pub(crate) fn package(root: &Path, name: &str, tag: &str) -> Result<OciImage, OciError> {
    let file = format!("{}.wasm", name.replace('-', "_"));
    let wasm = root
        .join("target")
        .join("wasm32-wasip1")
        .join("release")
        .join(&file);
    if !wasm.is_file() {
        return Err(error(format!(
            "{} not found: build it first with `cargo build --target wasm32-wasip1 --release -p {name}`",
            wasm.display()
        )));
    }
    let layout = root.join("target").join("oci").join(name);
    let image = write_layout(&wasm, &layout, tag)?;
    verify_layout(&layout)?;
    Ok(image)
}

/// What [`verify_layout`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verified {
    /// The tag of the one manifest in `index.json`.
    pub(crate) tag: String,
    /// The manifest's digest.
    pub(crate) manifest_digest: String,
    /// The wasm layer's `org.opencontainers.image.title`.
    pub(crate) wasm_title: String,
    /// The module's bytes, read back from its blob.
    pub(crate) wasm: Vec<u8>,
}

/// Reads the blob a descriptor points at and checks its digest, its size and
/// its media type.
fn read_descriptor(
    layout: &Path,
    descriptor: &Descriptor,
    media_type: &str,
    what: &str,
) -> Result<Vec<u8>, OciError> {
    if descriptor.media_type != media_type {
        return Err(error(format!(
            "{what}: media type `{}`, expected `{media_type}`",
            descriptor.media_type
        )));
    }
    let path = blob_path(layout, &descriptor.digest)?;
    let bytes = fs::read(&path).map_err(|e| io_error("cannot read", &path, e))?;
    if bytes.len() as u64 != descriptor.size {
        return Err(error(format!(
            "{what}: blob is {} bytes, descriptor says {}",
            bytes.len(),
            descriptor.size
        )));
    }
    let actual = digest(&bytes);
    if actual != descriptor.digest {
        return Err(error(format!(
            "{what}: blob digest is {actual}, descriptor says {}",
            descriptor.digest
        )));
    }
    Ok(bytes)
}

/// Re-reads a layout written by [`write_layout`] and checks everything a
/// registry and Istio rely on: `oci-layout`, `index.json` pointing at one
/// manifest, the manifest pointing at the config and the two layers, every
/// digest and size, every media type, the titles, and the wasm magic.
pub(crate) fn verify_layout(layout: &Path) -> Result<Verified, OciError> {
    let marker: Layout = read_file(layout, "oci-layout")?;
    if marker.image_layout_version != LAYOUT_VERSION {
        return Err(error(format!(
            "oci-layout: imageLayoutVersion is not {LAYOUT_VERSION}"
        )));
    }

    let index: Index = read_file(layout, "index.json")?;
    if index.schema_version != 2 {
        return Err(error("index.json: schemaVersion is not 2"));
    }
    let [entry] = index.manifests.as_slice() else {
        return Err(error(format!(
            "index.json: expected one manifest, found {}",
            index.manifests.len()
        )));
    };
    let tag = entry
        .annotation(REF_NAME)
        .ok_or_else(|| error(format!("index.json: the manifest has no `{REF_NAME}`")))?
        .to_owned();
    let manifest = read_descriptor(layout, entry, MANIFEST_MEDIA_TYPE, "manifest")?;
    let manifest: Manifest = from_json(&manifest, "the manifest")?;
    if manifest.schema_version != 2 || manifest.media_type != MANIFEST_MEDIA_TYPE {
        return Err(error(
            "manifest: schemaVersion or mediaType is not an OCI image manifest's",
        ));
    }

    let config = read_descriptor(layout, &manifest.config, CONFIG_MEDIA_TYPE, "config")?;
    let config: Value = from_json(&config, "the config")?;
    if config["type"] != "envoy_proxy" {
        return Err(error("config: `type` is not `envoy_proxy`"));
    }

    let [config_layer, wasm_layer] = manifest.layers.as_slice() else {
        return Err(error(format!(
            "manifest: expected 2 layers (runtime config and wasm), found {}",
            manifest.layers.len()
        )));
    };
    read_descriptor(
        layout,
        config_layer,
        CONFIG_MEDIA_TYPE,
        "runtime-config layer",
    )?;
    if config_layer.annotation(TITLE) != Some(RUNTIME_CONFIG_NAME) {
        return Err(error(format!(
            "runtime-config layer: title is not `{RUNTIME_CONFIG_NAME}`"
        )));
    }
    let wasm = read_descriptor(layout, wasm_layer, WASM_LAYER_MEDIA_TYPE, "wasm layer")?;
    if !wasm.starts_with(WASM_MAGIC) {
        return Err(error("wasm layer: not a WebAssembly module"));
    }
    let wasm_title = wasm_layer
        .annotation(TITLE)
        .ok_or_else(|| error(format!("wasm layer: no `{TITLE}` annotation")))?
        .to_owned();

    Ok(Verified {
        tag,
        manifest_digest: entry.digest.clone(),
        wasm_title,
        wasm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal valid module: the magic and version 1, plus a custom section.
    const MODULE: &[u8] = b"\0asm\x01\0\0\0\0\x05\x04demo";

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pwf-oci-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn build(name: &str) -> (PathBuf, OciImage) {
        let dir = scratch(name);
        let wasm = dir.join("my_plugin.wasm");
        fs::write(&wasm, MODULE).unwrap();
        let image = write_layout(&wasm, &dir.join("layout"), "0.1.0").unwrap();
        (dir, image)
    }

    fn blob(layout: &Path, digest: &str) -> Vec<u8> {
        fs::read(blob_path(layout, digest).unwrap()).unwrap()
    }

    #[test]
    fn digest_is_sha256_of_the_bytes() {
        assert_eq!(
            digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            digest(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn write_layout_then_verify_reads_back_the_module() {
        let (dir, image) = build("roundtrip");
        let verified = verify_layout(&image.layout).unwrap();
        assert_eq!(verified.tag, "0.1.0");
        assert_eq!(verified.manifest_digest, image.manifest_digest);
        assert_eq!(verified.wasm_title, "my_plugin.wasm");
        assert_eq!(verified.wasm, MODULE);
        assert_eq!(image.wasm_digest, digest(MODULE));
        assert_eq!(image.wasm_size, MODULE.len() as u64);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn layout_files_have_the_oci_structure_and_media_types() {
        let (dir, image) = build("structure");
        let layout = &image.layout;
        let marker: Value =
            serde_json::from_slice(&fs::read(layout.join("oci-layout")).unwrap()).unwrap();
        assert_eq!(marker, json!({"imageLayoutVersion": "1.0.0"}));

        let index: Value =
            serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
        assert_eq!(index["schemaVersion"], 2);
        assert_eq!(index["mediaType"], INDEX_MEDIA_TYPE);
        let entry = &index["manifests"][0];
        assert_eq!(entry["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(entry["digest"], image.manifest_digest.as_str());
        assert_eq!(entry["annotations"][REF_NAME], "0.1.0");

        let manifest_bytes = blob(layout, &image.manifest_digest);
        assert_eq!(entry["size"], manifest_bytes.len());
        assert_eq!(digest(&manifest_bytes), image.manifest_digest);
        let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
        assert_eq!(manifest["schemaVersion"], 2);
        assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);

        let config = &manifest["config"];
        assert_eq!(config["mediaType"], CONFIG_MEDIA_TYPE);
        let config_bytes = blob(layout, config["digest"].as_str().unwrap());
        assert_eq!(config["size"], config_bytes.len());
        let config_json: Value = serde_json::from_slice(&config_bytes).unwrap();
        assert_eq!(config_json["type"], "envoy_proxy");

        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2, "Istio's fetcher wants exactly two layers");
        assert_eq!(layers[0]["mediaType"], CONFIG_MEDIA_TYPE);
        assert_eq!(layers[0]["digest"], config["digest"]);
        assert_eq!(layers[0]["annotations"][TITLE], RUNTIME_CONFIG_NAME);
        assert_eq!(layers[1]["mediaType"], WASM_LAYER_MEDIA_TYPE);
        assert_eq!(layers[1]["digest"], digest(MODULE).as_str());
        assert_eq!(layers[1]["size"], MODULE.len());
        assert_eq!(layers[1]["annotations"][TITLE], "my_plugin.wasm");
        assert_eq!(blob(layout, &digest(MODULE)), MODULE);

        // Exactly three blobs: config, wasm, manifest.
        let blobs = fs::read_dir(layout.join("blobs").join("sha256"))
            .unwrap()
            .count();
        assert_eq!(blobs, 3);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn write_layout_is_reproducible() {
        let (dir, first) = build("reproducible");
        let wasm = dir.join("my_plugin.wasm");
        let second = write_layout(&wasm, &dir.join("again"), "0.1.0").unwrap();
        assert_eq!(first.manifest_digest, second.manifest_digest);
        for file in ["index.json", "oci-layout"] {
            assert_eq!(
                fs::read(first.layout.join(file)).unwrap(),
                fs::read(second.layout.join(file)).unwrap(),
                "{file}"
            );
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rewriting_a_layout_leaves_only_the_new_image() {
        let (dir, first) = build("rewrite");
        let wasm = dir.join("my_plugin.wasm");
        let newer = b"\0asm\x01\0\0\0\0\x04\x03new";
        fs::write(&wasm, newer).unwrap();
        let second = write_layout(&wasm, &first.layout, "v2").unwrap();
        assert_ne!(first.manifest_digest, second.manifest_digest);
        let verified = verify_layout(&first.layout).unwrap();
        assert_eq!(verified.tag, "v2");
        assert_eq!(verified.manifest_digest, second.manifest_digest);
        assert_eq!(verified.wasm, newer);
        let blobs = fs::read_dir(first.layout.join("blobs").join("sha256"))
            .unwrap()
            .count();
        assert_eq!(blobs, 3, "the first image's blobs are gone");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn write_layout_refuses_a_directory_that_is_not_a_layout() {
        let dir = scratch("not-layout");
        let wasm = dir.join("p.wasm");
        fs::write(&wasm, MODULE).unwrap();
        let error = write_layout(&wasm, &dir, "latest").unwrap_err().to_string();
        assert!(error.contains("not empty and not an OCI layout"), "{error}");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn verify_rejects_a_tampered_wasm_blob() {
        let (dir, image) = build("tampered");
        let path = blob_path(&image.layout, &digest(MODULE)).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, bytes).unwrap();
        let error = verify_layout(&image.layout).unwrap_err().to_string();
        assert!(error.starts_with("wasm layer: blob digest is"), "{error}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn verify_rejects_a_truncated_blob_by_its_size() {
        let (dir, image) = build("truncated");
        let path = blob_path(&image.layout, &digest(MODULE)).unwrap();
        fs::write(&path, &MODULE[..8]).unwrap();
        let error = verify_layout(&image.layout).unwrap_err().to_string();
        assert!(error.contains("blob is 8 bytes"), "{error}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn write_layout_refuses_a_file_that_is_not_wasm() {
        let dir = scratch("not-wasm");
        let file = dir.join("plugin.wasm");
        fs::write(&file, b"#!/bin/sh\n").unwrap();
        let error = write_layout(&file, &dir.join("layout"), "latest")
            .unwrap_err()
            .to_string();
        assert!(error.contains("is not a WebAssembly module"), "{error}");
        assert!(!dir.join("layout").exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn write_layout_refuses_an_invalid_tag() {
        let dir = scratch("bad-tag");
        let wasm = dir.join("p.wasm");
        fs::write(&wasm, MODULE).unwrap();
        for tag in ["", "-x", ".x", "a/b", "a:b", &"x".repeat(129)] {
            let error = write_layout(&wasm, &dir.join("layout"), tag).unwrap_err();
            assert!(error.to_string().contains("not a valid OCI tag"), "{tag}");
        }
        assert!(is_valid_tag("0.1.0") && is_valid_tag("latest") && is_valid_tag("_x-Y.1"));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn package_names_the_missing_wasm_and_how_to_build_it() {
        let dir = scratch("package-missing");
        let error = package(&dir, "my-plugin", "latest")
            .unwrap_err()
            .to_string();
        assert!(error.contains("my_plugin.wasm not found"), "{error}");
        assert!(
            error.contains("cargo build --target wasm32-wasip1 --release -p my-plugin"),
            "{error}"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn package_writes_the_layout_under_target_oci() {
        let dir = scratch("package");
        let release = dir.join("target/wasm32-wasip1/release");
        fs::create_dir_all(&release).unwrap();
        fs::write(release.join("add_header.wasm"), MODULE).unwrap();
        let image = package(&dir, "add_header", "0.1.0").unwrap();
        assert_eq!(image.layout, dir.join("target/oci/add_header"));
        assert_eq!(verify_layout(&image.layout).unwrap().wasm, MODULE);
        fs::remove_dir_all(dir).unwrap();
    }
}
