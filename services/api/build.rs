//! Embeds the web console's third-party assets (the chart library), which
//! `scripts/deps.sh` installs from the npm registry into
//! `$NOVALOG_CACHE/dashboard` (`NOVALOG_DASHBOARD_ASSETS` overrides where).
//! They are not in the repository. Without them the build still succeeds:
//! the console then shows its usage figures as tables only.

use std::path::{Path, PathBuf};

/// The files embedded, by where npm puts them under `node_modules`.
const FILES: &[(&str, &str)] = &[("chart.js/dist/chart.umd.min.js", "chart.umd.min.js")];

fn assets_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("NOVALOG_DASHBOARD_ASSETS") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("NOVALOG_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/novalog")
        });
    cache.join("dashboard")
}

/// The nearest existing ancestor of `p`: watched for the assets' arrival.
fn existing_ancestor(p: &Path) -> Option<&Path> {
    p.ancestors().find(|a| a.exists())
}

fn main() {
    println!("cargo:rerun-if-env-changed=NOVALOG_DASHBOARD_ASSETS");
    println!("cargo:rerun-if-env-changed=NOVALOG_CACHE");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let modules = assets_dir().join("node_modules");
    for (from, to) in FILES {
        let src = modules.join(from);
        let bytes = std::fs::read(&src).unwrap_or_default();
        if bytes.is_empty() {
            println!(
                "cargo:warning=web console asset {} not installed (scripts/deps.sh run); charts are shown as tables",
                src.display()
            );
            if let Some(dir) = existing_ancestor(&src) {
                println!("cargo:rerun-if-changed={}", dir.display());
            }
        } else {
            println!("cargo:rerun-if-changed={}", src.display());
        }
        std::fs::write(out.join(to), bytes).expect("write to OUT_DIR");
    }
}
