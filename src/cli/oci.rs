//! `meshgate oci <plugin.wasm> <out-dir>`: the module as an OCI image in the "compat" format
//! that Istio's agent pulls (one `application/vnd.oci.image.layer.v1.tar+gzip` layer holding
//! `plugin.wasm`), written as an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/...`) that `skopeo copy oci:<dir>:<tag> docker://...` pushes to any registry.
//!
//! No Docker: the tar and gzip are made here, deterministically (mtime 0, uid/gid 0, mode
//! 0644, no image creation date), so the same module always gives the same manifest digest,
//! which is what a WasmPlugin's `sha256` pins (Istio compares it with the pulled image's
//! manifest digest).

use std::io::Write;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The OCI layout annotation that names an image's tag.
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The file name Istio's agent looks for in the layer.
pub const PLUGIN_FILE: &str = "plugin.wasm";

/// What `meshgate oci` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciImage {
    /// `sha256:<hex>` of the image manifest: the image's digest.
    pub manifest_digest: String,
    pub layer_digest: String,
    pub tag: String,
}

impl OciImage {
    /// The hex part of the manifest digest (WasmPlugin `sha256`).
    pub fn manifest_hex(&self) -> &str {
        self.manifest_digest
            .strip_prefix("sha256:")
            .unwrap_or(&self.manifest_digest)
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// A ustar archive holding one file, `plugin.wasm`.
pub fn layer_tar(wasm: &[u8]) -> Result<Vec<u8>, String> {
    let mut header = tar::Header::new_ustar();
    header
        .set_path(PLUGIN_FILE)
        .map_err(|e| format!("tar header: {e}"))?;
    header.set_size(wasm.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder
        .append(&header, wasm)
        .map_err(|e| format!("tar: {e}"))?;
    builder.into_inner().map_err(|e| format!("tar: {e}"))
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).map_err(|e| format!("gzip: {e}"))?;
    enc.finish().map_err(|e| format!("gzip: {e}"))
}

/// `plugin.wasm` out of a compat layer (tar.gz), as Istio's agent takes it out.
pub fn extract_plugin(layer: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    let entries = archive.entries().map_err(|e| format!("layer: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("layer: {e}"))?;
        let path = entry.path().map_err(|e| format!("layer: {e}"))?;
        if path.file_name().is_some_and(|n| n == PLUGIN_FILE) {
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| format!("layer: {e}"))?;
            return Ok(bytes);
        }
    }
    Err(format!("layer: no {PLUGIN_FILE}"))
}

/// The three blobs of the image: (layer, config, manifest), each as bytes.
pub struct Blobs {
    pub layer: Vec<u8>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
}

/// An OCI content descriptor. The fields of these structs are in alphabetical order: that
/// is the order the image's JSON always had, and its bytes make the digests Istio pins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub digest: String,
    pub media_type: String,
    pub size: usize,
}

impl Descriptor {
    fn of(media_type: &str, blob: &[u8]) -> Descriptor {
        Descriptor {
            annotations: BTreeMap::new(),
            digest: digest_of(blob),
            media_type: media_type.to_string(),
            size: blob.len(),
        }
    }
}

/// An image config (`application/vnd.oci.image.config.v1+json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageConfig {
    pub architecture: String,
    /// The container config: none.
    pub config: EmptyObject,
    pub os: String,
    pub rootfs: RootFs,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmptyObject {}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RootFs {
    pub diff_ids: Vec<String>,
    #[serde(rename = "type")]
    pub kind: String,
}

/// An image manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    pub media_type: String,
    pub schema_version: u32,
}

/// An image layout's `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub manifests: Vec<Descriptor>,
    pub schema_version: u32,
}

pub fn build_blobs(wasm: &[u8]) -> Result<Blobs, String> {
    let tar = layer_tar(wasm)?;
    let layer = gzip(&tar)?;
    // A plain image config (as `FROM scratch` + `ADD plugin.wasm` would give), so any tool that
    // reads the config finds the layer's uncompressed digest where it expects it.
    let config = to_bytes(&ImageConfig {
        architecture: "amd64".into(),
        config: EmptyObject {},
        os: "linux".into(),
        rootfs: RootFs {
            diff_ids: vec![digest_of(&tar)],
            kind: "layers".into(),
        },
    })?;
    let manifest = to_bytes(&Manifest {
        config: Descriptor::of(CONFIG_MEDIA_TYPE, &config),
        layers: vec![Descriptor::of(LAYER_MEDIA_TYPE, &layer)],
        media_type: MANIFEST_MEDIA_TYPE.into(),
        schema_version: 2,
    })?;
    Ok(Blobs {
        layer,
        config,
        manifest,
    })
}

fn to_bytes<T: Serialize>(v: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(v).map_err(|e| e.to_string())
}

/// Write the OCI image layout for `wasm` into `dir` (created; existing blobs are replaced, and
/// `index.json` names only this image under `tag`).
pub fn write_layout(wasm: &[u8], dir: &Path, tag: &str) -> Result<OciImage, String> {
    let blobs = build_blobs(wasm)?;
    let blob_dir = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blob_dir)
        .map_err(|e| format!("cannot create {}: {e}", blob_dir.display()))?;
    for blob in [&blobs.layer, &blobs.config, &blobs.manifest] {
        write(&blob_dir.join(sha256_hex(blob)), blob)?;
    }
    let mut manifest = Descriptor::of(MANIFEST_MEDIA_TYPE, &blobs.manifest);
    manifest
        .annotations
        .insert(REF_NAME.to_string(), tag.to_string());
    let index = Index {
        manifests: vec![manifest],
        schema_version: 2,
    };
    write(&dir.join("index.json"), &to_bytes(&index)?)?;
    write(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    Ok(OciImage {
        manifest_digest: digest_of(&blobs.manifest),
        layer_digest: digest_of(&blobs.layer),
        tag: tag.to_string(),
    })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The manifest digest (`sha256:<hex>`) that an OCI layout's `index.json` gives for `tag` (or
/// its only image when `tag` is `None`).
pub fn layout_digest(dir: &Path, tag: Option<&str>) -> Result<String, String> {
    let path = dir.join("index.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let index: Index =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let only = index.manifests.len() == 1;
    let found = index.manifests.iter().find(|m| match tag {
        Some(t) => m.annotations.get(REF_NAME).map(String::as_str) == Some(t),
        None => only,
    });
    found
        .map(|m| m.digest.clone())
        .ok_or_else(|| format!("{}: no image for tag {tag:?}", path.display()))
}

/// `meshgate oci`.
#[derive(Debug, Clone, clap::Args)]
pub struct OciArgs {
    /// The module.
    #[arg(value_name = "PLUGIN.WASM")]
    pub wasm: PathBuf,
    /// The OCI image layout to write (created if missing).
    #[arg(value_name = "OUT-DIR")]
    pub out_dir: PathBuf,
    /// The image's tag in the layout.
    #[arg(long, value_name = "TAG", default_value = "latest")]
    pub tag: String,
}

pub fn run(args: &OciArgs) -> Result<(), String> {
    let (wasm_path, out, tag) = (&args.wasm, &args.out_dir, &args.tag);
    let wasm = std::fs::read(wasm_path)
        .map_err(|e| format!("cannot read {}: {e}", wasm_path.display()))?;
    if !wasm.starts_with(b"\0asm") {
        return Err(format!("{} is not a wasm module", wasm_path.display()));
    }
    let image = write_layout(&wasm, out, tag)?;
    println!(
        "{}: oci:{}:{} digest {} (WasmPlugin sha256: {})",
        wasm_path.display(),
        out.display(),
        image.tag,
        image.manifest_digest,
        image.manifest_hex()
    );
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::io::Read;

    const WASM: &[u8] = b"\0asm\x01\0\0\0 a small module";

    #[test]
    fn layer_is_a_gzipped_tar_with_plugin_wasm() {
        let blobs = build_blobs(WASM).unwrap();
        assert_eq!(extract_plugin(&blobs.layer).unwrap(), WASM);
        assert!(extract_plugin(b"not gzip").is_err());
        let gz = flate2::read::GzDecoder::new(blobs.layer.as_slice());
        let mut archive = tar::Archive::new(gz);
        let mut entries = archive.entries().unwrap();
        let mut entry = entries.next().unwrap().unwrap();
        assert_eq!(entry.path().unwrap().to_str(), Some(PLUGIN_FILE));
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        assert_eq!(content, WASM);
        drop(entry);
        assert!(entries.next().is_none(), "exactly one file");
    }

    #[test]
    fn same_module_gives_same_digest_and_other_module_another() {
        let a = build_blobs(WASM).unwrap();
        let b = build_blobs(WASM).unwrap();
        assert_eq!(sha256_hex(&a.manifest), sha256_hex(&b.manifest));
        let c = build_blobs(b"\0asm\x01\0\0\0 another").unwrap();
        assert_ne!(sha256_hex(&a.manifest), sha256_hex(&c.manifest));
    }

    /// The image's bytes are what they were when its JSON was written untyped (the digest a
    /// deployed WasmPlugin pins stays valid for the same module).
    #[test]
    fn the_digest_of_a_module_is_stable() {
        let dir = std::env::temp_dir().join(format!("meshgate-oci-pin-{}", std::process::id()));
        let image = write_layout(WASM, &dir, "t").unwrap();
        let index = std::fs::read_to_string(dir.join("index.json")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let digest = "sha256:6a990b24a1e35b32d4070d7c6b10c2884cb280b1dbe16d9ddf7c3a6fe0bc11ce";
        assert_eq!(image.manifest_digest, digest);
        assert_eq!(
            index,
            format!(
                r#"{{"manifests":[{{"annotations":{{"org.opencontainers.image.ref.name":"t"}},"digest":"{digest}","mediaType":"application/vnd.oci.image.manifest.v1+json","size":401}}],"schemaVersion":2}}"#
            )
        );
    }

    #[test]
    fn manifest_names_one_compat_layer() {
        let blobs = build_blobs(WASM).unwrap();
        let m: Value = serde_json::from_slice(&blobs.manifest).unwrap();
        assert_eq!(m["mediaType"], MANIFEST_MEDIA_TYPE);
        let layers = m["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1);
        assert_eq!(layers[0]["mediaType"], LAYER_MEDIA_TYPE);
        assert_eq!(layers[0]["digest"], digest_of(&blobs.layer));
        assert_eq!(layers[0]["size"], blobs.layer.len());
        assert_eq!(m["config"]["digest"], digest_of(&blobs.config));
    }

    #[test]
    fn layout_index_gives_the_manifest_digest() {
        let dir = std::env::temp_dir().join(format!("meshgate-oci-unit-{}", std::process::id()));
        let image = write_layout(WASM, &dir, "v1").unwrap();
        assert_eq!(
            layout_digest(&dir, Some("v1")).unwrap(),
            image.manifest_digest
        );
        assert_eq!(layout_digest(&dir, None).unwrap(), image.manifest_digest);
        assert!(layout_digest(&dir, Some("v2")).is_err());
        let blob = dir.join("blobs/sha256").join(image.manifest_hex());
        assert_eq!(
            digest_of(&std::fs::read(blob).unwrap()),
            image.manifest_digest
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
