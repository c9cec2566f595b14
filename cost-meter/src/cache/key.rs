//! The cache key: a SHA-256 over named parts, each written with its length, so that no two different lists
//! of parts hash the same text.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

/// The version of the key's own layout and of the cache's files: changing it misses every entry.
pub const CACHE_FORMAT: &str = "brownout-cache-1";

/// The hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hex SHA-256 of a file's content, read in 64 KiB blocks.
pub fn file_sha256(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// A finished key: its digest (the entry's name) and the parts it was built from (kept in the entry, so a
/// team can see why two runs missed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    digest: String,
    parts: Vec<(String, String)>,
}

impl CacheKey {
    /// Starts a key. What goes in is exactly what the builder is given, plus [`CACHE_FORMAT`].
    pub fn builder() -> KeyBuilder {
        KeyBuilder { parts: vec![("format".into(), CACHE_FORMAT.into())] }
    }

    /// The hex SHA-256 naming the entry.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The parts, in the order given (values of files are their content hashes).
    pub fn parts(&self) -> &[(String, String)] {
        &self.parts
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.digest)
    }
}

/// Builds a [`CacheKey`]. Every call adds a named part; the order of calls matters.
///
/// ```
/// use brownout_cost::cache::CacheKey;
/// let a = CacheKey::builder().command(["python3", "features.py"]).version("schema-3").build();
/// let b = CacheKey::builder().command(["python3", "features.py"]).version("schema-4").build();
/// assert_ne!(a.digest(), b.digest()); // a schema change misses
/// ```
#[derive(Debug, Clone)]
pub struct KeyBuilder {
    parts: Vec<(String, String)>,
}

impl KeyBuilder {
    /// Any named part.
    pub fn part(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.parts.push((name.into(), value.into()));
        self
    }

    /// The command line, word by word (a word's boundaries count: `a b` differs from `"a b"`).
    pub fn command<S: AsRef<str>>(mut self, words: impl IntoIterator<Item = S>) -> Self {
        for w in words {
            self.parts.push(("arg".into(), w.as_ref().to_owned()));
        }
        self
    }

    /// The code version the user names (`--key-version`): bump it to invalidate.
    pub fn version(self, version: impl Into<String>) -> Self {
        self.part("version", version)
    }

    /// The schema version of the outputs (a data format, a feature set's columns): bump it to invalidate.
    pub fn schema(self, schema: impl Into<String>) -> Self {
        self.part("schema", schema)
    }

    /// An environment variable's value (unset differs from empty).
    pub fn env(self, name: &str, value: Option<&str>) -> Self {
        let value = match value {
            Some(v) => format!("={v}"),
            None => "unset".into(),
        };
        self.part(format!("env:{name}"), value)
    }

    /// An input file's content hash (its path is recorded too: the same bytes under another name miss).
    pub fn input_file(self, path: &Path) -> io::Result<Self> {
        let hash = file_sha256(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(self.part(format!("input:{}", path.display()), hash))
    }

    /// The git commit of the repository at `dir` and a hash of its uncommitted changes: `git diff HEAD
    /// --binary` (tracked files, staged or not) and the paths and contents of untracked files that are not
    /// ignored. A clean tree's hash is that of nothing.
    pub fn git(self, dir: &Path) -> io::Result<Self> {
        let (sha, dirty) = git_state(dir)?;
        Ok(self.part("git", sha).part("git-dirty", dirty))
    }

    /// The key.
    pub fn build(self) -> CacheKey {
        let mut hasher = Sha256::new();
        for (name, value) in &self.parts {
            for s in [name, value] {
                hasher.update((s.len() as u64).to_le_bytes());
                hasher.update(s.as_bytes());
            }
        }
        CacheKey { digest: hex(&hasher.finalize()), parts: self.parts }
    }
}

fn git(dir: &Path, args: &[&str]) -> io::Result<Vec<u8>> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

/// The commit and the dirty-tree hash of the repository at `dir`.
pub fn git_state(dir: &Path) -> io::Result<(String, String)> {
    let sha = String::from_utf8_lossy(&git(dir, &["rev-parse", "HEAD"])?).trim().to_owned();
    let top = String::from_utf8_lossy(&git(dir, &["rev-parse", "--show-toplevel"])?).trim().to_owned();
    let mut hasher = Sha256::new();
    let diff = git(dir, &["diff", "HEAD", "--binary"])?;
    hasher.update((diff.len() as u64).to_le_bytes());
    hasher.update(&diff);
    let untracked = git(dir, &["ls-files", "--others", "--exclude-standard", "-z", "--full-name", ":/"])?;
    for path in untracked.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let name = String::from_utf8_lossy(path);
        hasher.update((path.len() as u64).to_le_bytes());
        hasher.update(path);
        // A file that vanished since the listing hashes as missing.
        let content = file_sha256(&Path::new(&top).join(name.as_ref())).unwrap_or_else(|_| "missing".into());
        hasher.update(content.as_bytes());
    }
    Ok((sha, hex(&hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn different_parts_make_different_keys(a in proptest::collection::vec(".{0,4}", 0..4),
                                                b in proptest::collection::vec(".{0,4}", 0..4)) {
            let ka = CacheKey::builder().command(&a).build();
            let kb = CacheKey::builder().command(&b).build();
            prop_assert_eq!(ka.digest() == kb.digest(), a == b);
        }
    }

    #[test]
    fn env_unset_and_empty_differ() {
        let unset = CacheKey::builder().env("SEED", None).build();
        let empty = CacheKey::builder().env("SEED", Some("")).build();
        assert_ne!(unset.digest(), empty.digest());
    }
}
