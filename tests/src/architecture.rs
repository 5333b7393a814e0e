//! The map of ARCHITECTURE.md, checked: which crate may depend on which
//! (read from `cargo metadata`), and no circle between the files of a crate
//! (read from the sources).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The HTTP APIs: siblings on the shared HTTP layer.
const APIS: [&str; 4] = [
    "trellis-commands",
    "trellis-queries",
    "trellis-webhooks",
    "trellis-dashboard",
];

/// The one edge allowed between siblings: the dashboard asks the read side.
const ALLOWED_BETWEEN_APIS: [(&str, &str); 1] = [("trellis-dashboard", "trellis-queries")];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// Each workspace package's normal (not dev, not build) dependencies on
/// other workspace packages, from `cargo metadata`.
fn workspace_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata is JSON");
    let packages = metadata["packages"].as_array().expect("packages");
    let names: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().expect("a name").to_owned())
        .collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|d| d["kind"].is_null())
                .filter_map(|d| d["name"].as_str())
                .filter(|name| names.contains(*name))
                .map(str::to_owned)
                .collect();
            (p["name"].as_str().expect("a name").to_owned(), deps)
        })
        .collect()
}

#[test]
fn the_http_apis_are_siblings_on_the_shared_http_layer() {
    let deps = workspace_dependencies();
    for api in APIS {
        let of = deps
            .get(api)
            .unwrap_or_else(|| panic!("{api} is in the workspace"));
        assert!(
            of.contains("trellis-http"),
            "{api} stands on trellis-http: {of:?}"
        );
        for other in APIS.iter().filter(|o| **o != api) {
            if of.contains(*other) {
                assert!(
                    ALLOWED_BETWEEN_APIS.contains(&(api, *other)),
                    "{api} depends on its sibling {other}: what they share belongs in \
                     trellis-http, or in the domain, the store or the projections"
                );
            }
        }
    }
    let (http, access) = (&deps["trellis-http"], &deps["trellis-access"]);
    for api in APIS {
        assert!(!http.contains(api), "trellis-http depends on {api}");
        // Who may sign in sits below the APIs, beside the stores.
        assert!(!access.contains(api), "trellis-access depends on {api}");
    }
}

#[test]
fn no_library_depends_on_the_binary_the_demo_or_the_benchmarks() {
    let deps = workspace_dependencies();
    for (package, of) in &deps {
        for leaf in ["trellis", "trellis-demo", "trellis-bench"] {
            let may = match leaf {
                // The binary records the demo; the benchmarks stand alone.
                "trellis-demo" => ["trellis", "trellis-tests"].contains(&package.as_str()),
                _ => package == "trellis-tests",
            };
            assert!(
                may || !of.contains(leaf),
                "{package} depends on {leaf}, a leaf of the crate graph"
            );
        }
    }
    assert!(
        deps["trellis-domain"].is_empty(),
        "the domain depends on no other crate of ours: {:?}",
        deps["trellis-domain"]
    );
}

/// A crate's files as modules: `src/a/b.rs` and `src/a/b/mod.rs` are
/// `["a", "b"]`; `lib.rs` and `main.rs` are the root, `[]`.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("a readable dir") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let relative = path.strip_prefix(src).expect("under src");
            let mut parts: Vec<String> = relative
                .iter()
                .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            out.insert(parts, path);
        }
    }
    out
}

/// The module a path names: its longest prefix that is a file's module.
fn file_of(known: &BTreeMap<Vec<String>, PathBuf>, path: &[String]) -> Vec<String> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| known.contains_key(prefix))
        .unwrap_or_default()
}

/// The paths that start at `at` in `text`: `a::b::c` gives `[[a, b, c]]`,
/// `a::b::{c, d::e}` gives `[[a, b, c], [a, b, d, e]]` (one level of braces).
fn paths_at(text: &str, at: usize) -> Vec<Vec<String>> {
    let mut parts = Vec::new();
    let mut rest = &text[at..];
    loop {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        parts.push(rest[..end].to_owned());
        rest = &rest[end..];
        match rest.strip_prefix("::") {
            Some(next) => rest = next,
            None => break,
        }
    }
    let Some(listed) = rest.strip_prefix('{') else {
        return vec![parts];
    };
    let listed = &listed[..listed.find('}').unwrap_or(listed.len())];
    listed
        .split(',')
        .map(|item| {
            let mut path = parts.clone();
            path.extend(
                item.split(" as ")
                    .next()
                    .unwrap_or("")
                    .split("::")
                    .map(|p| p.trim().to_owned())
                    .filter(|p| !p.is_empty() && p != "self"),
            );
            path
        })
        .collect()
}

/// What the crate root and each `mod.rs` re-export: for the module that
/// re-exports, the name an item is reached under (`crate::m::Name`) and the
/// module it comes from (`pub use a::b::{C, D as E};`).
fn reexports(
    known: &BTreeMap<Vec<String>, PathBuf>,
) -> BTreeMap<Vec<String>, BTreeMap<String, Vec<String>>> {
    let mut out = BTreeMap::new();
    for (module, path) in known {
        let is_table = path
            .file_name()
            .is_some_and(|n| n == "lib.rs" || n == "main.rs" || n == "mod.rs");
        if !is_table {
            continue;
        }
        let source = std::fs::read_to_string(path).expect("a readable source");
        let mut names = BTreeMap::new();
        for statement in source.split(';') {
            let joined = statement
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("//") && !l.starts_with('#'))
                .collect::<Vec<_>>()
                .join(" ");
            let Some(rest) = joined
                .strip_prefix("pub use ")
                .or_else(|| joined.strip_prefix("pub(crate) use "))
            else {
                continue;
            };
            let (prefix, listed) = match rest.split_once("::{") {
                Some((prefix, listed)) => (prefix, listed.trim_end_matches('}')),
                None => match rest.rsplit_once("::") {
                    Some(split) => split,
                    None => continue,
                },
            };
            let mut from: Vec<String> = match prefix.strip_prefix("crate::") {
                Some(absolute) => absolute.split("::").map(str::to_owned).collect(),
                None => module
                    .iter()
                    .cloned()
                    .chain(
                        prefix
                            .split("::")
                            .filter(|p| *p != "self")
                            .map(str::to_owned),
                    )
                    .collect(),
            };
            from = file_of(known, &from);
            for name in listed.split(',') {
                let exported = name.rsplit(" as ").next().unwrap_or(name).trim();
                if !exported.is_empty() && exported != "self" {
                    names.insert(exported.to_owned(), from.clone());
                }
            }
        }
        out.insert(module.clone(), names);
    }
    out
}

/// The files `module` (the file at `path`) refers to: through `crate::…`
/// and `super::…` (an item a module re-exports counts as the module it comes
/// from), and, in a `mod.rs`, its child modules by name. `mod` lines declare
/// and a `mod.rs`'s `pub use` lines re-export; neither is a use.
fn references(
    known: &BTreeMap<Vec<String>, PathBuf>,
    exports: &BTreeMap<Vec<String>, BTreeMap<String, Vec<String>>>,
    module: &[String],
    path: &Path,
) -> BTreeSet<Vec<String>> {
    let source = std::fs::read_to_string(path).expect("a readable source");
    let is_mod = path.file_name().is_some_and(|n| n == "mod.rs");
    // A path that names an item a module re-exports leads to where it is.
    let resolve = |named: &[String]| {
        let file = file_of(known, named);
        named
            .get(file.len())
            .and_then(|next| exports.get(&file)?.get(next))
            .cloned()
            .unwrap_or(file)
    };
    let mut out = BTreeSet::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let trimmed = code.trim_start();
        if trimmed.starts_with("mod ")
            || trimmed.starts_with("pub mod ")
            || trimmed.starts_with("pub(crate) mod ")
            || (is_mod
                && (trimmed.starts_with("pub use ") || trimmed.starts_with("pub(crate) use ")))
        {
            continue;
        }
        for (at, _) in code.match_indices("crate::") {
            if code[..at].ends_with('$') {
                continue;
            }
            for named in paths_at(code, at + "crate::".len()) {
                out.insert(resolve(&named));
            }
        }
        for (at, _) in code.match_indices("super::") {
            if at > 0 && code[..at].ends_with("::") {
                continue;
            }
            let mut base = module.to_vec();
            let mut rest = at;
            while code[rest..].starts_with("super::") {
                base.pop();
                rest += "super::".len();
            }
            for named in paths_at(code, rest) {
                let mut path = base.clone();
                path.extend(named);
                out.insert(resolve(&path));
            }
        }
        if is_mod {
            for child in known
                .keys()
                .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
            {
                let needle = format!("{}::", child.last().expect("a child"));
                let used = code.match_indices(&needle).any(|(at, _)| {
                    !code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':')
                });
                if used {
                    out.insert(child.clone());
                }
            }
        }
    }
    out.remove(module);
    // The crate root is the crate's table of contents, not a file of code
    // others depend on in a circle.
    out.remove(&Vec::new());
    out
}

/// Every circle between the files of the crate whose sources are in `src`.
fn circles(src: &Path) -> Vec<Vec<String>> {
    let known = modules(src);
    let exports = reexports(&known);
    let edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = known
        .iter()
        .filter(|(module, _)| !module.is_empty())
        .map(|(module, path)| (module.clone(), references(&known, &exports, module, path)))
        .collect();
    let name = |m: &Vec<String>| {
        known[m]
            .strip_prefix(src)
            .expect("under src")
            .display()
            .to_string()
    };
    let mut found = Vec::new();
    for (a, to) in &edges {
        for b in to {
            // A circle through a and b: b reaches a.
            let mut seen = BTreeSet::new();
            let mut stack = vec![(b.clone(), vec![name(a), name(b)])];
            while let Some((at, trail)) = stack.pop() {
                if !seen.insert(at.clone()) {
                    continue;
                }
                for next in edges.get(&at).into_iter().flatten() {
                    let mut trail = trail.clone();
                    trail.push(name(next));
                    if next == a {
                        found.push(trail);
                        stack.clear();
                        break;
                    }
                    stack.push((next.clone(), trail));
                }
            }
        }
    }
    // One report per set of files, whichever file it was found from.
    let mut distinct: BTreeMap<BTreeSet<String>, Vec<String>> = BTreeMap::new();
    for circle in found {
        distinct
            .entry(circle.iter().cloned().collect())
            .or_insert(circle);
    }
    distinct.into_values().collect()
}

#[test]
fn no_file_of_a_crate_imports_a_file_that_imports_it_back() {
    let root = workspace_root();
    let mut sources: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .expect("crates/")
        .map(|e| e.expect("an entry").path().join("src"))
        .filter(|p| p.is_dir())
        .collect();
    sources.push(root.join("tests/src"));
    sources.sort();
    let mut report = Vec::new();
    for src in &sources {
        for circle in circles(src) {
            report.push(format!(
                "{}: {}",
                src.strip_prefix(&root).expect("under the root").display(),
                circle.join(" → ")
            ));
        }
    }
    assert!(
        report.is_empty(),
        "files that import each other in a circle (move what both need into a \
         third file):\n{}",
        report.join("\n")
    );
}

#[test]
fn the_circle_check_finds_a_circle_and_passes_a_tree() {
    let dir = std::env::temp_dir().join(format!("trellis-circles-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(dir.join("routes")).expect("a temp dir");
    let write = |file: &str, text: &str| std::fs::write(dir.join(file), text).expect("write");
    write(
        "lib.rs",
        "mod a;\nmod b;\nmod routes;\npub use a::A;\npub use b::{B as Bee};\n",
    );
    write("a.rs", "use crate::b::B;\npub struct A(B);\n");
    write("b.rs", "pub struct B;\n");
    write("routes/mod.rs", "mod x;\npub fn all() { x::go() }\n");
    write("routes/x.rs", "use super::super::a::A;\npub fn go() {}\n");
    assert!(circles(&dir).is_empty(), "{:?}", circles(&dir));
    write("b.rs", "use crate::A;\npub struct B(Box<A>);\n");
    assert_eq!(
        circles(&dir),
        vec![vec!["a.rs", "b.rs", "a.rs"]],
        "through the root's re-export"
    );
    write("b.rs", "pub struct B;\n");
    write("a.rs", "use crate::Bee;\npub struct A(Bee);\n");
    assert!(circles(&dir).is_empty(), "{:?}", circles(&dir));
    write("routes/x.rs", "use super::all;\npub fn go() {}\n");
    assert_eq!(
        circles(&dir),
        vec![vec!["routes/mod.rs", "routes/x.rs", "routes/mod.rs"]]
    );
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
