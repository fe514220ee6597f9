//! `tidings-catalogue-gen [--check]`: writes (or, with `--check`, compares) the generated Rust
//! and TypeScript files of the examples' event catalogue. Run from anywhere in the repository.

use std::path::PathBuf;
use std::process::ExitCode;

use tidings_example_catalogue::{Catalogue, generate};

fn main() -> ExitCode {
    let check = std::env::args().nth(1).as_deref() == Some("--check");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let catalogue = match std::fs::read_to_string(root.join("examples/catalogue/events.json"))
        .map_err(|e| e.to_string())
        .and_then(|s| Catalogue::parse(&s))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tidings-catalogue-gen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut drift = false;
    for (path, text) in
        [(generate::RUST_PATH, generate::rust(&catalogue)), (generate::TS_PATH, generate::typescript(&catalogue))]
    {
        let file = root.join(path);
        let current = std::fs::read_to_string(&file).unwrap_or_default();
        if current == text {
            println!("{path}: up to date");
        } else if check {
            eprintln!("{path}: differs from examples/catalogue/events.json; run `{}`", generate::REGENERATE);
            drift = true;
        } else if let Err(e) = std::fs::write(&file, text) {
            eprintln!("tidings-catalogue-gen: writing {path}: {e}");
            return ExitCode::FAILURE;
        } else {
            println!("{path}: written");
        }
    }
    if drift { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
