//! The cluster's internal credential as a file: read it, or make one on first use.
//!
//! One home for the rule, used by `dcos-installer genconf` (`genconf/state/internal-token`)
//! and by `dcosd all-in-one` (`<work dir>/secrets/internal-token`): 256 bits from the kernel's
//! random source as hex, in a 0600 file in a 0700 folder, both fixed on every read if an
//! earlier build or an operator loosened them. See docs/security.md.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The token at `path`, created (atomically, fsynced) when the file does not exist.
pub fn read_or_create_token(path: &Path) -> io::Result<String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    match fs::read_to_string(path) {
        Ok(text) => {
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
            let token = text.trim().to_string();
            if token.len() < 32 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} holds no usable token (delete it to make a new one)",
                        path.display()
                    ),
                ));
            }
            Ok(token)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
            let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let tmp = path.with_extension("tmp");
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(token.as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, path)?;
            Ok(token)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/internal-token");
        let a = read_or_create_token(&path).unwrap();
        assert_eq!(a.len(), 64);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        // Loosened by hand: fixed on the next read, same token.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(read_or_create_token(&path).unwrap(), a);
        assert_eq!(mode(&path), 0o600);
        fs::write(&path, "short").unwrap();
        assert!(read_or_create_token(&path).is_err());
    }
}
