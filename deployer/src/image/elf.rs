//! What the packed binary needs at run time, read from the binary itself: its architecture
//! (the ELF header's machine), its dynamic loader (`PT_INTERP`) and, through that loader's
//! `--list` mode, every shared library it links and where the loader finds each one.
//!
//! Asking the binary's own loader (as `ldd` does) rather than walking `DT_NEEDED` ourselves
//! gives exactly the loader's answer: its built-in search path, `DT_RUNPATH`, transitive
//! dependencies and `$ORIGIN` included. The first pass runs with `--inhibit-cache`, because the
//! image has no `/etc/ld.so.cache`; a library found only through the host's cache is still
//! packed, and its directory goes into the image's `LD_LIBRARY_PATH`. A static binary has no
//! `PT_INTERP` and needs nothing.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use object::elf::{self, FileHeader64};
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Endianness, ReadCache};

use super::process::{self, Stderr};
use super::{ImageError, Platform};

/// The loader's `--list` mode maps a handful of files; it never needs long.
const LIST_LIMIT: Duration = Duration::from_secs(60);

/// What the ELF header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    /// The platform of the machine code, or the raw `e_machine` when it is none of ours.
    pub machine: Result<Platform, u16>,
    /// The dynamic loader (`PT_INTERP`); `None` for a static binary.
    pub interpreter: Option<PathBuf>,
}

impl ElfInfo {
    /// The architecture for messages (`x86_64`, `aarch64`, `e_machine 40`).
    pub fn machine_name(&self) -> String {
        match self.machine {
            Ok(platform) => platform.rust_arch().to_owned(),
            Err(raw) => format!("ELF machine {raw}"),
        }
    }
}

/// Reads the ELF header and program headers of `path` (only those bytes are read).
pub fn read(path: &Path) -> Result<ElfInfo, ImageError> {
    let file = File::open(path).map_err(ImageError::io("opening", path))?;
    let data = ReadCache::new(file);
    let not_executable = |reason: &str| ImageError::NotAnExecutable {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let header = FileHeader64::<Endianness>::parse(&data)
        .map_err(|_| not_executable("no 64-bit ELF header"))?;
    let endian = header
        .endian()
        .map_err(|_| not_executable("unknown byte order"))?;
    let file_type = header.e_type(endian);
    if file_type != elf::ET_EXEC && file_type != elf::ET_DYN {
        return Err(not_executable("an object file or core dump, not a program"));
    }
    let machine = match header.e_machine(endian) {
        elf::EM_X86_64 => Ok(Platform::X86_64),
        elf::EM_AARCH64 => Ok(Platform::Arm64),
        other => Err(other.0),
    };
    let segments = header
        .program_headers(endian, &data)
        .map_err(|_| not_executable("unreadable program headers"))?;
    let mut interpreter = None;
    for segment in segments {
        if let Some(bytes) = segment
            .interpreter(endian, &data)
            .map_err(|_| not_executable("unreadable PT_INTERP"))?
        {
            let text =
                std::str::from_utf8(bytes).map_err(|_| not_executable("PT_INTERP is not UTF-8"))?;
            interpreter = Some(PathBuf::from(text));
        }
    }
    if file_type == elf::ET_DYN && interpreter.is_none() && header.e_entry(endian) == 0 {
        return Err(not_executable("a shared library, not a program"));
    }
    Ok(ElfInfo {
        machine,
        interpreter,
    })
}

/// The files the binary needs at run time besides itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Runtime {
    /// Absolute paths, as the loader names them: the image has each file at the same path.
    /// The loader itself is the first one.
    pub files: Vec<PathBuf>,
    /// Directories only the host's `ld.so.cache` knew; the image searches them through
    /// `LD_LIBRARY_PATH`.
    pub extra_library_dirs: Vec<PathBuf>,
}

/// Asks the binary's loader which libraries it links; see the module docs.
pub fn runtime(binary: &Path, info: &ElfInfo) -> Result<Runtime, ImageError> {
    let Some(loader) = &info.interpreter else {
        return Ok(Runtime::default());
    };
    let without_cache = list(loader, binary, true)?;
    let resolved = if without_cache.missing.is_empty() {
        without_cache.clone()
    } else {
        let with_cache = list(loader, binary, false)?;
        if let Some(library) = with_cache.missing.first() {
            return Err(ImageError::MissingLibrary {
                binary: binary.to_owned(),
                library: library.clone(),
            });
        }
        with_cache
    };
    let mut extra_library_dirs = Vec::new();
    for path in &resolved.paths {
        if !without_cache.paths.contains(path)
            && let Some(dir) = path.parent()
            && !extra_library_dirs
                .iter()
                .any(|known: &PathBuf| known == dir)
        {
            extra_library_dirs.push(dir.to_owned());
        }
    }
    let mut files = vec![loader.clone()];
    for path in resolved.paths {
        if !files.contains(&path) {
            files.push(path);
        }
    }
    Ok(Runtime {
        files,
        extra_library_dirs,
    })
}

/// One `--list` answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Listing {
    /// Resolved library paths, in the loader's order.
    paths: Vec<PathBuf>,
    /// Sonames the loader did not find.
    missing: Vec<String>,
}

fn list(loader: &Path, binary: &Path, inhibit_cache: bool) -> Result<Listing, ImageError> {
    let mut command = Command::new(loader);
    if inhibit_cache {
        command.arg("--inhibit-cache");
    }
    command.arg("--list").arg(binary);
    // The loader would honour these for the listing, but the image does not set them.
    command
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("LD_PRELOAD");
    let outcome = process::run_unchecked(&mut command, None, Stderr::Capture, LIST_LIMIT)?;
    let listing = parse_listing(&String::from_utf8_lossy(&outcome.stdout));
    // With a library missing, the loader lists what it found and exits non-zero; the listing
    // names the library, which says more than the status.
    match outcome.status {
        Some(status) if status.success() => Ok(listing),
        Some(_) if !listing.missing.is_empty() => Ok(listing),
        _ => Err(outcome.failure(&command)),
    }
}

/// Parses the loader's `--list` output:
/// `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)`, `libx.so => not found`,
/// `/lib64/ld-linux-x86-64.so.2 (0x...)` and the kernel's `linux-vdso.so.1 (0x...)`, which is
/// no file.
fn parse_listing(output: &str) -> Listing {
    let mut listing = Listing::default();
    for line in output
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
    {
        let without_address = match line.rfind(" (0x") {
            Some(start) => &line[..start],
            None => line,
        };
        match without_address.split_once(" => ") {
            Some((name, "not found")) => listing.missing.push(name.trim().to_owned()),
            Some((_, path)) if path.starts_with('/') => {
                listing.paths.push(PathBuf::from(path.trim()));
            }
            Some(_) => {}
            None if without_address.starts_with('/') => {
                listing.paths.push(PathBuf::from(without_address));
            }
            None => {}
        }
    }
    listing
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on unexpected errors; that is the point.
mod tests {
    use super::*;

    fn check(output: &str, paths: &[&str], missing: &[&str]) {
        let listing = parse_listing(output);
        assert_eq!(
            listing.paths,
            paths.iter().map(PathBuf::from).collect::<Vec<_>>()
        );
        assert_eq!(listing.missing, missing);
    }

    #[test]
    fn listing_of_glibc_loader() {
        check(
            "\tlinux-vdso.so.1 (0x00007ffd5c5f2000)\n\
             \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f0c1c400000)\n\
             \tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f0c1c321000)\n\
             \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0c1c140000)\n\
             \t/lib64/ld-linux-x86-64.so.2 (0x00007f0c1d8d5000)\n",
            &[
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libm.so.6",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2",
            ],
            &[],
        );
    }

    #[test]
    fn listing_with_a_missing_library() {
        check(
            "\tlibfoo.so.1 => not found\n\tlibc.so.6 => /lib64/libc.so.6 (0x1)\n",
            &["/lib64/libc.so.6"],
            &["libfoo.so.1"],
        );
    }

    #[test]
    fn listing_of_nothing() {
        check("\tstatically linked\n", &[], &[]);
        check("", &[], &[]);
    }

    #[test]
    fn reads_our_own_binary() {
        let me = std::env::current_exe().unwrap();
        let info = read(&me).unwrap();
        assert_eq!(info.machine, Platform::host().ok_or(0));
        let runtime = runtime(&me, &info).unwrap();
        if let Some(loader) = &info.interpreter {
            assert_eq!(runtime.files.first(), Some(loader));
            assert!(
                runtime.files.iter().any(|file| file
                    .file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with("libc."))),
                "{runtime:?}"
            );
            assert!(
                runtime
                    .files
                    .iter()
                    .all(|file| file.is_absolute() && file.exists())
            );
        }
    }

    #[test]
    fn a_text_file_is_not_an_executable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("script.sh");
        std::fs::write(&path, "#!/bin/sh\necho hi\n").unwrap();
        let err = read(&path).unwrap_err();
        assert!(
            err.to_string()
                .contains("script.sh: not a 64-bit ELF executable"),
            "{err}"
        );
    }
}
