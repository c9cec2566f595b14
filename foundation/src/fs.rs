//! Replacing files atomically.
//!
//! [`write_atomically`] writes a file so that a reader, or the next start after a crash, sees either the old
//! content or the new one, whole, never a mix or a prefix:
//!
//! 1. a new temporary file is created *exclusively* (`O_CREAT | O_EXCL`), under a unique random name, in the
//!    target's own directory (so the final rename stays on one file system). An existing file or a symlink
//!    planted at that name makes the creation fail instead of being followed; another name is then tried;
//! 2. it gets the permissions of the file it replaces (or, for a new file, `0o666` less the umask, as
//!    `File::create` would), and the bytes are written and fsynced;
//! 3. it is renamed over the target, and the directory is fsynced so the rename itself survives a crash.
//!
//! On an error the temporary file is removed and the target is untouched. A process killed between 1 and 3
//! leaves its temporary file (`.NAME.XXXXXX.tmp`) behind; it is never read, and it is safe to delete.
//!
//! A path that is a symlink (or a chain of them, such as a Kubernetes ConfigMap's `NAME -> ..data/NAME`,
//! `..data -> ..2026_12_04_x`) is resolved first ([`resolve_symlinks`]): the link's final target is replaced
//! and the links stay links. Renaming over the link itself would cut the file loose from what it pointed to.
//!
//! Ownership is not carried over (that needs privileges); permissions are.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// How many symlinks [`resolve_symlinks`] follows before it gives up (Linux's own limit).
pub const MAX_SYMLINK_HOPS: usize = 40;

/// The random characters in a temporary file's name.
const RANDOM_CHARS: usize = 6;

/// The path `path` finally refers to, following symlinks on its last component until that is not a symlink
/// (a regular file, a directory, or nothing yet). A relative link is taken relative to the directory that holds
/// it, as the kernel does. A path that is not a symlink, or does not exist, comes back unchanged.
///
/// Only the last component is resolved: directories on the way may stay symlinks (`..data/NAME` keeps
/// `..data`), which is what keeps a ConfigMap's layout working after a write.
///
/// # Errors
///
/// A link that cannot be read, or more than [`MAX_SYMLINK_HOPS`] links in a row (a loop).
pub fn resolve_symlinks(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..=MAX_SYMLINK_HOPS {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&current)?;
                current = if target.is_absolute() { target } else { parent_dir(&current).join(target) };
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{}: more than {MAX_SYMLINK_HOPS} symbolic links in a row (a loop?)", path.display()),
    ))
}

/// Replaces the content of `path` with `bytes` atomically (see the [module documentation](self)): a unique
/// temporary file created exclusively in the same directory, the old file's permissions, write, fsync, rename,
/// fsync of the directory. Through a symlink, the link's final target is replaced and the link kept.
///
/// # Errors
///
/// Any failure to resolve, create, write, sync or rename; the target is then untouched and the temporary file
/// removed. The error does not name `path`: callers add it.
pub fn write_atomically(path: impl AsRef<Path>, bytes: &[u8]) -> io::Result<()> {
    write_with(path.as_ref(), bytes, RANDOM_CHARS)
}

fn write_with(path: &Path, bytes: &[u8], random_chars: usize) -> io::Result<()> {
    let target = resolve_symlinks(path)?;
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{}: not a file name", target.display())))?;
    let dir = parent_dir(&target);
    let existing = match fs::metadata(&target) {
        Ok(meta) => Some(meta.permissions()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp").rand_bytes(random_chars);
    #[cfg(unix)]
    if existing.is_none() {
        use std::os::unix::fs::PermissionsExt;
        // What `File::create` asks for (the umask applies), not the temporary file's default 0o600.
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(dir)?;
    if let Some(permissions) = existing {
        tmp.as_file().set_permissions(permissions)?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    // On failure the error hands the temporary file back; dropping it removes it.
    tmp.persist(&target).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    // A directory cannot be opened as a file here; the rename is as durable as the platform makes it.
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::fs::{File, Permissions};
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_content_and_leaves_no_temporary_file() {
        let d = dir();
        let file = d.path().join("state.json");
        write_atomically(&file, b"one").unwrap();
        write_atomically(&file, b"two").unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"two");
        assert_eq!(entries(d.path()), ["state.json"]);
    }

    #[test]
    fn a_bare_file_name_is_written_in_the_working_directory_s_terms() {
        assert_eq!(parent_dir(Path::new("flags.yaml")), Path::new("."));
        assert_eq!(parent_dir(Path::new("/flags.yaml")), Path::new("/"));
        assert_eq!(parent_dir(Path::new("a/flags.yaml")), Path::new("a"));
    }

    /// The old implementations wrote `.NAME.tmp` or `.NAME.degrade-PID` with `File::create`, which follows a
    /// symlink planted there: anyone able to write the directory could make the writer overwrite another file.
    #[test]
    fn symlinks_planted_at_the_old_predictable_names_are_not_followed() {
        let d = dir();
        let victim = d.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let file = d.path().join("flags.yaml");
        fs::write(&file, b"old").unwrap();
        for planted in [".flags.yaml.tmp".to_owned(), format!(".flags.yaml.degrade-{}", std::process::id())] {
            symlink(&victim, d.path().join(planted)).unwrap();
        }
        write_atomically(&file, b"new").unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"new");
        assert_eq!(fs::read(&victim).unwrap(), b"precious", "the planted link was followed");
        assert!(fs::symlink_metadata(d.path().join(".flags.yaml.tmp")).unwrap().file_type().is_symlink());
    }

    /// Whatever the name, the temporary file is created exclusively: with no random characters the name is
    /// `.NAME..tmp`, known in advance, and a symlink planted there makes the write fail instead of writing
    /// through it. (With random characters, the next name is tried.)
    #[test]
    fn a_symlink_planted_at_the_exact_temporary_name_makes_the_write_fail_not_follow() {
        let d = dir();
        let victim = d.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let dangling = d.path().join("created-through-the-link");
        let file = d.path().join("flags.yaml");
        fs::write(&file, b"old").unwrap();
        for target in [&victim, &dangling] {
            let planted = d.path().join(".flags.yaml..tmp");
            let _ = fs::remove_file(&planted);
            symlink(target, &planted).unwrap();
            assert!(write_with(&file, b"new", 0).is_err(), "created through a planted symlink");
            assert_eq!(fs::read(&victim).unwrap(), b"precious");
            assert!(!dangling.exists(), "a file was created through the planted link");
            assert_eq!(fs::read(&file).unwrap(), b"old", "a failed write leaves the target untouched");
        }
    }

    #[test]
    fn the_permissions_of_the_replaced_file_are_kept() {
        let d = dir();
        let file = d.path().join("budget.json");
        fs::write(&file, b"old").unwrap();
        for m in [0o640, 0o600, 0o664, 0o444] {
            fs::set_permissions(&file, Permissions::from_mode(m)).unwrap();
            write_atomically(&file, format!("{m:o}").as_bytes()).unwrap();
            assert_eq!(mode(&file), m, "mode {m:o}");
        }
    }

    #[test]
    fn a_new_file_gets_the_permissions_file_create_gives() {
        let d = dir();
        let reference = d.path().join("reference");
        File::create(&reference).unwrap();
        let file = d.path().join("new.json");
        write_atomically(&file, b"{}").unwrap();
        assert_eq!(mode(&file), mode(&reference), "0o666 less the umask, not the temporary file's 0o600");
    }

    #[test]
    fn through_a_symlink_the_target_is_written_and_the_link_kept() {
        let d = dir();
        fs::create_dir(d.path().join("real")).unwrap();
        let target = d.path().join("real/flags.yaml");
        fs::write(&target, b"old").unwrap();
        // relative, absolute, and a chain of two
        let relative = d.path().join("relative.yaml");
        symlink("real/flags.yaml", &relative).unwrap();
        let absolute = d.path().join("absolute.yaml");
        symlink(&target, &absolute).unwrap();
        let chain = d.path().join("chain.yaml");
        symlink("relative.yaml", &chain).unwrap();
        for (i, link) in [&relative, &absolute, &chain].into_iter().enumerate() {
            let text = format!("value {i}");
            write_atomically(link, text.as_bytes()).unwrap();
            assert!(fs::symlink_metadata(link).unwrap().file_type().is_symlink(), "{} cut loose", link.display());
            assert_eq!(fs::read_to_string(&target).unwrap(), text, "the target is updated");
            assert_eq!(fs::read_to_string(link).unwrap(), text, "reading through the link shows it");
        }
        assert_eq!(entries(&d.path().join("real")), ["flags.yaml"], "no temporary file left");
    }

    #[test]
    fn a_configmap_layout_keeps_its_links() {
        let d = dir();
        fs::create_dir(d.path().join("..2026_12_04_x")).unwrap();
        fs::write(d.path().join("..2026_12_04_x/feature_flags.yaml"), b"old").unwrap();
        symlink("..2026_12_04_x", d.path().join("..data")).unwrap();
        let file = d.path().join("feature_flags.yaml");
        symlink("..data/feature_flags.yaml", &file).unwrap();
        assert_eq!(resolve_symlinks(&file).unwrap(), d.path().join("..data/feature_flags.yaml"));
        write_atomically(&file, b"new").unwrap();
        for link in [&file, &d.path().join("..data")] {
            assert!(fs::symlink_metadata(link).unwrap().file_type().is_symlink());
        }
        assert_eq!(fs::read(&file).unwrap(), b"new");
        assert_eq!(fs::read(d.path().join("..2026_12_04_x/feature_flags.yaml")).unwrap(), b"new");
    }

    #[test]
    fn a_dangling_link_creates_its_target_and_a_loop_is_an_error() {
        let d = dir();
        let link = d.path().join("link");
        symlink("missing", &link).unwrap();
        write_atomically(&link, b"x").unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(d.path().join("missing")).unwrap(), b"x");

        let (a, b) = (d.path().join("a"), d.path().join("b"));
        symlink("b", &a).unwrap();
        symlink("a", &b).unwrap();
        let err = write_atomically(&a, b"x").unwrap_err();
        assert!(err.to_string().contains("symbolic links"), "{err}");
        assert!(resolve_symlinks(&a).is_err());
    }

    #[test]
    fn a_failed_write_leaves_the_target_and_removes_the_temporary_file() {
        let d = dir();
        // the target is a directory: the rename fails after the temporary file was written
        let target = d.path().join("taken");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), b"keep").unwrap();
        assert!(write_atomically(&target, b"x").is_err());
        assert_eq!(entries(d.path()), ["taken"]);
        assert_eq!(fs::read(target.join("inside")).unwrap(), b"keep");
    }
}
