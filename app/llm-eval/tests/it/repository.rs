//! The repository is self-contained: no tracked file outside the docs refers to a path above the
//! repository root (such as the sample data folder that sits beside our own checkouts), so a
//! fresh clone builds, runs and tests on its own.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::workspace_root;

/// Tracked files (`git ls-files`), or every file under the root when this is not a git checkout
/// (a source archive), skipping build output.
fn repository_files(root: &Path) -> Vec<PathBuf> {
    let listed = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|output| output.status.success() && !output.stdout.is_empty());
    if let Some(output) = listed {
        return output
            .stdout
            .split(|byte| *byte == 0)
            .filter(|name| !name.is_empty())
            .map(|name| PathBuf::from(String::from_utf8_lossy(name).into_owned()))
            .collect();
    }
    let mut files = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        for entry in std::fs::read_dir(root.join(&relative)).expect("read the source tree") {
            let entry = entry.expect("read a directory entry");
            let name = relative.join(entry.file_name());
            let skip = matches!(entry.file_name().to_str(), Some(".git" | "target"));
            if entry.file_type().expect("file type").is_dir() {
                if !skip {
                    pending.push(name);
                }
            } else {
                files.push(name);
            }
        }
    }
    files
}

/// Documentation may talk about anything; licences and lock files are not ours to check.
fn is_doc(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("");
    name.ends_with(".md") || name == "LICENSE" || name == "Cargo.lock"
}

/// How many `..` segments follow each other at `start` of `line` (`../..`, `"..\"`, `..` at
/// the end), or 0 when `start` does not begin such a path.
fn parent_segments(line: &[u8], start: usize) -> usize {
    let is_path_char =
        |byte: u8| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-');
    if start > 0 && is_path_char(line[start - 1]) {
        return 0;
    }
    let mut n_segments = 0;
    let mut position = start;
    while line[position..].starts_with(b"..") {
        let after = line.get(position + 2).copied();
        match after {
            Some(b'/') => {
                n_segments += 1;
                position += 3;
            }
            Some(byte) if is_path_char(byte) => break,
            _ => {
                n_segments += 1;
                break;
            }
        }
    }
    n_segments
}

/// The problems of one file's text: names of our machines' folders above the root, and `..`
/// chains that climb above the root from the file's own directory.
fn problems(path: &Path, text: &str) -> Vec<String> {
    // Built at run time so this file does not match its own needles.
    let needles = [
        ["..", "/shared"].concat(),
        ["shared", "/datasets"].concat(),
        ["shared", "/specs"].concat(),
        ["shared", "/hooks"].concat(),
        ["/work", "/"].concat(),
    ];
    let depth = path
        .parent()
        .map_or(0, |parent| parent.components().count());
    let mut found = Vec::new();
    for (line_idx, line) in text.lines().enumerate() {
        for needle in &needles {
            if line.contains(needle.as_str()) {
                found.push(format!(
                    "{}:{}: refers to `{needle}`",
                    path.display(),
                    line_idx + 1
                ));
            }
        }
        let bytes = line.as_bytes();
        let mut start = 0;
        while start + 1 < bytes.len() {
            let n_segments = parent_segments(bytes, start);
            if n_segments > depth {
                found.push(format!(
                    "{}:{}: `{}` climbs {n_segments} levels from a folder {depth} deep",
                    path.display(),
                    line_idx + 1,
                    line.trim()
                ));
            }
            start += 1 + 3 * n_segments.saturating_sub(1);
        }
    }
    found
}

#[test]
fn no_tracked_file_refers_above_the_repository_root() {
    let root = workspace_root();
    let mut found = Vec::new();
    let mut n_checked = 0;
    for path in repository_files(&root) {
        if is_doc(&path) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(root.join(&path)) else {
            continue; // not UTF-8: not a file that names paths
        };
        n_checked += 1;
        found.extend(problems(&path, &text));
    }
    assert!(n_checked > 50, "only {n_checked} files were checked");
    assert!(
        found.is_empty(),
        "paths above the repository root:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_what_it_guards_against() {
    let helper = Path::new("app/llm-eval/tests/it/helpers.rs");
    let above = ["root.join(\"..", "/shared", "/datasets/squad-qa\")"].concat();
    assert_eq!(
        problems(helper, &above).len(),
        2,
        "{:?}",
        problems(helper, &above)
    );
    let bench = Path::new("app/llm-eval/benches/x.rs");
    assert_eq!(problems(bench, "dir.join(\"../../../../x\")").len(), 1);
    assert_eq!(problems(bench, "dir.join(\"../../../x\")").len(), 0);
    let script = Path::new(".ci/run");
    assert_eq!(problems(script, "cd \"$(dirname \"$0\")/..\"").len(), 0);
    assert_eq!(problems(script, "cd \"$(dirname \"$0\")/../..\"").len(), 1);
    assert_eq!(problems(script, "see a...b or x..y and 1..=3").len(), 0);
    assert_eq!(problems(script, "ls ../..").len(), 1);
}
