//! Compiled checks on disk, so a second start does not recompile.
//!
//! An artifact is keyed by the component's content hash and the engine's compatibility hash
//! (wasmtime version and every setting that affects code), so a changed check or an upgraded
//! agent never loads a stale artifact. Writes go through a temporary file and a rename, so a
//! crash mid-write leaves no half file, and concurrent agents sharing a volume do not collide.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

pub struct ArtifactCache {
    dir: PathBuf,
    engine_hash: u64,
}

/// How a component was obtained (reported by the benchmarks and in debug logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Compiled,
    Cache,
}

impl ArtifactCache {
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        ArtifactCache { dir, engine_hash: hasher.finish() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_for(&self, name: &str, wasm: &[u8]) -> PathBuf {
        let digest = Sha256::digest(wasm);
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{name}-{hex}-{:016x}.cwasm", self.engine_hash))
    }

    /// The compiled component, from the cache when present, else compiled and stored.
    /// A cache that cannot be written is only a warning: the check still runs.
    pub fn load(&self, engine: &Engine, name: &str, wasm: &[u8]) -> wasmtime::Result<(Component, Origin)> {
        let path = self.path_for(name, wasm);
        if path.is_file() {
            // SAFETY: the file was written by `Component::serialize` of an engine with the same
            // compatibility hash (it is in the name), into a directory only the agent writes.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, Origin::Cache)),
                Err(e) => tracing::warn!(path = %path.display(), "discarding unreadable cached artifact: {e:#}"),
            }
        }
        let component = Component::new(engine, wasm)?;
        if let Err(e) = self.store(&path, &component) {
            tracing::warn!(dir = %self.dir.display(), "cannot cache the compiled {name} check: {e:#}");
        }
        Ok((component, Origin::Compiled))
    }

    fn store(&self, path: &Path, component: &Component) -> wasmtime::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let bytes = component.serialize()?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}
