//! The shape of the code, kept: no circle of imports between the top-level modules of any
//! crate (so `server` -> `chain` -> `store` stays one way, and the engine's model, backends and
//! forward pass too), a short `main.rs`, no source file over 800 lines outside the kernels,
//! tests and generated bindings, and no `too_many_arguments` allowance outside the kernels.
//! A module's imports are its `crate::NAME` paths outside comments and test modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Source without comment lines and without a trailing `#[cfg(test)] mod tests`.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules of the crate at `src` and which of the others each one names.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        if name == "lib" || name == "main" {
            continue;
        }
        let list = if p.is_dir() {
            rust_files(&p)
        } else if p.extension().is_some_and(|x| x == "rs") {
            vec![p.clone()]
        } else {
            continue;
        };
        let list = list.into_iter().filter(|f| !f.ends_with("tests.rs"));
        files.entry(name).or_default().extend(list);
    }
    let names: Vec<String> = files.keys().cloned().collect();
    files
        .iter()
        .map(|(m, fs)| {
            let text: String = fs.iter().map(|f| code(f)).collect();
            let uses = names
                .iter()
                .filter(|o| *o != m && names_module(&text, o))
                .cloned()
                .collect();
            (m.clone(), uses)
        })
        .collect()
}

/// Whether `text` has `crate::NAME` followed by a path separator or the end of a path.
fn names_module(text: &str, name: &str) -> bool {
    let pat = format!("crate::{name}");
    text.match_indices(&pat).any(|(i, _)| {
        let next = text[i + pat.len()..].chars().next();
        !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

fn reaches(g: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_string()];
    while let Some(n) = stack.pop() {
        for next in g.get(&n).into_iter().flatten() {
            if next == to {
                return true;
            }
            if seen.insert(next.clone()) {
                stack.push(next.clone());
            }
        }
    }
    false
}

#[test]
fn no_crate_has_a_circle_of_imports_between_its_modules() {
    for crate_src in ["src", "engine/src", "attest/src", "verifier/src", "web/src"] {
        let g = module_graph(&root().join(crate_src));
        // The listing (`cargo test --test architecture -- --nocapture`), as `cargo modules`
        // would show the dependencies between top-level modules.
        for (m, uses) in &g {
            let uses: Vec<&str> = uses.iter().map(String::as_str).collect();
            println!("{crate_src}: {m} -> {}", uses.join(", "));
        }
        let circles: Vec<(String, String)> = g
            .iter()
            .flat_map(|(a, uses)| uses.iter().map(move |b| (a.clone(), b.clone())))
            .filter(|(a, b)| reaches(&g, b, a))
            .collect();
        assert!(
            circles.is_empty(),
            "{crate_src}: circles through {circles:?}"
        );
    }
    // The one-way chain the server depends on.
    let g = module_graph(&root().join("src"));
    assert!(g["server"].contains("chain") && g["chain"].contains("store"));
    assert!(!g["store"].contains("server") && !g["store"].contains("chain"));
}

/// Kernels, tests, benches and generated bindings may be long; nothing else.
fn exempt(p: &Path) -> bool {
    let s = p.to_string_lossy();
    s.contains("/kernels/")
        || s.contains("/tests/")
        || s.contains("/benches/")
        || s.ends_with("tests.rs")
        || s.ends_with("src/chain/bindings.rs")
}

#[test]
fn files_stay_small_and_functions_take_few_arguments() {
    let main = std::fs::read_to_string(root().join("src/main.rs")).unwrap();
    assert!(
        main.lines().count() < 200,
        "src/main.rs has grown past 200 lines"
    );
    let mut long = Vec::new();
    let mut allows = Vec::new();
    for dir in ["src", "engine/src", "attest/src", "verifier/src", "web/src"] {
        for f in rust_files(&root().join(dir)) {
            if exempt(&f) {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            let n = text.lines().count();
            if n > 800 {
                long.push(format!("{} ({n} lines)", f.display()));
            }
            if text.contains("too_many_arguments") {
                allows.push(f.display().to_string());
            }
        }
    }
    assert!(long.is_empty(), "files over 800 lines: {long:?}");
    assert!(
        allows.is_empty(),
        "too_many_arguments allowed in {allows:?}"
    );
}
