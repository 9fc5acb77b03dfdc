//! The API crate imports in one direction: HTTP → domain → projection.
//!
//! Each source file belongs to a layer by where it lives (`src/domain.rs`
//! and `src/domain/`, `src/projection.rs` and `src/projection/`; the
//! modules every layer shares, listed in [`SHARED`]; everything else is
//! HTTP). A file may name (`crate::<module>`) only modules of its own
//! layer, of the layers below it, and the shared ones; the domain and the
//! projection may not name axum either. Code under `#[cfg(test)]` is not
//! held to it: tests borrow fixtures from wherever they are.

use std::path::{Path, PathBuf};

/// The modules every layer may use: what a request carries (its caller,
/// its version, Nova's error bodies and policy rules). They themselves
/// use only each other.
const SHARED: &[&str] = &["error", "auth", "policy", "microversion"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    Projection,
    Domain,
    Shared,
    Http,
}

/// The layer a top-level module of the crate belongs to.
fn layer_of_module(module: &str) -> Layer {
    match module {
        "projection" => Layer::Projection,
        "domain" => Layer::Domain,
        m if SHARED.contains(&m) => Layer::Shared,
        _ => Layer::Http,
    }
}

/// The layer of a source file, from its path under `src/`.
fn layer_of_file(rel: &Path) -> Layer {
    let first = rel
        .components()
        .next()
        .and_then(|c| c.as_os_str().to_str())
        .unwrap_or_default();
    layer_of_module(first.trim_end_matches(".rs"))
}

/// Whether code of layer `from` may name a module of layer `to`.
fn may_use(from: Layer, to: Layer) -> bool {
    match from {
        Layer::Http => true,
        Layer::Shared => to == Layer::Shared,
        Layer::Domain => matches!(to, Layer::Domain | Layer::Projection | Layer::Shared),
        Layer::Projection => matches!(to, Layer::Projection | Layer::Shared),
    }
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file before its first `#[cfg(test)]`, comments dropped.
fn production_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .take_while(|(_, l)| l.trim() != "#[cfg(test)]")
        .map(|(i, l)| (i + 1, l.split("//").next().unwrap_or("")))
}

/// Every top-level module a line names as `crate::<module>`.
fn named_modules(line: &str) -> Vec<&str> {
    line.match_indices("crate::")
        .filter(|(i, _)| {
            // `novalog_crate::` is not this crate; `$crate` is a macro's.
            !line[..*i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$')
        })
        .map(|(i, m)| {
            let rest = &line[i + m.len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|m| !m.is_empty())
        .collect()
}

/// Every import that points the wrong way, as `file:line: ...`.
fn upward_imports(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    sources(src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src).expect("under src");
        if rel.file_name().is_some_and(|n| {
            let n = n.to_string_lossy();
            n.starts_with("tests") || n.ends_with("_tests.rs") || n == "main.rs"
        }) {
            continue;
        }
        let from = layer_of_file(rel);
        let text = std::fs::read_to_string(&file).expect("read source");
        for (n, line) in production_lines(&text) {
            for module in named_modules(line) {
                let to = layer_of_module(module);
                if !may_use(from, to) {
                    found.push(format!(
                        "{}:{n}: {from:?} uses crate::{module} ({to:?})",
                        rel.display()
                    ));
                }
            }
            if matches!(from, Layer::Domain | Layer::Projection)
                && (line.contains("axum::") || line.contains("use axum"))
            {
                found.push(format!("{}:{n}: {from:?} uses axum", rel.display()));
            }
        }
    }
    found
}

#[test]
fn the_api_crate_imports_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = upward_imports(&src);
    assert!(
        found.is_empty(),
        "imports against HTTP → domain → projection:\n{}",
        found.join("\n")
    );
}

#[test]
fn an_upward_import_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("domain")).unwrap();
    std::fs::create_dir_all(src.join("projection")).unwrap();
    std::fs::write(
        src.join("domain/servers.rs"),
        "use crate::projection::Projection;\nuse crate::error::ApiError;\nuse crate::app::App;\n\
         #[cfg(test)]\nmod tests { use crate::views::x; }\n",
    )
    .unwrap();
    std::fs::write(
        src.join("projection/fold.rs"),
        "// crate::domain in a comment is fine\nfn f() -> crate::domain::Domain { todo!() }\n\
         use axum::Json;\nuse novalog_crate::x;\n",
    )
    .unwrap();
    std::fs::write(src.join("app.rs"), "use crate::domain::Domain;\n").unwrap();
    std::fs::write(src.join("error.rs"), "use crate::views::Links;\n").unwrap();
    assert_eq!(
        upward_imports(src),
        vec![
            "domain/servers.rs:3: Domain uses crate::app (Http)",
            "error.rs:1: Shared uses crate::views (Http)",
            "projection/fold.rs:2: Projection uses crate::domain (Domain)",
            "projection/fold.rs:3: Projection uses axum",
        ]
    );
}
